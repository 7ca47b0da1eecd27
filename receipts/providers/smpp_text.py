"""SMPP delivery receipt text relayed over HTTP by an SMPP-to-HTTP gateway.

An SMSC reports delivery in the short message of a `deliver_sm`, as text whose format SMPP 3.4
Appendix B suggests (quoted by 8x8: https://developer.8x8.com/connect/docs/smpp-delivery-receipts):

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...

A gateway that does not interpret it relays it as is. We accept it in any of:
- the raw body of a POST that is not a form (`text/plain` is the usual content type);
- a form field or a query parameter named `dlr` or `receipt` (GET or POST), for gateways that can
  only call a URL template (Kannel's `%A`, custom bridges).
The provider message id is the receipt's `id:`, i.e. the id the SMSC returned in `submit_sm_resp`.
Authentication is the connection's token (TokenAuthenticated). One receipt per request.

SMSCs deviate: keys in any case (`Text:`), dates of 10 or 12 digits (some send seconds), missing
fields; everything after `text:` is the message's first characters, spaces included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from receipts.providers.base import PayloadError, ReceiptEvent, TokenAuthenticated, WebhookRequest
from receipts.statuses import Status

FIELD_NAMES = ("dlr", "receipt")
FORM = "application/x-www-form-urlencoded"
# A receipt is at most a short message (254 octets) plus what a gateway may add: a sane bound.
MAX_TEXT = 2048

# SMPP 3.4 §5.2.28 message_state and its receipt abbreviations (providers.md §2.9); ACKED,
# BUFFRED and BUFFERD are non-standard intermediate states seen in the wild (Kannel list).
# https://developer.8x8.com/connect/docs/smpp-delivery-receipts
STATUS_MAP: dict[str, Status] = {
    "delivrd": Status.DELIVERED,
    "undeliv": Status.UNDELIVERED,
    "expired": Status.EXPIRED,
    "rejectd": Status.REJECTED,
    # Deleted by the SMSC (an operator or the validity rules): nothing reached the carrier.
    "deleted": Status.FAILED,
    "unknown": Status.UNKNOWN,
    "enroute": Status.SENT,
    "acceptd": Status.SENT,
    "scheduled": Status.SENT,
    "acked": Status.SENT,
    "buffred": Status.SENT,
    "bufferd": Status.SENT,
}

# `text:` ends the structured part: whatever follows is message text and may contain "id:".
TEXT_KEY = re.compile(r"(?:^|\s)text\s*:", re.IGNORECASE)
KEYS = r"id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err"
# A value may follow its key after spaces, but an empty value must not swallow the next key.
FIELD = re.compile(rf"(?:^|\s)({KEYS})\s*:\s*(?!(?:{KEYS})\s*:)(\S*)", re.IGNORECASE)


@dataclass(frozen=True)
class SmppReceipt:
    """The fields of one receipt text, as sent (empty when absent)."""

    id: str
    stat: str
    err: str = ""
    sub: str = ""
    dlvrd: str = ""
    submit_date: str = ""
    done_date: str = ""
    text: str = ""


def parse_receipt(text: str) -> SmppReceipt:
    """Read an SMPP receipt text; PayloadError when it has no `id:` or no `stat:`."""
    head, text_key, tail = _split_text(text.strip())
    fields: dict[str, str] = {}
    for key, value in FIELD.findall(head):
        # The first occurrence wins: a repeated key is a gateway appending its own copy.
        fields.setdefault(key.lower().replace(" ", "_"), value)
    if not fields.get("id"):
        raise PayloadError("receipt text has no id: field")
    if not fields.get("stat"):
        raise PayloadError("receipt text has no stat: field")
    return SmppReceipt(
        id=fields["id"],
        stat=fields["stat"],
        err=fields.get("err", ""),
        sub=fields.get("sub", ""),
        dlvrd=fields.get("dlvrd", ""),
        submit_date=fields.get("submit_date", ""),
        done_date=fields.get("done_date", ""),
        text=tail if text_key else "",
    )


def _split_text(text: str) -> tuple[str, bool, str]:
    match = TEXT_KEY.search(text)
    if match is None:
        return text, False, ""
    return text[: match.start()], True, text[match.end() :].lstrip(" ")


def parse_receipt_date(value: str) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss (YYYYMMDDhhmmss from a few SMSCs), read as UTC: the format
    carries no zone. A malformed date is dropped (the raw body keeps it)."""
    formats = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S", 14: "%Y%m%d%H%M%S"}
    if not value.isdigit() or len(value) not in formats:
        return None
    try:
        return datetime.strptime(value, formats[len(value)]).replace(tzinfo=UTC)
    except ValueError:
        return None


def receipt_error_code(receipt: SmppReceipt) -> str:
    """`err` verbatim ("000"), except on a delivered receipt whose err is all zeros: no error."""
    if receipt.stat.upper() == "DELIVRD" and set(receipt.err) <= {"0"}:
        return ""
    return receipt.err


class SmppTextAdapter(TokenAuthenticated):
    kind = "smpp-text"
    label = "SMPP receipt text over HTTP"
    shared_code_tables = ("gsm",)
    status_map = STATUS_MAP

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        receipt = parse_receipt(receipt_text(request))
        return [
            ReceiptEvent(
                provider_message_id=receipt.id,
                provider_status=receipt.stat,
                status=self.normalize_status(receipt.stat),
                error_code=receipt_error_code(receipt),
                provider_timestamp=parse_receipt_date(receipt.done_date),
                extra={"sub": receipt.sub, "dlvrd": receipt.dlvrd},
            )
        ]

    def raw_to_keep(self, request: WebhookRequest) -> str:
        is_form = request.header("content-type").split(";")[0].strip().lower() == FORM
        return without_message_text(request.raw_text(), encoded=is_form or not request.body)


# The SMSC copies the message's first characters into the receipt: an OTP, often. Texts are kept
# only to resend them and shown to no one, so what follows `text:` is never stored. In a form or
# a query the value runs to the next `&`; in a plain body, to the end.
ENCODED_TEXT = re.compile(r"(text(?::|%3A))[^&]*", re.IGNORECASE)
TEXT_NOT_KEPT = "(not kept)"


def without_message_text(raw: str, *, encoded: bool) -> str:
    """`raw` with the message text a receipt carries after `text:` left out; `encoded`: a query
    or a form rather than the receipt text itself."""
    if encoded:
        return ENCODED_TEXT.sub(lambda match: match.group(1) + TEXT_NOT_KEPT, raw)
    match = TEXT_KEY.search(raw)
    return raw if match is None else raw[: match.end()] + TEXT_NOT_KEPT


def receipt_text(request: WebhookRequest) -> str:
    """The receipt from a `dlr`/`receipt` field of the query or form, else the raw body."""
    is_form = request.header("content-type").split(";")[0].strip().lower() == FORM
    sources = [request.query()] + ([request.form()] if request.method == "POST" and is_form else [])
    for source in sources:
        for name in FIELD_NAMES:
            if source.get(name, [""])[0]:
                return _bounded(source[name][0])
    if request.method == "POST" and not is_form and request.body.strip():
        # The readable fields are ASCII; an SMSC's text: in another charset must not refuse it.
        return _bounded(request.body.decode("utf-8", errors="replace"))
    raise PayloadError("no receipt text: send it as the body or in a `dlr` or `receipt` field")


def _bounded(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise PayloadError(f"receipt text is longer than {MAX_TEXT} characters")
    return text


adapter = SmppTextAdapter()

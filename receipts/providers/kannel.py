"""Kannel delivery reports, fetched by Kannel's smsbox from the `dlr-url` we give it.

Kannel returns no message id when it accepts a message (`0: Accepted for delivery`), so the
product chooses the provider message id itself (a UUID), registers the Message with it, and
writes it into the per-message `dlr-url` CGI variable of the sendsms request, with our token in
the path and Kannel's escape codes for the rest (the URL is url-encoded into `dlr-url`):

    https://<host>/hooks/<slug>/<token>/?id=<message id>&type=%d&answer=%A&smsc=%i&smsc_id=%F&ts=%T

`type` (%d, required) is the DLR type; `answer` (%A) the SMSC's reply, for SMPP the receipt text
`id:… stat:… err:…` (parsed with receipts/providers/smpp_text.py); `smsc` (%i) the smsc-id of
the connection; `smsc_id` (%F) the SMSC's own message id; `ts` (%T) the report's time as a unix
timestamp. Kannel fetches the URL with GET (a POST with the same query is read the same way).
Escape codes: https://www.kannel.org/download/kannel-userguide-snapshot/userguide.html (sendsms
and dlr-url parameters); DLR types and the SMPP message states behind them (grantpullen's
KannelDLR.md): https://gist.github.com/atkawa7/125c02113df26337de092ab9f47f4542
"""

from __future__ import annotations

import re

from receipts.providers.base import PayloadError, ReceiptEvent, TokenAuthenticated, WebhookRequest, parse_unix_time
from receipts.providers.smpp_text import (
    SmppReceipt,
    parse_receipt,
    parse_receipt_date,
    receipt_error_code,
    without_message_text,
)
from receipts.statuses import FAILURE_STATUSES, Status

# Kannel's dlr-mask values (userguide, sendsms `dlr-mask`): 1 delivered to phone, 2 non-delivered
# to phone, 4 queued on SMSC, 8 delivered to SMSC, 16 non-delivered to SMSC.
TYPE_STATUS: dict[str, Status] = {
    "1": Status.DELIVERED,
    "2": Status.UNDELIVERED,
    "4": Status.ACCEPTED,
    "8": Status.SENT,
    # The SMSC refused the submit_sm: nothing was attempted.
    "16": Status.REJECTED,
}
# With an SMPP receipt in `answer`, its stat says more than type 2, which Kannel uses for every
# negative final state (EXPIRED, DELETED, UNDELIV, UNKNOWN, REJECTD all become 2).
STAT_STATUS: dict[str, Status] = {
    "expired": Status.EXPIRED,
    "rejectd": Status.REJECTED,
    "deleted": Status.FAILED,
    "unknown": Status.UNKNOWN,
}


# Kannel's %A for an SMSC's refusal of submit_sm (type 16): "NACK/0x0000000b/Invalid Destination
# Address", the SMPP command_status in hex then its text (smsc_smpp.c). The code is kept so the
# catalog's SMPP rows (gsm,0x…) classify it: 0x58 throttling is temporary, 0x0B a bad number.
NACK_CODE = re.compile(r"NACK/(0x[0-9a-fA-F]{1,8})(?:/|$)")


class KannelAdapter(TokenAuthenticated):
    kind = "kannel"
    label = "Kannel dlr-url"
    shared_code_tables = ("gsm",)
    status_map = TYPE_STATUS

    def normalize_status(self, provider_status: str) -> Status:
        dlr_type, _, stat = provider_status.strip().partition("/")
        status = TYPE_STATUS.get(dlr_type, Status.UNKNOWN)
        if status is Status.UNDELIVERED:
            return STAT_STATUS.get(stat.lower(), status)
        return status

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        fields = {name: values[0] for name, values in request.query().items() if values}
        message_id = fields.get("id", "")
        dlr_type = fields.get("type", "").strip()
        if not message_id:
            raise PayloadError("the dlr-url has no id parameter (our provider message id)")
        if not dlr_type:
            raise PayloadError("the dlr-url has no type parameter (Kannel's %d)")
        answer = fields.get("answer", "")
        receipt = smpp_receipt(answer)
        # "2/EXPIRED": Kannel's type, and the SMSC's stat when the reply is an SMPP receipt.
        provider_status = f"{dlr_type}/{receipt.stat}" if receipt else dlr_type
        status = self.normalize_status(provider_status)
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=status,
                error_code=receipt_error_code(receipt) if receipt else nack_code(answer, status),
                # Without an SMPP receipt, Kannel's reply on a failure (an SMSC NACK) is all we know.
                error_description=answer[:255] if receipt is None and status in FAILURE_STATUSES else "",
                # %T: seconds since the epoch.
                provider_timestamp=parse_unix_time(fields.get("ts", ""))
                or (parse_receipt_date(receipt.done_date) if receipt else None),
                extra={
                    "stat": receipt.stat if receipt else "",
                    "smsc": fields.get("smsc", ""),
                    "smsc_id": fields.get("smsc_id", ""),
                },
            )
        ]

    def raw_to_keep(self, request: WebhookRequest) -> str:
        # %A, Kannel's copy of the SMSC's reply, holds the receipt's `text:` too.
        return without_message_text(request.raw_text(), encoded=True)


def nack_code(answer: str, status: Status) -> str:
    """The SMPP error code of an SMSC's NACK, for a failure; "" otherwise."""
    match = NACK_CODE.match(answer) if status in FAILURE_STATUSES else None
    return match.group(1) if match else ""


def smpp_receipt(answer: str) -> SmppReceipt | None:
    """The SMPP receipt in Kannel's %A, or None for other replies (`ACK/`, an SMSC error text)."""
    try:
        return parse_receipt(answer) if answer else None
    except PayloadError:
        return None


adapter = KannelAdapter()

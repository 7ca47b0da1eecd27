"""The normalized failure reasons: what each means, its class, what to do about it, and what
a support agent can tell the end user.

A provider's error code maps to one of these in the shipped table (receipts/data/error_codes.csv)
or an admin override (`ErrorCodeOverride`). The class here is the reason's usual class; a row of
the table may state another for one provider's code (Vonage 4 "call barred by user" is
permanent where the GSM "call barred" usually is not), and a provider's own permanence flag
(Infobip `error.permanent`) wins over both.

This module imports nothing from the models so that the models can validate against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class ErrorClass(models.TextChoices):
    TEMPORARY = "temporary", _("Temporary")
    PERMANENT = "permanent", _("Permanent")
    UNKNOWN = "unknown", _("Unknown")


class RetryAdvice(models.TextChoices):
    SAME_ROUTE = "same_route", _("Retry later on the same route")
    OTHER_ROUTE = "other_route", _("Retry on another route or provider")
    FALLBACK_CHANNEL = "fallback_channel", _("Use another channel (voice, e-mail, app)")
    NEVER = "never", _("Do not retry")


@dataclass(frozen=True)
class Reason:
    slug: str
    error_class: ErrorClass
    advice: RetryAdvice
    # When it applies, for the docs and the admin (not shown to end users).
    applies: str
    # What a support agent can tell the end user: plain, short, no jargon.
    explanation: Promise
    # What the product team must fix, for failures that are ours to fix (configuration).
    fix: Promise | str = ""
    # The reason in a few words, for pages and filters ("unknown subscriber").
    label: Promise | str = ""


T, P, U = ErrorClass.TEMPORARY, ErrorClass.PERMANENT, ErrorClass.UNKNOWN
SAME, OTHER, FALLBACK, NEVER = (
    RetryAdvice.SAME_ROUTE,
    RetryAdvice.OTHER_ROUTE,
    RetryAdvice.FALLBACK_CHANNEL,
    RetryAdvice.NEVER,
)

_REASONS = (
    # The recipient's side, temporary.
    Reason(
        "absent_subscriber", T, SAME,
        "The handset is off, out of coverage or not reachable right now (MAP absent/unidentified subscriber).",
        _("The phone was switched off or out of coverage. The message can be sent again later."),
        label=_("absent subscriber"),
    ),
    Reason(
        "handset_busy", T, SAME,
        "The handset was busy with another SMS transaction (MAP subscriber busy for MT SMS).",
        _("The phone was busy when the message arrived. It will be sent again shortly."),
        label=_("handset busy"),
    ),
    Reason(
        "memory_full", T, SAME,
        "The handset's or SIM's message storage is full (MAP memory capacity exceeded, waiting list full).",
        _("The phone's message inbox is full. Deleting some messages will let new ones arrive."),
        label=_("memory full"),
    ),
    Reason(
        "handset_error", T, SAME,
        "The handset or SIM failed to accept the message (MAP SM delivery failure, temporary handset failure).",
        _("The phone could not accept the message. Restarting the phone usually helps."),
        label=_("handset error"),
    ),
    Reason(
        "recipient_out_of_credit", T, SAME,
        "The recipient's prepaid balance is too low to receive (some networks charge roaming or premium SMS).",
        _("The mobile plan has no credit left to receive this message. Topping up will let it arrive."),
        label=_("recipient out of credit"),
    ),
    Reason(
        "roaming_restricted", T, FALLBACK,
        "The recipient is roaming on a network where this message cannot be delivered.",
        _("The phone is abroad on a network that does not accept this message."),
        label=_("roaming restricted"),
    ),
    Reason(
        "call_barred", T, SAME,
        "The network bars messages to this subscriber (GSM call barred); often lifted later, sometimes the "
        "subscriber's own choice (then the code's row makes it permanent).",
        _("The mobile operator is blocking messages to this number at the moment."),
        label=_("call barred"),
    ),
    # The recipient's side, permanent.
    Reason(
        "unknown_subscriber", P, NEVER,
        "The number is not assigned to anyone or no longer in service.",
        _("This phone number does not exist or is no longer in service. Please check the number."),
        _("Mark the number invalid and ask the user to update it."),
        label=_("unknown subscriber"),
    ),
    Reason(
        "invalid_number", P, NEVER,
        "The number is malformed or not a valid number for its country.",
        _("This phone number is not valid. Please check it and try again."),
        _("Validate numbers at entry (E.164) before sending."),
        label=_("invalid number"),
    ),
    Reason(
        "illegal_subscriber", P, NEVER,
        "The network refused the subscriber or the device (MAP illegal subscriber / illegal equipment).",
        _("The mobile network refused this phone. The user should contact their operator."),
        label=_("illegal subscriber"),
    ),
    Reason(
        "landline", P, FALLBACK,
        "The number cannot receive SMS: a landline, or a line without SMS service (teleservice not provisioned).",
        _("This number cannot receive text messages, for example a landline. Try a call or another channel."),
        label=_("landline"),
    ),
    Reason(
        "age_restricted", P, NEVER,
        "The subscriber's operator blocks this content for the subscriber's age profile.",
        _("The mobile operator does not allow this kind of message on this line."),
        label=_("age restricted"),
    ),
    Reason(
        "opted_out", P, NEVER,
        "The recipient unsubscribed (STOP), or blocked this sender or service.",
        _("This number asked not to receive our messages. Replying START will allow them again."),
        _("Add the number to the suppression list; only the recipient can opt back in."),
        label=_("opted out"),
    ),
    Reason(
        "blocked_destination", P, NEVER,
        "The number is on a block list: the carrier's, the provider's, our account's, or the device's.",
        _("Messages to this number are blocked by the operator or the phone."),
        _("Check the provider's and the account's block lists; do not resend."),
        label=_("blocked destination"),
    ),
    # Our content and sender.
    Reason(
        "blocked_content", P, NEVER,
        "A carrier or regulator content filter refused the message (template, keywords, links).",
        _("The message was stopped by the operator's content filter."),
        _("Review the message text and templates against the country's and carriers' content rules."),
        label=_("blocked content"),
    ),
    Reason(
        "blocked_spam", P, NEVER,
        "A spam filter refused the message or the sender; may be temporary when a rate trips it.",
        _("The message was stopped by the operator's spam filter."),
        _("Review content, sending rate and sender reputation; appeal the block with the provider."),
        label=_("blocked spam"),
    ),
    Reason(
        "invalid_message", P, NEVER,
        "The message itself is malformed: bad encoding, empty, too long or too many parts.",
        _("The message could not be sent because of its format."),
        _("Fix the message encoding or length (parts limit) in the sending code or template."),
        label=_("invalid message"),
    ),
    Reason(
        "duplicate_message", P, NEVER,
        "A duplicate or flooding filter refused it: the same content to the same number too often.",
        _("The same message was already sent to this number several times."),
        _("Deduplicate sends; for OTPs, reuse the pending code instead of sending a new message."),
        label=_("duplicate message"),
    ),
    Reason(
        "sender_not_registered", P, NEVER,
        "The sender (alphanumeric ID, long code, short code, toll-free number) is not registered, verified "
        "or allowed for this destination, or has been blocked (10DLC, toll-free verification, India DLT).",
        _("The message could not be sent because of a problem on our side. We are working on it."),
        _("Register or verify the sender for this country (10DLC campaign, toll-free verification, DLT), "
          "or configure an allowed sender."),
        label=_("sender not registered"),
    ),
    Reason(
        "regulatory_block", P, NEVER,
        "The destination country's regulation refused the message (registration, template, sending hours).",
        _("The message could not be sent because of the destination country's rules."),
        _("Check the country's sending requirements with the provider (registration, templates, hours)."),
        label=_("regulatory block"),
    ),
    # Our account and routes.
    Reason(
        "destination_not_enabled", P, OTHER,
        "The account or route is not allowed to send to this country or network (geo permissions, protect "
        "configuration, unprovisioned region).",
        _("We cannot send messages to this country or operator at the moment."),
        _("Enable the destination country for the account, or route it through another provider."),
        label=_("destination not enabled"),
    ),
    Reason(
        "insufficient_credit", P, NEVER,
        "Our account with the provider has no credit left.",
        _("The message could not be sent because of a problem on our side. We are working on it."),
        _("Top up the provider account and set a low-balance alert."),
        label=_("insufficient credit"),
    ),
    Reason(
        "account_suspended", P, NEVER,
        "Our account with the provider is suspended, blocked or disabled.",
        _("The message could not be sent because of a problem on our side. We are working on it."),
        _("Contact the provider to restore the account; move traffic to another provider meanwhile."),
        label=_("account suspended"),
    ),
    Reason(
        "configuration_error", P, NEVER,
        "The request or the account configuration is wrong (bad parameter, price cap, missing setting).",
        _("The message could not be sent because of a problem on our side. We are working on it."),
        _("Check the send request parameters and the provider account settings named by the error."),
        label=_("configuration error"),
    ),
    Reason(
        "cancelled", P, NEVER,
        "The message was cancelled before delivery, by us or the provider on our request.",
        _("The message was cancelled before it was delivered."),
        label=_("cancelled"),
    ),
    # The networks between.
    Reason(
        "unroutable", P, OTHER,
        "The provider or carrier has no route to this number (portability, unsupported facility, no "
        "interconnect); another provider may have one.",
        _("Our provider could not reach this phone's operator. We can try another way."),
        label=_("unroutable"),
    ),
    Reason(
        "carrier_rejected", P, OTHER,
        "The destination carrier rejected the message without saying why.",
        _("The recipient's mobile operator refused the message."),
        label=_("carrier rejected"),
    ),
    Reason(
        "network_congestion", T, SAME,
        "The carrier network or the provider's queue is congested.",
        _("The mobile network was busy. The message will be sent again shortly."),
        label=_("network congestion"),
    ),
    Reason(
        "network_error", T, OTHER,
        "A network or system failure between the provider and the handset (MAP system failure, no response, "
        "carrier unreachable).",
        _("A network problem stopped the message. It will be sent again."),
        label=_("network error"),
    ),
    Reason(
        "provider_error", T, SAME,
        "The provider failed internally.",
        _("A technical problem at our messaging provider stopped the message. It will be sent again."),
        label=_("provider error"),
    ),
    Reason(
        "throttled", T, SAME,
        "We sent faster than the account, route or carrier allows (TPS limits).",
        _("Too many messages were being sent at once. This one will be sent again shortly."),
        _("Lower the sending rate or ask the provider for more throughput."),
        label=_("throttled"),
    ),
    Reason(
        "daily_limit", T, OTHER,
        "A daily or periodic volume cap was reached (10DLC daily caps, T-Mobile daily limit).",
        _("Our daily sending limit was reached. The message will be sent later."),
        _("Raise the campaign's volume tier or spread sending across senders."),
        label=_("daily limit"),
    ),
    Reason(
        "expired", T, SAME,
        "The validity period ran out before the handset took the message.",
        _("The message could not be delivered in time. The phone may have been off for a while."),
        _("Check the validity period: too short for the route, or too long for a one-time code."),
        label=_("expired"),
    ),
    Reason(
        "unknown", U, SAME,
        "The provider gave no usable reason, or one that may be temporary or permanent.",
        _("The message could not be delivered and the operator did not say why."),
        label=_("unknown"),
    ),
)  # fmt: skip

REASONS: dict[str, Reason] = {reason.slug: reason for reason in _REASONS}
UNKNOWN_REASON = REASONS["unknown"]


def reason_label(slug: str) -> str:
    """A reason in words, in the active language ("unknown subscriber"), not its code."""
    known = REASONS.get(slug)
    return str(known.label) if known else slug.replace("_", " ")


def reason_choices() -> list[tuple[str, str]]:
    """For forms and admin: the reasons, with their `applies` line as the label."""
    return [(reason.slug, f"{reason.slug} — {reason.applies}") for reason in _REASONS]

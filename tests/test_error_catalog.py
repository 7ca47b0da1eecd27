"""The error catalog: every code of the provider reference resolves to a reason and class; the
shipped table is valid; status fallbacks, leading zeros, the provider's own flag, overrides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receipts.errors import (
    CatalogError,
    classify_error,
    describe_reason,
    normalize_code,
    override_cache,
    parse_table,
    shipped_table,
)
from receipts.models import ErrorCodeOverride
from receipts.reasons import REASONS, ErrorClass, RetryAdvice

T, P, U = "temporary", "permanent", "unknown"

# Transcribed from shared/reference/providers.md §3 (not parsed at test time: the file may
# move). (provider, code, class the reference states or None where it states none). A reference
# class of "unknown" or "mixed", or a message that is itself "unknown error", allows the
# `unknown` reason; every other code must resolve to a real reason.
TWILIO = [
    ("30001", T), ("30002", P), ("30003", T), ("30004", P), ("30005", P), ("30006", P), ("30007", P),
    ("30008", T), ("30009", None), ("30010", P), ("30017", T), ("30018", P), ("30019", P), ("30022", T),
    ("30023", T), ("30024", P), ("30027", T), ("30032", P), ("21211", P), ("21408", P), ("21610", P),
    ("21612", P), ("21614", P), ("63018", T),
]  # fmt: skip
VONAGE = [
    ("1", U), ("2", T), ("3", P), ("4", P), ("5", T), ("6", P), ("7", T), ("8", T), ("9", P), ("10", P),
    ("11", P), ("12", T), ("13", P), ("14", P), ("15", T), ("16", T), ("50", P), ("51", P), ("52", P),
    ("53", P), ("54", P), ("99", U),
]  # fmt: skip
# Vonage's submit-response statuses (the send path), a separate namespace from receipt err-codes.
VONAGE_SUBMIT = [
    ("1", T), ("2", None), ("3", None), ("4", None), ("5", T), ("6", None), ("7", None), ("8", None),
    ("9", None), ("10", None), ("12", None), ("14", None), ("15", None), ("22", None), ("23", None),
    ("29", None), ("32", None), ("33", None),
]  # fmt: skip
# Infobip: the reference gives the provider's own `permanent` flag for each id.
INFOBIP = [
    ("1", True), ("2", False), ("5", False), ("6", False), ("8", False), ("9", True), ("11", True),
    ("12", True), ("13", False), ("21", False), ("27", False), ("31", False), ("32", False), ("33", False),
    ("34", False), ("256", False), *[(str(code), False) for code in range(500, 510)], ("565", True),
    ("573", True), ("581", False), ("603", True), ("607", True), ("541", False), ("542", False),
    *[(str(code), True) for code in range(2049, 2054)], ("4101", True), ("4103", True), ("4104", True),
    ("4202", True), ("2048", False), ("4098", False), ("5492", True), ("10", True), ("51", True),
    *[(str(code), True) for code in (630, 631, 632, 633, 810, 811, 815)], ("628", True),
]  # fmt: skip
# Where Infobip's flag contradicts the catalog's class; the flag wins (see the disagreement test).
INFOBIP_DISAGREEMENTS = {"51", "628", "4101", "4202"}
GSM_MAP = [
    ("1", P), ("5", T), ("6", T), ("9", P), ("11", P), ("12", P), ("13", T), ("21", T), ("27", T),
    ("31", T), ("32", T), ("33", T), ("34", T), ("35", T), ("36", T),
]  # fmt: skip
SMPP_COMMAND_STATUS = [
    ("0x08", T), ("0x14", T), ("0x58", T), ("0x64", T), ("0x0F", T), ("0x0B", P), ("0x0A", P), ("0x65", P),
]  # fmt: skip
SINCH = [
    ("402", P), ("403", T), ("404", T), ("405", P), ("406", T), ("407", None), ("408", P), ("410", P),
    ("411", P), ("412", P), ("413", P), ("414", "mixed"), ("415", "mixed"), ("416", "mixed"),
    ("417", "mixed"), ("418", "mixed"), ("15", None), ("60", None), ("62", None), ("64", None),
]  # fmt: skip
TELNYX = [
    ("40001", P), ("40002", T), ("40003", P), ("40004", T), ("40005", None), ("40006", T), ("40008", None),
    ("40009", P), ("40011", T), ("40300", P),
]  # fmt: skip
AWS = [
    ("TEXT_CARRIER_UNREACHABLE", T), ("TEXT_UNREACHABLE", T), ("TEXT_TTL_EXPIRED", T), ("TEXT_INVALID", P),
    ("TEXT_INVALID_MESSAGE", P), ("TEXT_CARRIER_BLOCKED", P), ("TEXT_BLOCKED", P), ("TEXT_SPAM", P),
    ("TEXT_PROTECT_BLOCKED", P), ("TEXT_UNKNOWN", U),
]  # fmt: skip
# Codes the reference lists that are not errors: a delivered receipt or an in-flight state.
NOT_ERRORS = [("vonage", "0"), ("infobip", "0"), ("sinch", "0"), ("sinch", "400"), ("sinch", "401")]
# Reference codes whose own wording is "unknown error" or "n/a": the `unknown` reason is right.
UNKNOWN_BY_REFERENCE = {("twilio", "30008"), ("twilio", "30009")}

CASES = [
    *[("twilio", code, cls) for code, cls in TWILIO],
    *[("vonage", code, cls) for code, cls in VONAGE],
    *[("vonage-submit", code, cls) for code, cls in VONAGE_SUBMIT],
    *[("infobip", code, P if flag else T) for code, flag in INFOBIP if code not in INFOBIP_DISAGREEMENTS],
    *[(provider, code, cls) for provider in ("smpp-text", "kannel") for code, cls in GSM_MAP + SMPP_COMMAND_STATUS],
    *[("sinch", code, cls) for code, cls in SINCH],
    *[("telnyx", code, cls) for code, cls in TELNYX],
    *[("aws-sns", code, cls) for code, cls in AWS],
]


@pytest.fixture(autouse=True)
def _fresh_overrides() -> Iterator[None]:
    override_cache.clear()
    yield
    override_cache.clear()


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "code", "reference_class"), CASES)
def test_every_reference_code_resolves_to_a_reason_and_the_reference_class(provider, code, reference_class):
    error = classify_error(provider=provider, status="undelivered", error_code=code)
    assert error.reason in REASONS
    assert error.error_class in ErrorClass.values
    if reference_class in (U, "mixed") or (provider, code) in UNKNOWN_BY_REFERENCE:
        return
    assert error.reason != "unknown"
    if reference_class is not None:
        assert error.error_class == reference_class


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "flag"), INFOBIP)
def test_infobip_flag_sets_the_class_and_disagrees_only_where_documented(code, flag):
    error = classify_error(provider="infobip", status="undelivered", error_code=code, permanent=flag)
    assert error.reason not in ("", "unknown")
    assert error.error_class == (P if flag else T)
    assert error.class_source == "provider"
    assert error.provider_disagrees == (code in INFOBIP_DISAGREEMENTS)


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "code"), NOT_ERRORS)
def test_no_error_codes_on_a_delivered_receipt_give_no_reason(provider, code):
    error = classify_error(provider=provider, status="delivered", error_code=code)
    assert (error.reason, error.error_class, error.catalog_class) == ("", "", "")


def test_shipped_table_parses_and_every_row_names_a_known_reason():
    table = shipped_table()
    assert len(table) > 150
    for entry in table.values():
        assert entry.reason in REASONS
        assert entry.error_class in ("", *ErrorClass.values)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["provider,code,reason,class,note", "twilio,1,no_such_reason,,"], "unknown reason"),
        (["provider,code,reason,class,note", "twilio,1,throttled,sometimes,"], "unknown class"),
        (["provider,code,reason,class,note", "twilio,01,throttled,,", "twilio,1,expired,,"], "listed twice"),
        (["provider,code,reason,class,note", ",1,throttled,,"], "required"),
    ],
)
def test_a_malformed_table_is_refused_with_the_line(rows, problem):
    with pytest.raises(CatalogError, match=problem):
        parse_table(rows)


def test_every_reason_has_a_class_an_advice_and_an_explanation():
    for reason in REASONS.values():
        assert reason.error_class in ErrorClass.values
        assert reason.advice in RetryAdvice.values
        assert str(reason.explanation).strip()
        assert reason.applies.strip()


def test_configuration_reasons_say_what_to_fix():
    for slug in ("sender_not_registered", "insufficient_credit", "account_suspended", "configuration_error"):
        assert REASONS[slug].error_class == ErrorClass.PERMANENT
        assert str(REASONS[slug].fix)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("001", "1"),
        ("1", "1"),
        ("000", "0"),
        (" 27 ", "27"),
        ("0x0000000B", "0xb"),
        ("0x0b", "0xb"),
        ("text_spam", "TEXT_SPAM"),
        ("¹", "¹"),  # a Unicode digit is a name, not a number
        ("٣", "٣"),
    ],
)
def test_codes_match_without_leading_zeros_or_case(raw, normalized):
    assert normalize_code(raw) == normalized


@pytest.mark.django_db
def test_smpp_three_digit_err_matches_the_gsm_code():
    for provider in ("smpp-text", "kannel"):
        error = classify_error(provider=provider, status="undelivered", error_code="001")
        assert (error.reason, error.error_class) == ("unknown_subscriber", P)
        assert classify_error(provider=provider, status="undelivered", error_code="027").reason == "absent_subscriber"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        ("expired", "", ("expired", T)),
        ("expired", "424242", ("expired", T)),
        ("undelivered", "", ("unknown", U)),
        ("rejected", "424242", ("unknown", U)),
        ("failed", "", ("unknown", U)),
        ("unknown", "", ("unknown", U)),
        ("delivered", "30003", ("", "")),
        ("sent", "30003", ("", "")),
        ("accepted", "", ("", "")),
    ],
)
def test_without_a_known_code_the_status_decides(status, code, expected):
    error = classify_error(provider="twilio", status=status, error_code=code)
    assert (error.reason, error.error_class) == expected


@pytest.mark.django_db
def test_provider_flag_wins_over_the_catalog_and_shows_the_disagreement():
    error = classify_error(provider="infobip", status="undelivered", error_code="628", permanent=True)
    assert (error.reason, error.error_class, error.catalog_class) == ("handset_error", P, T)
    assert (error.class_source, error.provider_disagrees) == ("provider", True)
    # The provider says the same route will fail again.
    assert describe_reason(error.reason, error.error_class)["retry_advice"] == RetryAdvice.OTHER_ROUTE


@pytest.mark.django_db
def test_provider_flag_that_agrees_is_not_a_disagreement():
    error = classify_error(provider="infobip", status="undelivered", error_code="1", permanent=True)
    assert (error.reason, error.error_class, error.catalog_class) == ("unknown_subscriber", P, P)
    assert (error.class_source, error.provider_disagrees) == ("provider", False)


@pytest.mark.django_db
def test_catalog_class_is_the_source_without_a_provider_flag():
    error = classify_error(provider="twilio", status="undelivered", error_code="30003")
    assert (error.reason, error.error_class, error.class_source) == ("absent_subscriber", T, "catalog")
    described = describe_reason(error.reason, error.error_class)
    assert described["retry_advice"] == RetryAdvice.SAME_ROUTE
    assert "switched off" in described["explanation"]


@pytest.mark.django_db
def test_an_override_applies_at_once_in_this_process():
    assert classify_error(provider="twilio", status="undelivered", error_code="30003").reason == "absent_subscriber"
    override = ErrorCodeOverride.objects.create(provider="twilio", code="30003", reason="landline")
    error = classify_error(provider="twilio", status="undelivered", error_code="30003")
    assert (error.reason, error.error_class) == ("landline", P)
    override.error_class = T
    override.save()
    assert classify_error(provider="twilio", status="undelivered", error_code="30003").error_class == T
    override.delete()
    assert classify_error(provider="twilio", status="undelivered", error_code="30003").reason == "absent_subscriber"


@pytest.mark.django_db
def test_a_bulk_delete_of_overrides_applies_at_once_too():
    """The admin's "delete selected" deletes through the queryset, not each row's delete()."""
    ErrorCodeOverride.objects.create(provider="twilio", code="30003", reason="landline")
    assert classify_error(provider="twilio", status="undelivered", error_code="30003").reason == "landline"
    ErrorCodeOverride.objects.filter(provider="twilio").delete()
    assert classify_error(provider="twilio", status="undelivered", error_code="30003").reason == "absent_subscriber"


@pytest.mark.django_db
def test_an_override_reaches_other_processes_after_the_cache_ttl(settings):
    classify_error(provider="vonage", status="undelivered", error_code="8")  # fills the cache
    # Another process's change: this process's cache is not cleared.
    ErrorCodeOverride.objects.bulk_create([ErrorCodeOverride(provider="vonage", code="8", reason="throttled")])
    assert classify_error(provider="vonage", status="undelivered", error_code="8").reason == "network_error"
    settings.DLR_ERROR_CATALOG_CACHE_SECONDS = 0
    assert classify_error(provider="vonage", status="undelivered", error_code="8").reason == "throttled"


@pytest.mark.django_db
def test_an_override_code_is_stored_without_leading_zeros_and_matches_any_spelling():
    ErrorCodeOverride.objects.create(provider="kannel", code="0034", reason="throttled")
    assert ErrorCodeOverride.objects.get().code == "34"
    assert classify_error(provider="kannel", status="undelivered", error_code="034").reason == "throttled"
    # The shared GSM table still answers for the other SMPP provider.
    assert classify_error(provider="smpp-text", status="undelivered", error_code="034").reason == "network_error"


@pytest.mark.django_db
def test_override_changes_are_kept_in_history():
    override = ErrorCodeOverride.objects.create(provider="sinch", code="404", reason="network_error")
    override.reason = "throttled"
    override.save()
    override.delete()
    history = ErrorCodeOverride.history.order_by("history_date")
    assert [(h.history_type, h.reason) for h in history] == [
        ("+", "network_error"),
        ("~", "throttled"),
        ("-", "throttled"),
    ]

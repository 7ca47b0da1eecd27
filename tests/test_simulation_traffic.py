"""The simulator's traffic: per-country fate mixes, custom mixes, and the transport anomalies
each rate asks for."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from dlrconsole.simulator import SimulatorConfig, SimulatorError, Target
from dlrconsole.simulator.base import FATES
from dlrconsole.simulator.traffic import (
    CONVERSION_DELAY,
    CONVERSION_RATES,
    DEFAULT_MIXES,
    LYING_ROUTE_REACH,
    choose_fate,
    parse_mixes,
    plan_message,
    plan_reach,
    plan_resend,
    resend_fate,
)

SAMPLES = 20_000


def shares(country: str) -> dict[str, float]:
    rng = random.Random(country)
    counts = Counter(choose_fate(rng, DEFAULT_MIXES[country]) for _ in range(SAMPLES))
    return {fate: counts[fate] / SAMPLES for fate in FATES}


def config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "base_url": "http://127.0.0.1:8000",
        "token": "t",
        "targets": [Target(slug="gw", provider="standard-webhooks", secret="whsec_" + "QUJD" * 8)],
    }
    return SimulatorConfig(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("country", ["FR", "GB", "DE"])
def test_western_europe_delivers_nearly_everything(country: str) -> None:
    assert shares(country)["delivered"] > 0.94


def test_harder_routes_fail_more_and_for_their_own_reasons() -> None:
    fr, ng, india, us = shares("FR"), shares("NG"), shares("IN"), shares("US")
    assert ng["delivered"] < 0.82 < fr["delivered"]
    assert ng["absent_subscriber"] > 5 * fr["absent_subscriber"]
    assert india["blocked_spam"] + india["opted_out"] > 0.07
    assert us["blocked_spam"] > 10 * fr["blocked_spam"]
    assert us["landline"] > fr["landline"]


def test_every_default_mix_names_known_fates_only() -> None:
    for mix in DEFAULT_MIXES.values():
        assert set(mix) <= set(FATES)


def test_a_custom_mix_replaces_the_default_of_its_country() -> None:
    mixes = parse_mixes({"FR": {"delivered": 0, "absent_subscriber": 1}})
    run = config(country_mixes=mixes, seed=1)
    rng = random.Random(5)
    plans = [plan_message(rng, run, now=datetime.now(UTC)) for _ in range(300)]

    assert {plan.fate for plan in plans if plan.country == "FR"} == {"absent_subscriber"}
    assert "delivered" in {plan.fate for plan in plans if plan.country == "GB"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"XX": {"delivered": 1}}, "no simulated country"),
        ({"FR": {"teleported": 1}}, "unknown fate"),
        ({"FR": {"delivered": -1}}, "non-negative"),
        ({"FR": {"delivered": True}}, "non-negative"),
        ({"FR": {"delivered": 0}}, "add up to zero"),
        ({"FR": {}}, "non-empty"),
    ],
)
def test_bad_custom_mixes_are_refused_with_a_reason(data: object, message: str) -> None:
    with pytest.raises(SimulatorError, match=message):
        parse_mixes(data)


def test_missing_final_receipts_are_never_posted() -> None:
    rng = random.Random(2)
    run = config(missing_rate=1.0, country_mixes={c: {"delivered": 1.0} for c in DEFAULT_MIXES})
    for _ in range(50):
        plan = plan_message(rng, run, now=datetime.now(UTC))
        assert "final receipt missing" in plan.traits
        assert plan.expected_status() in {"accepted", "sent"}


def test_a_late_receipt_is_posted_well_after_the_final_one() -> None:
    rng = random.Random(4)
    run = config(late_rate=1.0, out_of_order_rate=0.0, missing_rate=0.0, batch_rate=0.0)
    for _ in range(50):
        plan = plan_message(rng, run, now=datetime.now(UTC))
        final = next(post for post in plan.posts if post.events == (len(plan.events) - 1,))
        late = max(plan.posts, key=lambda post: post.due)
        assert "late receipt" in plan.traits
        assert late is not final
        assert late.due - final.due >= 3.0


def test_rates_must_be_fractions() -> None:
    with pytest.raises(SimulatorError, match="late-rate"):
        config(late_rate=1.5)


def test_messages_carry_the_text_of_their_flow() -> None:
    rng = random.Random(6)
    plans = [plan_message(rng, config(), now=datetime.now(UTC)) for _ in range(200)]
    texts = {plan.flow: plan.body for plan in plans}

    assert re.fullmatch(r"Your ACME code is \d{6}\. .*", texts["login-otp"])
    assert re.search(r"use \d{6} to reset your password", texts["password-reset"])
    order = next(plan for plan in plans if plan.flow == "order-update")
    assert order.client_reference.removeprefix("order-") in order.body
    assert texts["marketing"].endswith("Reply STOP to opt out.")


def test_a_resend_after_an_absent_subscriber_is_mostly_delivered_else_absent_again() -> None:
    rng = random.Random(8)
    fates = Counter(resend_fate(rng, config(), country="NG", previous_fate="absent_subscriber") for _ in range(SAMPLES))

    assert set(fates) == {"delivered", "absent_subscriber"}
    assert 0.72 < fates["delivered"] / SAMPLES < 0.78


def test_a_resend_of_a_message_the_simulator_did_not_see_fail_follows_its_country() -> None:
    rng = random.Random(9)
    fates = Counter(resend_fate(rng, config(), country="IN", previous_fate="") for _ in range(SAMPLES))

    assert 0.80 < fates["delivered"] / SAMPLES < 0.88
    assert fates["blocked_spam"] > 0


def test_a_resend_plan_keeps_the_given_id_and_is_never_registered() -> None:
    rng = random.Random(10)
    run = config()
    original = plan_message(rng, run, now=datetime.now(UTC))

    resend = plan_resend(
        rng, run, target=run.targets[0], provider_message_id="gw-1", recipient=original.recipient,
        country=original.country, body=original.body, original=original, now=datetime.now(UTC),
    )  # fmt: skip

    assert (resend.provider_message_id, resend.flow, resend.body) == ("gw-1", original.flow, original.body)
    assert resend.resend
    assert resend.traits[0] == "resend"
    assert "receipt before registration" not in resend.traits


def test_a_lying_route_reports_every_message_delivered_at_once_dated_before_its_submission() -> None:
    rng = random.Random(6)
    run = config(lying=frozenset({"gw"}), missing_rate=0.0, duplicate_rate=0.0, time_scale=5.0)
    now = datetime.now(UTC)
    for _ in range(50):
        plan = plan_message(rng, run, now=now)
        [event] = plan.events
        assert plan.expected_status() == "delivered"
        assert "faked delivered" in plan.traits
        assert (now - event.at).total_seconds() >= 180  # well before the submission
        assert min(post.due for post in plan.posts) < 0.5  # whatever the time scale


def test_only_a_connection_of_the_run_can_be_played_as_lying() -> None:
    with pytest.raises(SimulatorError, match="--lying names connections the run does not play: other"):
        config(lying=frozenset({"other"}))


@pytest.mark.django_db
def test_the_demo_has_one_grey_route() -> None:
    from dlrconsole.demo.management.commands.demo import GREY_ROUTE, ensure_demo_grey_route
    from receipts.models import Connection

    assert ensure_demo_grey_route()
    assert not ensure_demo_grey_route()
    assert Connection.objects.get(slug=GREY_ROUTE).provider == "standard-webhooks"


def test_the_product_reports_most_codes_that_reached_a_handset_a_few_seconds_later_and_nothing_else() -> None:
    rng, reach = random.Random(11), random.Random(12)
    run = config(time_scale=1.0)
    plans = [plan_message(rng, run, now=datetime.now(UTC)) for _ in range(4000)]
    for plan in plans:
        plan_reach(reach, run, plan)

    assert all(plan.reached_handset == (plan.fate == "delivered") for plan in plans)
    converted = [plan for plan in plans if plan.converts_due is not None]
    assert all(plan.fate == "delivered" and plan.flow in CONVERSION_RATES for plan in converted)
    codes = [plan for plan in plans if plan.fate == "delivered" and plan.flow in CONVERSION_RATES]
    assert 0.85 < len(converted) / len(codes) < 0.92  # 0.9 of sign-in codes, 0.85 of reset codes
    for plan in converted:
        arrived = max(event.offset for event in plan.events)
        assert plan.converts_due is not None
        assert arrived + CONVERSION_DELAY[0] <= plan.converts_due <= arrived + plan.register_due + CONVERSION_DELAY[1]


def test_of_a_lying_routes_delivered_only_the_share_that_truly_arrived_converts() -> None:
    rng, reach = random.Random(13), random.Random(14)
    run = config(lying=frozenset({"gw"}))
    plans = [plan_message(rng, run, now=datetime.now(UTC)) for _ in range(4000)]
    for plan in plans:
        plan_reach(reach, run, plan)

    assert {plan.expected_status() for plan in plans} == {"delivered"}
    arrived = [plan for plan in plans if plan.reached_handset]
    assert abs(len(arrived) / len(plans) - LYING_ROUTE_REACH) < 0.03
    assert all("never reached a handset" in plan.traits for plan in plans if not plan.reached_handset)
    converted = [plan for plan in plans if plan.converts_due is not None]
    assert converted
    assert all(plan.reached_handset and plan.flow in CONVERSION_RATES for plan in converted)
    codes = [plan for plan in plans if plan.flow in CONVERSION_RATES]
    assert len(converted) / len(codes) < LYING_ROUTE_REACH  # of all it called delivered


def test_a_resend_is_never_reported_as_converted() -> None:
    rng = random.Random(15)
    run = config(country_mixes={c: {"delivered": 1.0} for c in DEFAULT_MIXES})
    plans = (plan_message(rng, run, now=datetime.now(UTC)) for _ in range(100))
    original = next(plan for plan in plans if plan.flow == "login-otp")
    resend = plan_resend(
        rng, run, target=run.targets[0], provider_message_id="gw-2", recipient=original.recipient,
        country=original.country, body=original.body, original=original, now=datetime.now(UTC),
    )  # fmt: skip
    plan_reach(random.Random(16), run, resend)

    assert resend.reached_handset
    assert resend.converts_due is None

"""The product feed: events about messages, POSTed to the product's endpoints, signed with
Standard Webhooks headers and retried on the Standard Webhooks schedule.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
(headers webhook-id / webhook-timestamp / webhook-signature; retry schedule "immediately, 5 s,
5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h"; 410 Gone disables the endpoint).

Lifecycle of a delivery: `feed_publish` writes it due now, in the caller's transaction →
`feed_deliver_due` claims it (SKIP LOCKED, then a lease moves its due time past the HTTP
timeouts so nobody else picks it while it is in flight) → POST → delivered, or rescheduled on
the schedule, or abandoned after the last slot.

In order per (endpoint, message): a delivery is not attempted while an earlier delivery of the
same message to the same endpoint is still open (pending or failed); it waits. Abandoning the
earlier one releases it. Events of different messages never wait on each other.

An endpoint is disabled at once on 410 Gone, and when one of its deliveries is abandoned (it
failed every slot of the schedule, about three days). Re-enabling it (`feed_endpoint_enable`,
the admin's action and form) makes its open deliveries due at once.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from dlrconsole.lib import outbound
from dlrconsole.lib.array_cursor import array_cursor
from dlrconsole.lib.deferred_inserts import deferred_inserts, insert
from dlrconsole.lib.failures import failure_summary
from dlrconsole.lib.languages import in_default_language
from dlrconsole.lib.standard_webhooks import generate_secret, sign, signed_headers
from dlrconsole.lib.tasks import kick
from receipts.errors import describe_reason
from receipts.models import Message
from retries.feed.models import FeedAttempt, FeedDelivery, FeedEvent, ProductEndpoint

# Delay before attempt 1, 2, ...; after the last one fails the delivery is abandoned.
SCHEDULE = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
# Retry-After is honoured on these, up to a bound: a product cannot park the feed for a week.
RETRY_AFTER_STATUSES = frozenset({429, 502, 504})
RETRY_AFTER_MAX = timedelta(hours=24)
OPEN = (FeedDelivery.Status.PENDING, FeedDelivery.Status.FAILED)
# The deliverer (retries/feed/tasks.py), kicked when a delivery is published.
DELIVER_FEED = "retries.feed.tasks.deliver_feed"
# A pass records its successful POSTs together, at most this many or this old: one transaction
# instead of one per POST (bench/profile_decisions.py). A worker killed before it records them
# leaves them leased; they are posted again after the lease under the same webhook-id, which
# receivers deduplicate on (docs/FEED.md) -- the at-least-once the feed always promised.
SUCCESSES_HELD = 50
SUCCESSES_HELD_SECONDS = 0.2

logger = logging.getLogger(__name__)


def feed_next_delay(attempts_made: int) -> timedelta | None:
    """The wait after `attempts_made` failed attempts; None: the schedule is spent."""
    return SCHEDULE[attempts_made] if attempts_made < len(SCHEDULE) else None


def feed_retry_after(value: str, *, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date), bounded; None when absent or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        delay = when - now
    return min(max(delay, timedelta(0)), RETRY_AFTER_MAX)


def feed_headers(
    *, secret: str, webhook_id: str, timestamp: int, body: bytes, previous_secret: str = ""
) -> dict[str, str]:
    """The signed headers; with a previous secret (a rotation's grace period) the signature
    header carries both signatures, space-separated, as the spec allows: a product verifying
    with either secret accepts the delivery."""
    headers = signed_headers(secret=secret, msg_id=webhook_id, timestamp=timestamp, body=body)
    if previous_secret:
        also = sign(previous_secret, webhook_id, timestamp, body)
        headers["webhook-signature"] = f"{headers['webhook-signature']} {also}"
    return headers


def feed_time(when: datetime) -> str:
    """A time in an event: RFC 3339 in UTC with `Z` (docs/FEED.md)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def feed_payload(*, event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"type": event_type, "timestamp": feed_time(now), "data": data}


# Stored and sent to the product, a program: in the deployment's language (LANGUAGE_CODE),
# never in that of the request that happened to record the event.
@in_default_language
def feed_message_data(message: Message) -> dict[str, Any]:
    """What every event says about its message; failures add the catalog's reading.
    `message_id` is the console's id (the API's /messages/<id>/), `provider_message_id` the
    provider's, `client_reference` the product's own (docs/FEED.md)."""
    data: dict[str, Any] = {
        "message_id": message.pk,
        "provider_message_id": message.provider_message_id,
        "client_reference": message.client_reference,
        "connection": message.connection.slug,
        "recipient": message.recipient,
        "flow": message.flow,
        "status": message.status,
    }
    if message.error_code or message.reason:
        described = describe_reason(message.reason, message.error_class)
        data |= {
            "error_code": message.error_code,
            "reason": message.reason,
            "error_class": message.error_class,
            "retry_advice": described["retry_advice"],
            "explanation": described["explanation"],  # already str(): lazy text rendered
        }
    return data


def feed_publish(*, message: Message, event_type: str, payload: dict[str, Any] | None = None) -> FeedEvent:
    """Record one event and one delivery per enabled, subscribed endpoint, in the caller's
    transaction: the event is sent only if what it reports committed. `payload` adds to the
    message's data (e.g. the retry's due time)."""
    now = timezone.now()
    data = feed_message_data(message) | (payload or {})
    event = insert(
        FeedEvent,
        type=FeedEvent.Type(event_type),
        message=message,
        payload=feed_payload(event_type=event_type, data=data, now=now),
        created_at=now,
    )
    held = deferred_inserts()
    enabled = held.memo("feed endpoints", _enabled_endpoints) if held is not None else _enabled_endpoints()
    endpoints = [e for e in enabled if e.subscribes_to(event_type)]
    deliveries = [FeedDelivery(event=event, endpoint=e, message=message, next_attempt_at=now) for e in endpoints]
    if held is not None:
        for delivery in deliveries:
            held.hold(delivery)
    else:
        FeedDelivery.objects.bulk_create(deliveries)
    if endpoints:
        # Deliver now rather than at the deliverer's next beat tick (a spare kick finds nothing due).
        transaction.on_commit(lambda: kick(DELIVER_FEED))
    return event


def _enabled_endpoints() -> list[ProductEndpoint]:
    return list(ProductEndpoint.objects.filter(enabled=True))


def _claim_due(now: datetime, limit: int) -> list[int]:
    """Lease up to `limit` due deliveries whose earlier siblings are all closed."""
    earlier_open = FeedDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        message_id=OuterRef("message_id"),
        event_id__lt=OuterRef("event_id"),
        status__in=OPEN,
    )
    with transaction.atomic():
        # SKIP LOCKED: a concurrent deliverer skips what this one is claiming; after commit the
        # lease has moved the due time, so it does not see them as due either.
        ids = list(
            FeedDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=OPEN, next_attempt_at__lte=now, endpoint__enabled=True, endpoint__paused_at=None)
            .exclude(Exists(earlier_open))
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        FeedDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + feed_lease())
    return ids


def feed_lease() -> timedelta:
    """A claimed delivery is due again after this if its worker died holding it. A live pass
    holds its claims at most until Celery's hard time limit kills it, so nobody else takes a
    delivery it may still post."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str
    duration_ms: int
    retry_after: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def feed_post(
    *, url: str, headers: dict[str, str], body: bytes, session: outbound.OutboundSession | None = None
) -> PostResult:
    """One POST through the outbound guard; never raises. Errors name the failure, never the
    URL, the headers or anything the endpoint answered. A pass's `session` keeps connections to
    an endpoint open across its deliveries."""
    started = time.monotonic()
    try:
        reply = outbound.call("POST", url, data=body, headers=headers, timeout=feed_timeouts(), session=session)
    except outbound.DestinationRefused as exc:
        return PostResult(None, f"refused: {exc}"[:255], _ms_since(started))
    except requests.Timeout:
        return PostResult(None, "timed out", _ms_since(started))
    except requests.RequestException as exc:
        return PostResult(None, f"request failed: {type(exc).__name__}", _ms_since(started))
    error = "" if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
    return PostResult(reply.status_code, error, _ms_since(started), reply.headers.get("retry-after", ""))


def feed_timeouts() -> tuple[float, float]:
    """(connect, read) for one POST; settings.py fits their sum inside a pass."""
    return (float(settings.DLR_FEED_CONNECT_TIMEOUT_SECONDS), float(settings.DLR_FEED_READ_TIMEOUT_SECONDS))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def feed_deliver_due(now: datetime | None = None, limit: int = 100, deadline: float | None = None) -> int:
    """Attempt due deliveries, `limit` per claim, claiming again while claims come back full;
    returns how many were attempted.

    A POST is started only if it can finish (its connect and read timeouts) before `deadline`, a
    time.monotonic() value: by default the task's soft time limit less the pass's margin, so a
    pass never starts a request it cannot finish. Claimed deliveries left then are released,
    not left to their lease. A pass stopped anyway (the soft time limit, a worker shutting down)
    records the POST in flight as timed out and releases the rest. A delivery whose processing
    raises unexpectedly is recorded as failed and the pass moves on."""
    deadline = outbound.pass_deadline() if deadline is None else deadline
    longest = sum(feed_timeouts())
    attempted = 0
    held: list[int] = []
    in_flight: int | None = None
    successes = Successes()
    try:
        with outbound.OutboundSession() as session:
            while True:
                # Recorded before claiming: a message's next event waits for this one to close.
                successes.record()
                ids = _claim_due(now or timezone.now(), limit)
                held = list(ids)
                claimed = FeedDelivery.objects.select_related("event", "endpoint").in_bulk(ids)
                for delivery_id in ids:
                    if outbound.remaining(deadline) < longest:
                        return attempted
                    in_flight = delivery_id
                    # The pass's clock when one is given (tests); else each result stamped on arrival.
                    _attempt_isolated(claimed[delivery_id], now=now, session=session, successes=successes)
                    in_flight = None
                    held.remove(delivery_id)
                    attempted += 1
                    if successes.due():
                        successes.record()
                if len(ids) < limit:
                    return attempted
    except BaseException:
        if in_flight is not None:
            held.remove(in_flight)
            _record_safely(in_flight, "timed out: the delivery pass was stopped", now=now)
        raise
    finally:
        try:
            successes.record()
        finally:
            if held:
                # Due again at once for the next pass, rather than after their lease.
                FeedDelivery.objects.filter(pk__in=held, status__in=OPEN).update(next_attempt_at=now or timezone.now())


class Successes:
    """A pass's successful POSTs not yet recorded (SUCCESSES_HELD): each one's attempt row and
    its delivery closed, and the endpoints' failure streaks reset, in one transaction."""

    def __init__(self) -> None:
        self.held: list[tuple[FeedDelivery, PostResult, datetime]] = []
        self.since = 0.0

    def add(self, delivery: FeedDelivery, result: PostResult, *, now: datetime) -> None:
        if not self.held:
            self.since = time.monotonic()
        self.held.append((delivery, result, now))

    def due(self) -> bool:
        return len(self.held) >= SUCCESSES_HELD or (
            bool(self.held) and time.monotonic() - self.since >= SUCCESSES_HELD_SECONDS
        )

    def record(self) -> None:
        if not self.held:
            return
        deliveries = []
        attempts = []
        for delivery, result, now in self.held:
            delivery.attempts += 1
            delivery.last_status_code, delivery.last_error = result.status_code, result.error
            delivery.last_duration_ms = result.duration_ms
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = FeedDelivery.Status.DELIVERED, now, None
            deliveries.append(delivery)
            attempts.append(
                FeedAttempt(
                    delivery=delivery, number=delivery.attempts, attempted_at=now, status_code=result.status_code,
                    error=result.error, duration_ms=result.duration_ms,
                )
            )  # fmt: skip
        with transaction.atomic():
            FeedAttempt.objects.bulk_create(attempts)
            _close_delivered(deliveries)
            # The common case touches no endpoint row: only a streak of failures to reset takes a write.
            ProductEndpoint.objects.filter(
                pk__in={d.endpoint_id for d in deliveries}, consecutive_failures__gt=0
            ).update(consecutive_failures=0)
        self.held.clear()


# Django's bulk_update builds a CASE per row and field: 2.5 ms of Python per delivery here.
CLOSE_DELIVERED_SQL = """
UPDATE feed_feeddelivery AS d
SET status = 'delivered', next_attempt_at = NULL, last_error = '', attempts = v.attempts,
    last_status_code = v.status_code, last_duration_ms = v.duration_ms, delivered_at = v.delivered_at
FROM unnest(%b::bigint[], %b::integer[], %b::integer[], %b::integer[], %b::timestamptz[])
    AS v (id, attempts, status_code, duration_ms, delivered_at)
WHERE d.id = v.id
"""


def _close_delivered(deliveries: list[FeedDelivery]) -> None:
    if connection.vendor != "postgresql":  # the demo's SQLite: one statement each
        for d in deliveries:
            FeedDelivery.objects.filter(pk=d.pk).update(
                status=d.status, next_attempt_at=None, last_error="", attempts=d.attempts,
                last_status_code=d.last_status_code, last_duration_ms=d.last_duration_ms, delivered_at=d.delivered_at,
            )  # fmt: skip
        return
    columns = ("pk", "attempts", "last_status_code", "last_duration_ms", "delivered_at")
    with array_cursor(connection) as cursor:
        cursor.execute(CLOSE_DELIVERED_SQL, [[getattr(d, name) for d in deliveries] for name in columns])


def _attempt_isolated(
    delivery: FeedDelivery,
    *,
    now: datetime | None,
    session: outbound.OutboundSession,
    successes: Successes | None = None,
) -> None:
    try:
        _attempt(delivery, now=now, session=session, successes=successes)
    except SoftTimeLimitExceeded:
        raise  # the pass ran out of time, not this delivery (feed_deliver_due records it)
    except Exception as exc:
        logger.exception("feed delivery %s raised; recorded as failed", delivery.pk)
        _record_safely(delivery.pk, f"internal error: {failure_summary(exc)}", now=now)


def _record_safely(delivery_id: int, error: str, *, now: datetime | None) -> None:
    """Record a failed try of a delivery whose own processing could not (it raised, or the
    pass was stopped mid-POST): on the schedule like any failure, or at least released."""
    now = now or timezone.now()
    try:
        delivery = FeedDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
        if delivery.status in OPEN:
            _record(delivery, PostResult(None, error[:255], 0), now=now)
    except Exception:
        logger.exception("feed delivery %s could not be recorded; released", delivery_id)
        FeedDelivery.objects.filter(pk=delivery_id, status__in=OPEN).update(next_attempt_at=now + SCHEDULE[1])


def _attempt(
    delivery: FeedDelivery,
    *,
    now: datetime | None,
    session: outbound.OutboundSession | None = None,
    successes: Successes | None = None,
) -> None:
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    signing = delivery.endpoint.signing_secrets(now or timezone.now())
    headers = feed_headers(
        secret=signing[0],
        previous_secret=signing[1] if len(signing) > 1 else "",
        webhook_id=delivery.event.webhook_id,
        timestamp=int((now or timezone.now()).timestamp()),
        body=body,
    )
    result = feed_post(url=delivery.endpoint.url, headers=headers, body=body, session=session)
    if result.ok and successes is not None:
        successes.add(delivery, result, now=now or timezone.now())
        return
    if successes is not None:
        successes.record()  # first: an endpoint's failure streak counts from its last success
    _record(delivery, result, now=now or timezone.now())


def _record(delivery: FeedDelivery, result: PostResult, *, now: datetime) -> None:
    with transaction.atomic():
        delivery.attempts += 1
        FeedAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        delivery.last_duration_ms = result.duration_ms
        if result.ok:
            _delivered(delivery, now=now)
            return
        endpoint = ProductEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        was = (endpoint.enabled, endpoint.disabled_reason)
        _failed(delivery, endpoint, result, now=now)
        delivery.save()
        # Only disabling the endpoint is a configuration change (its history, the audit log);
        # the failure count alone moves on every delivery and is saved without a record.
        fields = ["consecutive_failures", "updated_at"]
        if (endpoint.enabled, endpoint.disabled_reason) != was:
            fields += ["enabled", "disabled_reason"]
        endpoint.save(update_fields=fields)


def _delivered(delivery: FeedDelivery, *, now: datetime) -> None:
    delivery.status = FeedDelivery.Status.DELIVERED
    delivery.delivered_at = now
    delivery.next_attempt_at = None
    delivery.save()
    # The common case touches no endpoint row: only a streak of failures to reset takes a write
    # (every delivery of the endpoint used to lock that one row in turn).
    ProductEndpoint.objects.filter(pk=delivery.endpoint_id, consecutive_failures__gt=0).update(consecutive_failures=0)


def _failed(delivery: FeedDelivery, endpoint: ProductEndpoint, result: PostResult, *, now: datetime) -> None:
    endpoint.consecutive_failures += 1
    delay = feed_next_delay(delivery.attempts - delivery.attempts_before_replay)
    if result.status_code == 410:
        # Gone: the product removed this endpoint. Keep the delivery open so that re-enabling
        # the endpoint resumes it.
        endpoint.enabled = False
        endpoint.disabled_reason = f"410 Gone from the endpoint at {now.isoformat()}"
    if delay is None:
        delivery.status = FeedDelivery.Status.ABANDONED
        delivery.next_attempt_at = None
        endpoint.enabled = False
        endpoint.disabled_reason = (
            f"delivery of {delivery.event.webhook_id} abandoned after {delivery.attempts} attempts at {now.isoformat()}"
        )
        return
    if result.status_code in RETRY_AFTER_STATUSES:
        asked = feed_retry_after(result.retry_after, now=now)
        delay = max(delay, asked) if asked is not None else delay
    delivery.status = FeedDelivery.Status.FAILED
    delivery.next_attempt_at = now + delay


def feed_endpoint_enable(*, endpoint: ProductEndpoint, now: datetime | None = None) -> int:
    """Enable an endpoint and make its open deliveries due at once; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ProductEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.enabled, locked.disabled_reason, locked.consecutive_failures = True, "", 0
        # A save, not an update: re-enabling is recorded in the endpoint's history (audit log).
        locked.save(update_fields=["enabled", "disabled_reason", "consecutive_failures", "updated_at"])
        endpoint.refresh_from_db()
        return FeedDelivery.objects.filter(endpoint=endpoint, status__in=OPEN).update(next_attempt_at=now)


# Writes of the product's own management of its endpoints (dlrconsole/api/feed.py).

# How long a rotated-out secret still signs, by default and at most: long enough to deploy the
# new secret to every instance of the product, short enough that a leaked one dies soon.
ROTATION_GRACE_DEFAULT = timedelta(hours=24)
ROTATION_GRACE_MAX = timedelta(days=7)


class FeedRefused(Exception):
    """Why a request on an endpoint or a delivery cannot be carried out now (a 409's reason)."""


def feed_endpoint_create(*, owner: Any, name: str, url: str, event_types: list[str]) -> tuple[ProductEndpoint, str]:
    """A new endpoint owned by `owner`, with a generated secret; returns it and the secret,
    which is shown this once. Validated as a whole first (ValidationError): never half-stored."""
    secret = generate_secret()
    endpoint = ProductEndpoint(owner=owner, name=name, url=url, secret=secret, event_types=event_types)
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


def feed_endpoint_rotate_secret(
    *, endpoint: ProductEndpoint, grace: timedelta = ROTATION_GRACE_DEFAULT, now: datetime | None = None
) -> str:
    """A new secret, returned once. The old one keeps signing beside it for `grace` (0: at
    once no more); a rotation within a grace period drops the secret before the old one."""
    if not timedelta(0) <= grace <= ROTATION_GRACE_MAX:
        raise ValueError(f"the grace period is 0 to {int(ROTATION_GRACE_MAX.total_seconds())} seconds")
    now = now or timezone.now()
    secret = generate_secret()
    with transaction.atomic():
        locked = ProductEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret if grace else ""
        locked.previous_secret_expires_at = now + grace if grace else None
        locked.secret = secret
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    endpoint.refresh_from_db()
    return secret


def feed_endpoint_pause(*, endpoint: ProductEndpoint, now: datetime | None = None) -> None:
    """Hold its deliveries: events are still recorded for it, sent when it resumes."""
    with transaction.atomic():
        locked = ProductEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.paused_at is None:
            locked.paused_at = now or timezone.now()
            locked.save(update_fields=["paused_at", "updated_at"])
    endpoint.refresh_from_db()


def feed_endpoint_resume(*, endpoint: ProductEndpoint, now: datetime | None = None) -> int:
    """Unpause, and enable it again if the feed had disabled it (410, a delivery abandoned);
    its open deliveries are due at once. Returns how many."""
    with transaction.atomic():
        locked = ProductEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.paused_at is not None:
            locked.paused_at = None
            locked.save(update_fields=["paused_at", "updated_at"])
        return feed_endpoint_enable(endpoint=endpoint, now=now)


def feed_delivery_replay(*, delivery: FeedDelivery, now: datetime | None = None) -> FeedDelivery:
    """Send a delivery again, whatever became of it (delivered, abandoned, still failing):
    due now, on the schedule from its start, under the event's same webhook-id (a product that
    deduplicates sees a repeat). Refused while its endpoint is disabled (FeedRefused); to a
    paused endpoint it waits for the resume."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = FeedDelivery.objects.select_for_update().select_related("endpoint", "event").get(pk=delivery.pk)
        if not locked.endpoint.enabled:
            raise FeedRefused(
                f"the endpoint is disabled ({locked.endpoint.disabled_reason or 'by an admin'}): resume it first"
            )
        locked.status = FeedDelivery.Status.PENDING
        locked.attempts_before_replay = locked.attempts
        locked.next_attempt_at = now
        locked.delivered_at = None
        locked.save(update_fields=["status", "attempts_before_replay", "next_attempt_at", "delivered_at"])
        transaction.on_commit(lambda: kick(DELIVER_FEED))
    return locked

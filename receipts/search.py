"""The console's search box and keyset pages of messages.

One box takes a phone number in any common spelling, a provider's message id or the product's
client reference. The text is read as a number when it looks like one and parses; it is always
also matched exactly against ids and references, so an all-digit message id is still found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import phonenumbers
from django.db.models import Q, QuerySet, Value
from django.utils.translation import gettext

from receipts.countries import country_name
from receipts.models import Message
from receipts.phones import InvalidNumber, parse_number

# Beyond this many matches of one lookup, the search filters by the lookup itself rather than
# by a list of ids: a list of thousands of ids would cost more than it saves.
MATCHES_PER_LOOKUP = 500
# Digits with the separators people type: "+33 6 12 34 56 78", "(415) 555-0100", "0033.6…".
PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]{6,40}")


@dataclass(frozen=True)
class SearchTerm:
    text: str
    number: str = ""  # E.164 when the text reads as a phone number
    number_problem: str = ""  # why text that looks like a number did not read as one
    # The configured default region a national number was read in (DLR_DEFAULT_REGION), to say so.
    assumed_region: str = ""

    @property
    def assumed_country(self) -> str:
        return country_name(self.assumed_region) if self.assumed_region else ""

    @property
    def assumed_calling_code(self) -> int:
        return phonenumbers.country_code_for_region(self.assumed_region) if self.assumed_region else 0

    def lookups(self) -> list[Q]:
        """The equality lookups the text is matched by, each served by its own index
        (provider id, client reference, recipient)."""
        found = [Q(provider_message_id=self.text)]
        if self.text:
            # Spelled as the partial index's condition, so the planner can use it.
            found.append(Q(client_reference=self.text) & ~Q(client_reference=""))
        if self.number:
            found.append(Q(recipient=self.number))
        return found

    def condition(self) -> Q:
        """The messages the text matches, as ids looked up one index at a time.

        Their OR in one query, ordered by (submitted_at, id) with a page's LIMIT, made
        PostgreSQL walk the submitted_at index until enough rows matched: past a million
        messages, a number with a few old messages took over a second. Each lookup alone is an
        index range, and a few ids make the page a primary-key fetch and a small sort, with
        the other filters and the keyset cursor applied as before. A lookup matching more than
        MATCHES_PER_LOOKUP rows (a test number used all day) stays a condition of the query."""
        lookups = self.lookups()
        # One round trip: each lookup its own limited branch of a UNION ALL, tagged with its number.
        branches = [
            Message.objects.filter(lookup)
            .order_by()
            .annotate(lookup=Value(n))
            .values_list("id", "lookup")[: MATCHES_PER_LOOKUP + 1]
            for n, lookup in enumerate(lookups)
        ]
        found: dict[int, list[int]] = {n: [] for n in range(len(lookups))}
        for message_id, n in branches[0].union(*branches[1:], all=True):
            found[n].append(message_id)
        ids = sorted({i for n, matched in found.items() if len(matched) <= MATCHES_PER_LOOKUP for i in matched})
        kept = [lookups[n] for n, matched in found.items() if len(matched) > MATCHES_PER_LOOKUP]
        condition = Q(pk__in=ids)
        for lookup in kept:
            condition |= lookup
        return condition

    def matched_fields(self, rows: Iterable[Message]) -> list[str]:
        """Which fields the shown rows matched on, to explain the result."""
        fields = set()
        for row in rows:
            if self.number and row.recipient == self.number:
                fields.add("phone number")
            if row.provider_message_id == self.text:
                fields.add("provider message id")
            if row.client_reference == self.text:
                fields.add("client reference")
        return [name for name in ("phone number", "provider message id", "client reference") if name in fields]


def search_interpret(text: str, *, region: str = "", default_region: str = "") -> SearchTerm:
    """Decide what the search box holds: a number (with the country hint for national
    spellings, else the configured default region, which the term then names) or an id/reference."""
    text = text.strip()
    if not PHONE_LIKE.fullmatch(text):
        return SearchTerm(text)
    assumed = default_region if not region and default_region and not text.startswith(("+", "00")) else ""
    region = region or assumed
    try:
        return SearchTerm(text, number=parse_number(text, region=region).e164, assumed_region=assumed)
    except InvalidNumber as exc:
        if region or text.startswith(("+", "00")):
            return SearchTerm(text, number_problem=str(exc))
        problem = gettext("%(problem)s; add a country hint for a national number") % {"problem": exc}
        return SearchTerm(text, number_problem=problem)


class InvalidCursor(ValueError):
    """A page link's cursor that we did not make."""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"(-?\d{1,20})_(\d{1,20})")


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order (submitted_at, id): unique, so pages never skip
    or repeat a row, and indexed (message_submitted_id_idx), so any page is a range scan."""

    submitted_at: datetime
    id: int

    @classmethod
    def of(cls, message: Message) -> Cursor:
        return cls(message.submitted_at, message.pk)

    def encode(self) -> str:
        return f"{(self.submitted_at - EPOCH) // timedelta(microseconds=1)}_{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        match = CURSOR.fullmatch(text)
        if match is None:
            raise InvalidCursor(gettext("not a page position of this console"))
        try:
            at = EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError:
            raise InvalidCursor(gettext("a page position out of range")) from None
        return cls(at, int(match[2]))


def older_than(queryset: QuerySet[Message], cursor: Cursor) -> QuerySet[Message]:
    # (submitted_at, id) < cursor, spelled so that every database uses the index: the range
    # on submitted_at is the index condition, the tie on equal timestamps a cheap filter.
    return queryset.filter(submitted_at__lte=cursor.submitted_at).exclude(
        submitted_at=cursor.submitted_at, id__gte=cursor.id
    )


def newer_than(queryset: QuerySet[Message], cursor: Cursor) -> QuerySet[Message]:
    return queryset.filter(submitted_at__gte=cursor.submitted_at).exclude(
        submitted_at=cursor.submitted_at, id__lte=cursor.id
    )


NEWEST_FIRST = ("-submitted_at", "-id")
OLDEST_FIRST = ("submitted_at", "id")


@dataclass(frozen=True)
class MessagePage:
    rows: list[Message]
    older: Cursor | None  # pass as `before` for the next older page
    newer: Cursor | None  # pass as `after` for the next newer page


def message_page(
    queryset: QuerySet[Message], *, before: Cursor | None = None, after: Cursor | None = None, size: int = 50
) -> MessagePage:
    """One page, newest first, located by a cursor instead of an offset: fetching page 1000
    costs the same as page 1."""
    if after is not None:
        fetched = list(newer_than(queryset, after).order_by(*OLDEST_FIRST)[: size + 1])
        rows = fetched[:size][::-1]
        newer = Cursor.of(rows[0]) if len(fetched) > size else None
        return MessagePage(rows, older=Cursor.of(rows[-1]) if rows else None, newer=newer)
    page = older_than(queryset, before) if before is not None else queryset
    fetched = list(page.order_by(*NEWEST_FIRST)[: size + 1])
    rows = fetched[:size]
    older = Cursor.of(rows[-1]) if len(fetched) > size else None
    return MessagePage(rows, older=older, newer=Cursor.of(rows[0]) if before is not None and rows else None)


def message_batches(queryset: QuerySet[Message], *fields: str, batch_size: int = 2000) -> Iterator[tuple]:
    """Every matching row's `fields`, newest first, one keyset batch at a time: memory stays
    that of one batch whatever the size of the result. The keyset columns are fetched after
    `fields` and stripped from what is yielded."""
    cursor: Cursor | None = None
    while True:
        batch = older_than(queryset, cursor) if cursor is not None else queryset
        rows = batch.order_by(*NEWEST_FIRST).values_list(*fields, "submitted_at", "id")[:batch_size]
        count = 0
        last = None
        # iterator(): rows stream from the database in chunks instead of filling the queryset cache.
        for row in rows.iterator(chunk_size=500):
            count += 1
            last = row
            yield row[:-2]
        if count < batch_size or last is None:
            return
        cursor = Cursor(last[-2], last[-1])

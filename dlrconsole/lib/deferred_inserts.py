"""Inserts held back and written set-based: a batch of outbox events decides each event in memory
and writes all their rows at the end, a few `INSERT … RETURNING` statements for the batch
instead of several round trips per event (bench/profile_decisions.py: most of a decision's time
was the ORM and the database's round trips of its single-row inserts).

Code that records rows calls `insert(Model, **fields)`: inside `deferring(unit)` the unsaved row
is kept in the unit, otherwise it is created at once. `unit.flush()` creates the held rows, one
statement per model (dlrconsole/lib/bulk_writes.py), models in the order their first row was held: a row that points to
another held row must be held after it (a decision before its attempt), so its parent has its
primary key by the time it is written, and Django copies it into the foreign key then.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import models

from dlrconsole.lib.bulk_writes import bulk_insert

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")

_current: ContextVar[DeferredInserts | None] = ContextVar("deferred_inserts", default=None)


class DeferredInserts:
    def __init__(self) -> None:
        self._rows: dict[type[models.Model], list[models.Model]] = {}
        self._memo: dict[str, Any] = {}
        # held_keys' sets: (model, key) -> (rows counted, the generation they were counted in, keys)
        self._keys: dict[tuple[type[models.Model], Callable[[Any], Hashable]], tuple[int, int, set[Hashable]]] = {}
        self._generation = 0  # a rollback or a flush lets rows go: every key set is counted again

    def hold(self, row: M) -> M:
        self._rows.setdefault(type(row), []).append(row)
        return row

    def held(self, model: type[M]) -> list[M]:
        return self._rows.get(model, [])  # type: ignore[return-value]

    def held_keys(self, model: type[M], key: Callable[[M], Hashable]) -> set[Hashable]:
        """`key` of every held row of `model`, kept up to date as rows are held: a lookup per
        event of a batch instead of a scan of every row held before it (500 events asking
        "did this message already get this event?" read 125,000 rows)."""
        rows = self.held(model)
        counted, generation, keys = self._keys.get((model, key), (0, self._generation, set()))
        if generation != self._generation:  # rows only shrink by a rollback or a flush
            counted, keys = 0, set()
        keys.update(map(key, rows[counted:]))
        self._keys[(model, key)] = (len(rows), self._generation, keys)
        return keys

    def memo(self, key: str, load: Callable[[], T]) -> T:
        """`load()` once per unit: what every held row of the batch reads alike (the feed's endpoints)."""
        if key not in self._memo:
            self._memo[key] = load()
        value: T = self._memo[key]
        return value

    def mark(self) -> dict[type[models.Model], int]:
        return {model: len(rows) for model, rows in self._rows.items()}

    def rollback(self, mark: dict[type[models.Model], int]) -> None:
        """Let go of what was held since `mark`: a failed event leaves nothing to write."""
        for model in list(self._rows):
            del self._rows[model][mark.get(model, 0) :]
            if not self._rows[model]:
                del self._rows[model]
        self._generation += 1

    def flush(self) -> int:
        """Create every held row; how many. The caller's transaction holds them all or none."""
        written = 0
        for rows in self._rows.values():
            bulk_insert(rows)
            written += len(rows)
        self._rows.clear()
        self._generation += 1
        return written

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())


@contextmanager
def deferring(unit: DeferredInserts) -> Iterator[DeferredInserts]:
    token = _current.set(unit)
    try:
        yield unit
    finally:
        _current.reset(token)


def deferred_inserts() -> DeferredInserts | None:
    """The unit rows are held in now, if any."""
    return _current.get()


def insert(model: type[M], **fields: Any) -> M:
    """Create the row now, or hold it in the current unit (then it has no primary key yet)."""
    unit = _current.get()
    if unit is None:
        return model._default_manager.create(**fields)
    return unit.hold(model(**fields))

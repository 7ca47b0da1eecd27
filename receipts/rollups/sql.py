"""The rollups' arithmetic in PostgreSQL: a message's contribution (figures.contribution) and a
cell's counts (figures.Contribution.counts), column for column, for the rebuild (rebuild.py)
and for the passes (maintain.py), which must agree with the Python definitions to the unit:
tests/rollups prove it after random streams of events.

A pass is one statement here: a few thousand changed messages at a time counted by Python
cost ~1 ms each (reading rows into dicts, adding up deltas per grain, upserting cells of 60
columns and snapshots one by one), a fifth of the 2-CPU machine at 350 receipts/s; set-based
in the database it is a few milliseconds per thousand (bench/README.md, "Rollup passes").
"""

from __future__ import annotations

from collections.abc import Sequence

from receipts.rollups.figures import (
    CLASS_COLUMNS,
    COUNT_COLUMNS,
    DIMENSIONS,
    HISTOGRAM_BOUNDS,
    STATUS_COLUMNS,
    TTD_COLUMNS,
    TTFR_COLUMNS,
    Contribution,
)
from receipts.rollups.models import (
    BLANK,
    COARSE_DIMENSIONS,
    LEVEL_DIMENSIONS,
    CoarseRollup,
    CoarseRollupReason,
    Grain,
    Rollup,
    RollupReason,
    Snapshot,
)
from receipts.statuses import FINAL_STATUSES, Status

# The snapshot's columns after message_id: figures.Contribution's fields, in its order.
SNAPSHOT_FIELDS: tuple[str, ...] = tuple(Contribution.__dataclass_fields__)
# The cells of each table: grain and bucket (and level), then the dimensions, then what
# splits a cell further (currency; reason and class).
CELL: tuple[str, ...] = ("grain", "bucket", *DIMENSIONS)
REASON_CELL: tuple[str, ...] = ("grain", "bucket", *DIMENSIONS[:-1], "reason", "error_class")
COARSE_CELL: tuple[str, ...] = ("grain", "level", "bucket", *COARSE_DIMENSIONS, "currency")
COARSE_REASON_CELL: tuple[str, ...] = ("grain", "level", "bucket", *COARSE_DIMENSIONS, "reason", "error_class")


def literal(value: str) -> str:
    # Only ever the project's own constants (statuses, classes, grains), never outside input.
    assert value.replace("_", "").isalnum(), value
    return f"'{value}'"


def _histogram_bucket(seconds: str) -> str:
    """figures.histogram_bucket: how many bounds are below the duration (bisect_left: a
    duration equal to a bound is in that bound's bucket; a negative one in the first).
    width_bucket counts the thresholds <= its operand, so it is given the negated bounds:
    #bounds < s = #bounds - #(-bound <= -s)."""
    negated = ", ".join(str(-bound) for bound in reversed(HISTOGRAM_BOUNDS))
    return f"{len(HISTOGRAM_BOUNDS)} - width_bucket(-greatest({seconds}, 0), ARRAY[{negated}]::numeric[])"


_SECONDS_TO_FIRST = "extract(epoch FROM first_receipt_at - submitted_at)"
_SECONDS_TO_FINAL = "extract(epoch FROM final_at - submitted_at)"
_FINAL = ", ".join(literal(status) for status in sorted(FINAL_STATUSES))

# A receipts_message row's contribution: its id as message_id, then SNAPSHOT_FIELDS.
_CONTRIBUTION = {
    "message_id": "id",
    "minute": "date_trunc('minute', submitted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    **{name: name for name in ("connection_id", "country", "network", "flow", "currency", "status")},
    "error_class": "coalesce(error_class, '')",
    "reason": "coalesce(reason, '')",
    "ttfr_bucket": f"CASE WHEN first_receipt_at IS NOT NULL THEN {_histogram_bucket(_SECONDS_TO_FIRST)} END",
    "ttd_bucket": (
        f"CASE WHEN status = {literal(Status.DELIVERED)} AND final_at IS NOT NULL "
        f"THEN {_histogram_bucket(_SECONDS_TO_FINAL)} END"
    ),
    "missing": f"no_receipt_at IS NOT NULL AND status NOT IN ({_FINAL})",
    "resend": "chain_root_id IS NOT NULL",
    "fallbacks": "fallbacks",
    "cost": "cost",
}
assert tuple(_CONTRIBUTION)[1:] == SNAPSHOT_FIELDS, "figures.Contribution and its SQL must list the same fields"
CONTRIBUTION_COLUMNS = ", ".join(f"{expression} AS {name}" for name, expression in _CONTRIBUTION.items())


def count_expressions(weight: str | None = None) -> list[str]:
    """Each COUNT_COLUMNS figure of a cell from snapshot-shaped rows, in that order. With a
    `weight` column (+1 for a contribution added, -1 for one taken back) the rows are summed by
    it; without, counted."""
    if weight is None:
        rows, times = "count(*)", ""
    else:
        rows, times = f"sum({weight})", f"{weight} * "

    def counted(condition: str) -> str:
        return f"coalesce({rows} FILTER (WHERE {condition}), 0)"

    by_column = {"messages": f"coalesce({rows}, 0)", "missing": counted("missing"), "resends": counted("resend")}
    by_column["fallbacks"] = f"coalesce(sum({times}fallbacks), 0)"
    by_column["costed"] = counted("cost IS NOT NULL")
    for status, column in STATUS_COLUMNS.items():
        by_column[column] = counted(f"status = {literal(status)}")
    for error_class, column in CLASS_COLUMNS.items():
        by_column[column] = counted(f"error_class = {literal(error_class)}")
    for index, column in enumerate(TTFR_COLUMNS):
        by_column[column] = counted(f"ttfr_bucket = {index}")
    for index, column in enumerate(TTD_COLUMNS):
        by_column[column] = counted(f"ttd_bucket = {index}")
    return [by_column[column] for column in COUNT_COLUMNS]


_TRUNCATE_TO = {Grain.MINUTE: "minute", Grain.HOUR: "hour", Grain.DAY: "day"}


def bucket(grain: str, minute: str = "minute") -> str:
    """maintain.bucket_start in SQL: the submission's minute, hour or day in UTC."""
    return f"date_trunc('{_TRUNCATE_TO[Grain(grain)]}', {minute} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def coarse_dimensions(level: str) -> tuple[list[str], list[str]]:
    """(what to select, what to group by) for a level's coarse dimensions from fine rows:
    the level's own kept, the others blank (maintain.coarse_cell)."""
    kept = LEVEL_DIMENSIONS[level]
    selected = [name if name in kept else ("0" if BLANK[name] == 0 else "''") for name in COARSE_DIMENSIONS]
    return selected, [name for name in COARSE_DIMENSIONS if name in kept]


def upsert_clause(table: str, cell: Sequence[str], added: Sequence[str]) -> str:
    """ON CONFLICT of an INSERT into a rollup table: the figures added to the cell's."""
    return f"ON CONFLICT ({', '.join(cell)}) DO UPDATE SET " + ", ".join(
        f"{column} = {table}.{column} + EXCLUDED.{column}" for column in added
    )


def _nonzero(columns: Sequence[str]) -> str:
    return " OR ".join(f"{column} <> 0" for column in columns)


def _grains() -> str:
    """The grains a pass writes, each with the oldest bucket it still keeps (a parameter;
    NULL: kept for ever)."""
    return ", ".join(
        f"({literal(grain)}, {literal(_TRUNCATE_TO[Grain(grain)])}, %(oldest_{grain})s::timestamptz)"
        for grain in Grain.values
    )


def _coarse_union(source: str, tail: Sequence[str], figures: Sequence[str]) -> str:
    """`source`'s fine rows added up into every level's cells (maintain.Deltas.coarse_rows)."""
    selects = []
    for level in LEVEL_DIMENSIONS:
        selected, grouped = coarse_dimensions(level)
        sums = ", ".join(f"sum({column}) AS {column}" for column in figures)
        selects.append(
            f"SELECT grain, {literal(level)} AS level, bucket, {', '.join(selected)}, {', '.join(tail)}, {sums} "
            f"FROM {source} GROUP BY {', '.join(['grain', 'bucket', *grouped, *tail])}"
        )
    return " UNION ALL ".join(selects)


def _pass_sql() -> str:
    snapshot = Snapshot._meta.db_table
    fields = ", ".join(SNAPSHOT_FIELDS)
    fine_figures = ("cost", *COUNT_COLUMNS)
    dimensions = ", ".join(CELL[2:])
    reason_dimensions = ", ".join(REASON_CELL[2:])
    weighted = zip(count_expressions("sign"), COUNT_COLUMNS, strict=True)
    counts = ", ".join(f"{expression} AS {column}" for expression, column in weighted)
    # A bucket older than its grain keeps is pruned or about to be: never written again
    # (maintain.Deltas.add). `oldest` is a bucket start of the grain, so comparing the minute
    # is comparing the bucket.
    in_kept_bucket = "(g.oldest IS NULL OR c.minute >= g.oldest)"
    rollup, reason = Rollup._meta.db_table, RollupReason._meta.db_table
    coarse, coarse_reason = CoarseRollup._meta.db_table, CoarseRollupReason._meta.db_table
    return f"""
WITH claimed AS (
    DELETE FROM receipts_rolluppending
    WHERE id IN (SELECT id FROM receipts_rolluppending ORDER BY id LIMIT %(limit)s)
    RETURNING message_id
),
ids AS (SELECT DISTINCT message_id AS id FROM claimed),
before AS (SELECT message_id, {fields} FROM {snapshot} WHERE message_id IN (SELECT id FROM ids)),
after AS (SELECT {CONTRIBUTION_COLUMNS} FROM receipts_message WHERE id IN (SELECT id FROM ids)),
kept AS (
    INSERT INTO {snapshot} (message_id, {fields}) SELECT * FROM after
    ON CONFLICT (message_id) DO UPDATE SET {", ".join(f"{f} = EXCLUDED.{f}" for f in SNAPSHOT_FIELDS)}
    WHERE ({", ".join(f"{snapshot}.{f}" for f in SNAPSHOT_FIELDS)})
        IS DISTINCT FROM ({", ".join(f"EXCLUDED.{f}" for f in SNAPSHOT_FIELDS)})
),
gone AS (
    DELETE FROM {snapshot} WHERE message_id IN (SELECT message_id FROM before)
    AND message_id NOT IN (SELECT message_id FROM after)
),
changes AS (
    SELECT -1 AS sign, * FROM before UNION ALL SELECT 1 AS sign, * FROM after
),
grains (grain, unit, oldest) AS (VALUES {_grains()}),
fine AS (
    SELECT * FROM (
        SELECT g.grain, date_trunc(g.unit, c.minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, {dimensions},
            coalesce(sum(sign * cost), 0) AS cost, {counts}
        FROM changes c JOIN grains g ON {in_kept_bucket}
        GROUP BY 1, 2, {dimensions}
    ) AS summed WHERE {_nonzero(fine_figures)}
),
fine_reasons AS (
    SELECT g.grain, date_trunc(g.unit, c.minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, {reason_dimensions},
        sum(sign) AS count
    FROM changes c JOIN grains g ON {in_kept_bucket}
    WHERE c.reason <> ''
    GROUP BY 1, 2, {reason_dimensions}
    HAVING sum(sign) <> 0
),
fine_written AS (
    INSERT INTO {rollup} ({", ".join(CELL)}, {", ".join(fine_figures)}) SELECT * FROM fine
    {upsert_clause(rollup, CELL, fine_figures)}
),
reasons_written AS (
    INSERT INTO {reason} ({", ".join(REASON_CELL)}, count) SELECT * FROM fine_reasons
    {upsert_clause(reason, REASON_CELL, ("count",))}
),
coarse_written AS (
    INSERT INTO {coarse} ({", ".join(COARSE_CELL)}, {", ".join(fine_figures)})
    SELECT * FROM ({_coarse_union("fine", ("currency",), fine_figures)}) AS levels
    WHERE {_nonzero(fine_figures)}
    {upsert_clause(coarse, COARSE_CELL, fine_figures)}
),
coarse_reasons_written AS (
    INSERT INTO {coarse_reason} ({", ".join(COARSE_REASON_CELL)}, count)
    SELECT * FROM ({_coarse_union("fine_reasons", ("reason", "error_class"), ("count",))}) AS levels
    WHERE count <> 0
    {upsert_clause(coarse_reason, COARSE_REASON_CELL, ("count",))}
)
SELECT count(*) FROM claimed
"""


# One pass over up to %(limit)s queued messages, with %(oldest_m)s, %(oldest_h)s and
# %(oldest_d)s the oldest bucket each grain keeps: what maintain.recount_messages does, in one
# round trip. Every CTE reads the database as it was when the statement started, so `before`
# is each message's snapshot before `kept` replaces it.
PASS_SQL = _pass_sql()

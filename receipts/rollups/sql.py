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
from itertools import pairwise

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


def _by_grain(name: str, per_minute: str, cell: Sequence[str], figures: Sequence[str]) -> str:
    """CTEs for one pass's changes added up per grain: `{name}_m` is `per_minute` (a SELECT of
    minute, the `cell`'s dimensions and the `figures` counted from the changes); each coarser
    grain's CTE sums the grain below it; `{name}` is every grain's cells (grain, bucket,
    dimensions, figures) whose bucket the grain still keeps and whose figures are not all zero.

    Counting every change once per grain was the pass's largest step (three counts of ~60
    figures per change); sums of the minutes' counts are the same numbers. A minute older than
    its grain keeps still goes into its hour and day: `oldest` filters the cells written, not
    what the next grain sums. Counts per minute are integers (a pass takes at most 50,000
    messages), so summing them keeps a fixed-size state; the coarser grains' are bigint, the
    type counting gives.
    """
    dimensions = ", ".join(cell)
    sums = ", ".join(
        f"sum({column}) AS {column}" if column == "cost" else f"sum({column})::bigint AS {column}" for column in figures
    )
    grains = list(Grain.values)
    ctes = [f"{name}_{grains[0]} AS ({per_minute})"]
    for finer, grain in pairwise(grains):
        ctes.append(
            f"{name}_{grain} AS (SELECT {bucket(grain, 'bucket')} AS bucket, {dimensions}, {sums} "
            f"FROM {name}_{finer} GROUP BY 1, {dimensions})"
        )
    # A bucket older than its grain keeps is pruned or about to be: never written again
    # (maintain.Deltas.add); `oldest_<grain>` is NULL for a grain kept for ever.
    kept = " UNION ALL ".join(
        f"SELECT {literal(grain)} AS grain, * FROM {name}_{grain} "
        f"WHERE %(oldest_{grain})s::timestamptz IS NULL OR bucket >= %(oldest_{grain})s::timestamptz"
        for grain in grains
    )
    ctes.append(f"{name} AS (SELECT * FROM ({kept}) AS cells WHERE {_nonzero(figures)})")
    return ",\n".join(ctes)


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
    counts = ", ".join(f"({expression})::integer AS {column}" for expression, column in weighted)
    fine = _by_grain(
        "fine",
        f"SELECT minute AS bucket, {dimensions}, coalesce(sum(sign * cost), 0) AS cost, {counts} "
        f"FROM changes GROUP BY minute, {dimensions}",
        CELL[2:],
        fine_figures,
    )
    fine_reasons = _by_grain(
        "fine_reasons",
        f"SELECT minute AS bucket, {reason_dimensions}, sum(sign)::integer AS count "
        f"FROM changes WHERE reason <> '' GROUP BY minute, {reason_dimensions}",
        REASON_CELL[2:],
        ("count",),
    )
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
{fine},
{fine_reasons},
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

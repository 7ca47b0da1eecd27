"""Several rows' fields written in one statement, each row its own values.

Django's `bulk_update` builds a `CASE WHEN id = … THEN …` expression per field and row, then
resolves and compiles it: 31 ms for ten attempts' six fields under cProfile, a third of the
attempt runner's time (bench/profile_decisions.py --profile-pass resends, 2026-12-07). On
PostgreSQL the values go as one array per column instead, `UPDATE … FROM unnest(…)`, one
statement whose text depends only on the model and the fields (so it is prepared once). Other
databases (SQLite, the embedded default) keep Django's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from django.db import connections, models, router


def bulk_set(objects: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each of `objects` (all of one model, saved before) as it holds them."""
    if not objects:
        return
    model = type(objects[0])
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model._default_manager.using(using).bulk_update(objects, fields)
        return
    columns = _fields(model, tuple(fields))
    values = [[obj.pk for obj in objects]]
    values += [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objects] for column in columns
    ]
    with connection.cursor() as cursor:
        cursor.execute(_statement(model, tuple(fields), connection.alias), values)


def _fields(model: type[models.Model], names: tuple[str, ...]) -> list[models.Field]:
    fields = [model._meta.get_field(name) for name in names]
    concrete = [field for field in fields if isinstance(field, models.Field) and field.concrete]
    if len(concrete) != len(fields):
        raise ValueError(f"bulk_set writes a model's own columns only, not {names}")
    return concrete


@cache
def _statement(model: type[models.Model], fields: tuple[str, ...], alias: str) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    written = [pk, *_fields(model, fields)]
    # Names from the model's own metadata, quoted; the values go as parameters.
    table, key = quote(model._meta.db_table), quote(str(pk.column))
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in written)
    names = ", ".join(quote(str(field.column)) for field in written)
    assignments = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in written[1:])
    return f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE {table}.{key} = v.{key}"  # noqa: S608

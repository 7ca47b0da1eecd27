"""Several rows written in one statement, each row its own values: new rows (`bulk_insert`) or
some fields of saved ones (`bulk_set`).

Django's `bulk_create` sends a VALUES list of rows x fields parameters, a new statement text for
each number of rows, and compiles each value: a third of the decision pass's time was its
flushes of held rows under cProfile (bench/profile_decisions.py, 2026-12-07). Its `bulk_update`
builds a `CASE WHEN id = … THEN …` expression per field and row, then
resolves and compiles it: 31 ms for ten attempts' six fields under cProfile, a third of the
attempt runner's time (bench/profile_decisions.py --profile-pass resends, 2026-12-07). On
PostgreSQL the values go as one array per column instead, `UPDATE … FROM unnest(…)`, one
statement whose text depends only on the model and the fields (so it is prepared once). Other
databases (SQLite, the embedded default) keep Django's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TypeVar

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

from dlrconsole.lib.array_cursor import array_cursor

M = TypeVar("M", bound=models.Model)


def bulk_insert(objects: Sequence[M]) -> None:
    """Create `objects` (new, of one model) as Django's bulk_create would: their fields' pre_save
    (auto_now_add), a held related object's key copied into its foreign key, the keys the
    database gave set on them. On PostgreSQL one INSERT … SELECT … FROM unnest(…) RETURNING the
    keys, in the rows' order; elsewhere, or for a model this does not cover (a key not generated
    by the database, a parent model, a column left to its database default), bulk_create."""
    if not objects:
        return
    model = type(objects[0])
    using = router.db_for_write(model)
    connection = connections[using]
    columns = _inserted(model)
    if connection.vendor != "postgresql" or columns is None:
        model._default_manager.using(using).bulk_create(objects)
        return
    for obj in objects:
        _copy_related_keys(obj, columns)
    values = [[column.pre_save(obj, add=True) for obj in objects] for column in columns]
    if any(hasattr(value, "resolve_expression") for column in values for value in column):
        model._default_manager.using(using).bulk_create(objects)  # a database default or an expression
        return
    prepared = [
        [column.get_db_prep_save(value, connection) for value in column_values]
        for column, column_values in zip(columns, values, strict=True)
    ]
    with array_cursor(connection) as cursor:
        cursor.execute(_insert_statement(model, connection.alias), prepared)
        keys = cursor.fetchall()
    for obj, (key,) in zip(objects, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = using


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
    with array_cursor(connection) as cursor:
        cursor.execute(_update_statement(model, tuple(fields), connection.alias), values)


@cache
def _inserted(model: type[models.Model]) -> list[models.Field] | None:
    """The columns an INSERT writes (all but a generated key), or None if bulk_insert leaves the
    model to bulk_create."""
    opts = model._meta
    if opts.parents or not isinstance(opts.pk, models.AutoField | models.BigAutoField):
        return None
    return [field for field in opts.concrete_fields if field is not opts.pk and not field.generated]


def _copy_related_keys(obj: models.Model, columns: list[models.Field]) -> None:
    # A row held after its parent: the parent has its key now (saved first), the row's foreign
    # key column does not yet.
    for field in columns:
        if isinstance(field, models.ForeignKey) and field.is_cached(obj) and getattr(obj, field.attname) is None:
            related = getattr(obj, field.name)
            if related is not None:
                if related.pk is None:
                    raise ValueError(f"bulk_insert of {obj!r}: its {field.name} is not saved")
                setattr(obj, field.attname, related.pk)


@cache
def _insert_statement(model: type[models.Model], alias: str) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    columns = _inserted(model)
    assert columns is not None
    assert model._meta.pk is not None
    names = ", ".join(quote(str(field.column)) for field in columns)
    # Names from the model's own metadata, quoted; the values go as parameters.
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM {_unnest(columns, connection)} "  # noqa: S608
        f"RETURNING {quote(str(model._meta.pk.column))}"
    )


def _fields(model: type[models.Model], names: tuple[str, ...]) -> list[models.Field]:
    fields = [model._meta.get_field(name) for name in names]
    concrete = [field for field in fields if isinstance(field, models.Field) and field.concrete]
    if len(concrete) != len(fields):
        raise ValueError(f"bulk_set writes a model's own columns only, not {names}")
    return concrete


@cache
def _update_statement(model: type[models.Model], fields: tuple[str, ...], alias: str) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    written = [pk, *_fields(model, fields)]
    # Names from the model's own metadata, quoted; the values go as parameters.
    table, key = quote(model._meta.db_table), quote(str(pk.column))
    names = ", ".join(quote(str(field.column)) for field in written)
    assignments = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in written[1:])
    unnest = _unnest(written, connection)
    return f"UPDATE {table} SET {assignments} FROM {unnest} AS v({names}) WHERE {table}.{key} = v.{key}"  # noqa: S608


def _unnest(fields: list[models.Field], connection: BaseDatabaseWrapper) -> str:
    """Rows out of columns: one array parameter per field, bound in binary (array_cursor), cast
    to the column's type (an array holding only None has no type of its own)."""
    return f"unnest({', '.join(f'%b::{field.db_type(connection)}[]' for field in fields)})"

"""Dropping indexes that another index already serves, in a migration, without rebuilding
anything or checking a foreign key again.

**A foreign key's own index** is redundant when a constraint or index leads with the same
column: a query on the column uses the longer one. Django's AlterField(db_index=False) would
also drop the foreign key and add it back, checking every row of the table under a lock that
holds up its writers; `drop_column_indexes` drops only the index (the migration's state op is
the AlterField).

**A unique CharField's pattern index**: on PostgreSQL Django gives every unique or indexed
CharField a second index with varchar_pattern_ops, for LIKE 'prefix%' searches. Identifiers
nobody searches by prefix (a feed event's webhook id, an attempt's idempotency key) pay for it
on every row written and hold it on disk, nearly as large as the unique index itself. A
UniqueConstraint has no such index.

The migration's state becomes the constraint; the database keeps the unique index it has,
renamed (no rebuild, no lock held longer than the rename), and loses the pattern index. Other
databases (SQLite, the demo) have no pattern index, and their next change to the table
rebuilds it from the migration state.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def drop_column_indexes(table: str, columns: tuple[str, ...]) -> migrations.RunPython:
    """The database half of AlterField(db_index=False) on these (foreign key) columns."""

    def forward(apps: Any, schema_editor: Any) -> None:
        for names in _column_indexes(schema_editor, table, columns).values():
            for name in names:
                schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")

    def backward(apps: Any, schema_editor: Any) -> None:
        for column, names in _column_indexes(schema_editor, table, columns).items():
            if not names:
                schema_editor.execute(
                    f"CREATE INDEX {schema_editor.quote_name(f'{table}_{column}_idx')} ON "
                    f"{schema_editor.quote_name(table)} ({schema_editor.quote_name(column)})"
                )

    return migrations.RunPython(forward, backward)


def _column_indexes(schema_editor: Any, table: str, columns: tuple[str, ...]) -> dict[str, list[str]]:
    """{column: [names]} of the plain indexes on each column alone (not unique, not a key)."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    found: dict[str, list[str]] = {column: [] for column in columns}
    for name, constraint in constraints.items():
        plain = constraint["index"] and not (
            constraint["unique"] or constraint["primary_key"] or constraint["foreign_key"]
        )
        if plain and len(constraint["columns"]) == 1 and constraint["columns"][0] in found:
            found[constraint["columns"][0]].append(name)
    return found


def unique_without_pattern_index(table: str, column: str, constraint: str) -> migrations.RunPython:
    """The database half of the move (the state half is AlterField(unique=False) and
    AddConstraint(UniqueConstraint(fields=[column], name=constraint)))."""

    def forward(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        current = _unique_constraint(schema_editor, table, column)
        if current != constraint:
            schema_editor.execute(
                f"ALTER TABLE {schema_editor.quote_name(table)} RENAME CONSTRAINT "
                f"{schema_editor.quote_name(current)} TO {schema_editor.quote_name(constraint)}"
            )
        for name in _pattern_indexes(schema_editor, table, column):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")

    def backward(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        # Named as Django names them (<table>_<column>_..._uniq / _like): any name would do,
        # as Django finds both by their column when it changes the field again.
        schema_editor.execute(
            f"ALTER TABLE {schema_editor.quote_name(table)} RENAME CONSTRAINT "
            f"{schema_editor.quote_name(constraint)} TO {schema_editor.quote_name(f'{table}_{column}_uniq')}"
        )
        if not _pattern_indexes(schema_editor, table, column):
            schema_editor.execute(
                f"CREATE INDEX {schema_editor.quote_name(f'{table}_{column}_like')} ON "
                f"{schema_editor.quote_name(table)} ({schema_editor.quote_name(column)} varchar_pattern_ops)"
            )

    return migrations.RunPython(forward, backward)


def _unique_constraint(schema_editor: Any, table: str, column: str) -> str:
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    names = [
        name
        for name, found in constraints.items()
        if found["unique"] and not found["primary_key"] and found["columns"] == [column]
    ]
    if len(names) != 1:
        raise RuntimeError(f"expected one unique constraint on {table}.{column}, found {names}")
    return names[0]


def _pattern_indexes(schema_editor: Any, table: str, column: str) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
            "JOIN pg_opclass o ON o.oid = x.indclass[0] "
            "WHERE t.relname = %s AND t.relnamespace = to_regnamespace(current_schema()) "
            "AND x.indnatts = 1 AND a.attname = %s AND o.opcname = 'varchar_pattern_ops'",
            [table, column],
        )
        return [row[0] for row in cursor.fetchall()]

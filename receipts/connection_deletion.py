"""Deleting a connection never leaves receipts pointing at nothing.

`Receipt.connection` has no database constraint (a foreign key is checked once per inserted
row, and a batch's receipts all name one connection). Django's PROTECT refuses to delete a
connection that has receipts, but it looks before the delete's transaction begins: a receipt
stored in between (a parked one: a connection with messages is held by theirs) would outlive
its connection. Inside that transaction, this waits for the receipts being stored, holds new
ones back until the delete commits, and looks again.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import ProtectedError

from receipts.models import Connection, Receipt


def refuse_if_receipts_arrived(sender: type[Connection], instance: Connection, using: str, **kwargs: Any) -> None:
    """pre_delete of Connection: runs in the delete's transaction, before its DELETE."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        # SHARE conflicts with the ROW EXCLUSIVE every INSERT takes: in-flight batches finish
        # first, later ones wait for this transaction. Deleting a connection is rare and quick.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Receipt._meta.db_table)} IN SHARE MODE")
    # (SQLite, the embedded default, lets one transaction write at a time: nothing is in flight.)
    arrived = list(Receipt.objects.using(using).filter(connection=instance)[:10])
    if arrived:
        raise ProtectedError(
            f"Cannot delete connection {instance.slug!r}: receipts arrived for it while it was being deleted.",
            set(arrived),
        )

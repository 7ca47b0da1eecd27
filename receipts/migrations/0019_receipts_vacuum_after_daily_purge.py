"""Vacuum the receipts after each day's purge rather than after a fifth of the table died.

Autovacuum's default waits for 20 % of a table's rows to be dead: at 10^8 receipts, 20 million,
about 18 days of the daily purge (1.1 million a day at 90 days' retention). Meanwhile the space
of the purged rows is not reused and the table grows by that much. At 1 % it runs after a day
or so of purging, and the freed space is filled by the next days' receipts (docs/SCALING.md).
"""

from django.db import migrations

TABLES = ("receipts_receipt", "receipts_message", "receipts_outboxevent")


def set_threshold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0.01)")


def reset_threshold(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor)")


class Migration(migrations.Migration):
    dependencies = [("receipts", "0018_webhook_refusals")]

    operations = [migrations.RunPython(set_threshold, reset_threshold, elidable=False)]

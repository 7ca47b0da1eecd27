"""Repair what poison receipts stored before provider times were range-checked: a time outside
what psycopg reads back (before year 1 or after 9999 in UTC) made every page, API call and
export that touched the row fail. Such receipts lose their provider time (the raw body keeps
it); such messages take the time their status changed, when we heard of it. Plain UPDATEs that
never read the bad values."""

from django.db import migrations

# Everything stored since 2000 that a receipt can honestly carry; the webhook now keeps only
# 2000-01-01 to a day ahead of its clock (receipts/providers/base.py).
EARLIEST = "2000-01-01T00:00:00+00:00"
LATEST = "9000-01-01T00:00:00+00:00"


def repair(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # the SQLite demo stores times as text: nothing it cannot read back
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE receipts_receipt SET provider_timestamp = NULL "
            "WHERE provider_timestamp < %s OR provider_timestamp > %s",
            [EARLIEST, LATEST],
        )
        cursor.execute(
            "UPDATE receipts_message SET final_at = COALESCE(status_changed_at, created_at) "
            "WHERE final_at < %s OR final_at > %s",
            [EARLIEST, LATEST],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("receipts", "0013_connection_secrets_encrypted"),
    ]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]

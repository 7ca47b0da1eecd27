"""A message's flow keeps one index, not two: Django gives a SlugField a second one for LIKE
(varchar_pattern_ops) that no query uses, and every status change, which cannot be a HOT
update, wrote an entry into it. The plain index is kept and renamed, not rebuilt: at 10^8
messages a rebuild would take the table's write lock for minutes."""

from django.db import migrations, models

# Django's names for the SlugField's own indexes (deterministic: table, column, hash).
PLAIN = "receipts_message_flow_6f82be65"
LIKE = "receipts_message_flow_6f82be65_like"
NEW = "message_flow_idx"


def keep_one(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE}")
        schema_editor.execute(f"ALTER INDEX IF EXISTS {PLAIN} RENAME TO {NEW}")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NEW} ON receipts_message (flow)")
    else:  # SQLite (the embedded default) renames no index, and has no LIKE index to drop
        schema_editor.execute(f"DROP INDEX IF EXISTS {PLAIN}")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NEW} ON receipts_message (flow)")


def restore_both(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {NEW}")
    schema_editor.execute(f"CREATE INDEX {PLAIN} ON receipts_message (flow)")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX {LIKE} ON receipts_message (flow varchar_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("receipts", "0024_outboxevent_request_id")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="flow",
                    field=models.SlugField(blank=True, db_index=False, max_length=64),
                ),
                migrations.AddIndex(
                    model_name="message",
                    index=models.Index(fields=["flow"], name="message_flow_idx"),
                ),
            ],
            database_operations=[migrations.RunPython(keep_one, restore_both)],
        )
    ]

from django.db import migrations

# A window of a coarse level is a few thousand rows. On those, the planner (whose estimate of a
# grain, level and bucket range is ten times too high: the columns are correlated) chose a
# parallel scan; starting its workers cost 38 ms where the serial scan took 3 ms (EXPLAIN ANALYZE
# of the Routes page at 10 M on the shared 2-CPU machine). The fine rows are left to the planner.
TABLES = ("rollups_coarserollup", "rollups_coarserollupreason")


def serial(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # the demo's SQLite has no parallel scans
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (parallel_workers = 0)")


def planner_decides(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (parallel_workers)")


class Migration(migrations.Migration):
    dependencies = [("rollups", "0002_coarse_rollups")]

    operations = [migrations.RunPython(serial, planner_decides)]

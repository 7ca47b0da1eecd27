from django.db import migrations

# A window of a coarse level is a few thousand rows. On those, the planner (whose estimate of a
# grain, level and bucket range is ten times too high: the columns are correlated) chose a
# parallel scan; starting its workers cost 38 ms where the serial scan took 3 ms (EXPLAIN ANALYZE
# of the Routes page at 10 M on the shared 2-CPU machine). The fine rows are left to the planner.
TABLES = ("rollups_coarserollup", "rollups_coarserollupreason")


class Migration(migrations.Migration):
    dependencies = [("rollups", "0002_coarse_rollups")]

    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {table} SET (parallel_workers = 0)" for table in TABLES],
            [f"ALTER TABLE {table} RESET (parallel_workers)" for table in TABLES],
        )
    ]

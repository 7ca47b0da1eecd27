import django.db.models.deletion
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import drop_column_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0001_flows"),
        ("receipts", "0027_foreign_keys_led_by_constraints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="flowkpi",
                    name="flow",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="kpis",
                        to="flows.flow",
                    ),
                ),
                migrations.AlterField(
                    model_name="routetiming",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="receipts.connection",
                    ),
                ),
            ],
            database_operations=[
                drop_column_indexes("flows_flowkpi", ("flow_id",)),
                drop_column_indexes("flows_routetiming", ("connection_id",)),
            ],
        ),
    ]

"""Pilots are started for a described flow: the flow's name in messages (`flow`, free text until
now) is kept as `flow_slug`, and the pilot points at the flow of that name when one is described."""

import django.db.models.deletion
from django.db import migrations, models


def link_described_flows(apps, schema_editor):
    Pilot = apps.get_model("retries", "Pilot")
    Flow = apps.get_model("flows", "Flow")
    flows = dict(Flow.objects.values_list("slug", "pk"))
    for pilot in Pilot.objects.exclude(flow_slug="").only("pk", "flow_slug"):
        if pilot.flow_slug in flows:
            Pilot.objects.filter(pk=pilot.pk).update(flow_id=flows[pilot.flow_slug])


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0001_flows"),
        ("retries", "0014_pilots"),
    ]

    operations = [
        migrations.RenameField(model_name="pilot", old_name="flow", new_name="flow_slug"),
        migrations.RenameField(model_name="historicalpilot", old_name="flow", new_name="flow_slug"),
        migrations.AlterField(model_name="pilot", name="flow_slug", field=models.SlugField(blank=True, max_length=64)),
        migrations.AlterField(
            model_name="historicalpilot", name="flow_slug", field=models.SlugField(blank=True, max_length=64)
        ),
        migrations.AddField(
            model_name="pilot",
            name="flow",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="pilots",
                to="flows.flow",
            ),
        ),
        migrations.AddField(
            model_name="historicalpilot",
            name="flow",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="flows.flow",
            ),
        ),
        migrations.RunPython(link_described_flows, migrations.RunPython.noop),
    ]

from django.db import migrations


def create_default_rules(apps, schema_editor):
    from retries.default_rules import DEFAULT_RULES

    Rule = apps.get_model("retries", "Rule")
    if Rule.objects.exists():
        return
    for fields in DEFAULT_RULES:
        Rule.objects.create(**fields)


class Migration(migrations.Migration):
    dependencies = [("retries", "0003_rules_decisions_attempts")]

    operations = [migrations.RunPython(create_default_rules, migrations.RunPython.noop)]

"""Decisions say why they were not acted on as a choice (`skip_reason`) rather than only in
words: what notifications and pages test. Existing skipped decisions get theirs from the words
they were recorded with; action choices now come from the action registry."""

import retries.actions.registry
from django.db import migrations, models


# The `why` texts of skipped decisions before this migration (retries/decisions.py), by prefix.
SKIP_REASONS = (
    ("the chain was already delivered", "chain_delivered"),
    ("this message was already retried", "already_retried"),
    ("past the ", "deadline"),
    ("no other connection configured", "no_target"),
    ("no fallback channel configured", "no_target"),
)


def skip_reasons_from_words(apps, schema_editor):
    Decision = apps.get_model("retries", "Decision")
    for prefix, reason in SKIP_REASONS:
        Decision.objects.filter(state="skipped", skip_reason="", why__startswith=prefix).update(skip_reason=reason)
    # "N of M attempts already made"
    Decision.objects.filter(state="skipped", skip_reason="", why__endswith="attempts already made").update(
        skip_reason="max_attempts"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('retries', '0009_feed_moves_to_its_app'),
    ]

    operations = [
        migrations.AddField(
            model_name='decision',
            name='skip_reason',
            field=models.CharField(blank=True, choices=[('chain_delivered', 'The chain was already delivered'), ('already_retried', 'This message was already retried'), ('max_attempts', 'Every attempt the rule allows was made'), ('deadline', "Past the rule's deadline"), ('no_target', 'The rule names no connection or channel')], default='', max_length=16),
        ),
        migrations.AlterField(
            model_name='attempt',
            name='action',
            field=models.CharField(choices=retries.actions.registry.action_choices, default='retry_same', max_length=16),
        ),
        migrations.AlterField(
            model_name='decision',
            name='action',
            field=models.CharField(choices=retries.actions.registry.action_choices, max_length=16),
        ),
        migrations.AlterField(
            model_name='historicalrule',
            name='action',
            field=models.CharField(choices=retries.actions.registry.action_choices, max_length=16),
        ),
        migrations.AlterField(
            model_name='rule',
            name='action',
            field=models.CharField(choices=retries.actions.registry.action_choices, max_length=16),
        ),
        migrations.RunPython(skip_reasons_from_words, migrations.RunPython.noop),
    ]

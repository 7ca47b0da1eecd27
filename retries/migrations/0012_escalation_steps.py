"""A rule's action becomes an escalation of steps. Each rule keeps what it did as its one step
(the action, its attempts, waits and target), decisions and attempts made under it point to that
step, and the rule's own action fields go. The rule the product first shipped for route problems
(a retry on another connection that names none, so it never did anything) becomes what it did in
effect: tell the product, under a name that says so. Decisions may now be several per event (an
event that takes several steps), and may follow an attempt that ended."""

import django.db.models.deletion
import retries.actions.registry
import simple_history.models
from django.conf import settings
from django.db import migrations, models


SENDING = ("retry_same", "retry_other", "fallback")
SHIPPED_ROUTE_RULE = "Route problem: retry on another connection"


def rules_to_steps(apps, schema_editor):
    Rule = apps.get_model("retries", "Rule")
    Step = apps.get_model("retries", "Step")
    Decision = apps.get_model("retries", "Decision")
    Attempt = apps.get_model("retries", "Attempt")
    for rule in Rule.objects.all():
        sends = rule.action in SENDING
        step = Step.objects.create(
            rule=rule, position=1, action=rule.action, count=max(1, rule.max_attempts) if sends else 1,
            delays=list(rule.backoff_seconds or []) if sends else [],
            target_connection_id=rule.target_connection_id if rule.action == "retry_other" else None,
            fallback_channel_id=rule.fallback_channel_id if rule.action == "fallback" else None,
        )
        Decision.objects.filter(rule=rule).update(step=step)
        Attempt.objects.filter(decision__rule=rule).update(step=step)
        if rule.name == SHIPPED_ROUTE_RULE and rule.action == "retry_other" and rule.target_connection_id is None:
            rule.name = "Route problem: tell the product"
            rule.save(update_fields=["name"])
            step.action, step.count, step.delays = "notify", 1, []
            step.save(update_fields=["action", "count", "delays"])


def steps_to_rules(apps, schema_editor):
    Rule = apps.get_model("retries", "Rule")
    for rule in Rule.objects.prefetch_related("steps"):
        steps = list(rule.steps.all())
        step = next((s for s in steps if s.action in SENDING), steps[0] if steps else None)
        if step is None:
            rule.action = "none"
        else:
            rule.action, rule.max_attempts, rule.backoff_seconds = step.action, step.count, list(step.delays)
            rule.target_connection_id, rule.fallback_channel_id = step.target_connection_id, step.fallback_channel_id
        rule.save()


class Migration(migrations.Migration):

    dependencies = [
        ('receipts', '0016_receipts_keep_no_message_text'),
        ('retries', '0011_sender_configs_encrypted'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='decision',
            name='after_attempt',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='next_decisions', to='retries.attempt'),
        ),
        migrations.AlterField(
            model_name='decision',
            name='outbox_event',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='decisions', to='receipts.outboxevent'),
        ),
        migrations.AlterField(
            model_name='decision',
            name='skip_reason',
            field=models.CharField(blank=True, choices=[('chain_delivered', 'The chain was already delivered'), ('already_retried', 'This message was already retried'), ('max_attempts', 'Every step of the rule was taken'), ('deadline', "Past the rule's deadline"), ('no_target', 'The step names no connection or channel'), ('missing_input', 'The message lacks what the step needs')], default='', max_length=16),
        ),
        migrations.CreateModel(
            name='HistoricalStep',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=1)),
                ('action', models.CharField(choices=retries.actions.registry.action_choices, max_length=16)),
                ('count', models.PositiveSmallIntegerField(default=1, help_text='Attempts, for an action that sends.')),
                ('delays', models.JSONField(blank=True, default=list)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('fallback_channel', models.ForeignKey(blank=True, db_constraint=False, help_text="For 'send through a fallback channel'.", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='retries.fallbackchannel')),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('rule', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='retries.rule')),
                ('target_connection', models.ForeignKey(blank=True, db_constraint=False, help_text="For 'retry on another connection'.", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='receipts.connection')),
            ],
            options={
                'verbose_name': 'historical step',
                'verbose_name_plural': 'historical steps',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='Step',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=1)),
                ('action', models.CharField(choices=retries.actions.registry.action_choices, max_length=16)),
                ('count', models.PositiveSmallIntegerField(default=1, help_text='Attempts, for an action that sends.')),
                ('delays', models.JSONField(blank=True, default=list)),
                ('fallback_channel', models.ForeignKey(blank=True, help_text="For 'send through a fallback channel'.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='retries.fallbackchannel')),
                ('rule', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='retries.rule')),
                ('target_connection', models.ForeignKey(blank=True, help_text="For 'retry on another connection'.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='receipts.connection')),
            ],
            options={
                'ordering': ['rule_id', 'position', 'id'],
            },
        ),
        migrations.AddField(
            model_name='attempt',
            name='step',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attempts', to='retries.step'),
        ),
        migrations.AddField(
            model_name='decision',
            name='step',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='decisions', to='retries.step'),
        ),
        migrations.RunPython(rules_to_steps, steps_to_rules),
        migrations.RemoveField(
            model_name='historicalrule',
            name='action',
        ),
        migrations.RemoveField(
            model_name='historicalrule',
            name='backoff_seconds',
        ),
        migrations.RemoveField(
            model_name='historicalrule',
            name='fallback_channel',
        ),
        migrations.RemoveField(
            model_name='historicalrule',
            name='max_attempts',
        ),
        migrations.RemoveField(
            model_name='historicalrule',
            name='target_connection',
        ),
        migrations.RemoveField(
            model_name='rule',
            name='action',
        ),
        migrations.RemoveField(
            model_name='rule',
            name='backoff_seconds',
        ),
        migrations.RemoveField(
            model_name='rule',
            name='fallback_channel',
        ),
        migrations.RemoveField(
            model_name='rule',
            name='max_attempts',
        ),
        migrations.RemoveField(
            model_name='rule',
            name='target_connection',
        ),
    ]

from django.apps import AppConfig


class RetriesConfig(AppConfig):
    name = "retries"
    verbose_name = "Retries and decisions"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from receipts.outbox import Consumer, register_consumer
        from retries.decisions import decide, decide_batch
        from retries.models import Rule, Step
        from retries.rule_cache import rule_cache

        post_save.connect(rule_cache.clear, sender=Rule, dispatch_uid="rule-cache-save")
        post_delete.connect(rule_cache.clear, sender=Rule, dispatch_uid="rule-cache-delete")
        m2m_changed.connect(rule_cache.clear, sender=Rule.connections.through, dispatch_uid="rule-cache-connections")
        post_save.connect(rule_cache.clear, sender=Step, dispatch_uid="step-cache-save")
        post_delete.connect(rule_cache.clear, sender=Step, dispatch_uid="step-cache-delete")
        # Every status change and missing receipt is decided on, once, in the outbox claim's
        # transaction.
        register_consumer(Consumer("decisions", consume=lambda event, now: decide(event, now=now), batch=decide_batch))

from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "receipts.flows"
    label = "flows"
    verbose_name = "Flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from receipts.flows import models, selectors

        # A saved flow or decision changes the receipt SLA and the launch flag at once in this
        # process; other processes see it within the cache's seconds.
        for model in (models.Flow, models.LaunchDecision, models.RouteTiming):
            post_save.connect(selectors.clear_caches, sender=model, dispatch_uid=f"flows-clear-{model.__name__}")
            post_delete.connect(selectors.clear_caches, sender=model, dispatch_uid=f"flows-del-{model.__name__}")

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts.actions import RaiseAlert
        from retries.actions.registry import register_action

        register_action(RaiseAlert)

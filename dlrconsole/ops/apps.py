from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What operators run and watch: commands that keep a deployment (key rotation), and the
    Prometheus metrics (docs/MONITORING.md)."""

    name = "dlrconsole.ops"
    label = "ops"
    verbose_name = "Operations"

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What operators run: commands that keep a deployment (key rotation)."""

    name = "dlrconsole.ops"
    label = "ops"
    verbose_name = "Operations"

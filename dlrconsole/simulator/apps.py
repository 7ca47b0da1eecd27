from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """Simulated providers posting signed receipts through the real webhook path
    (`manage.py simulate`); development and demo tooling, never imported by the apps below."""

    name = "dlrconsole.simulator"
    label = "simulator"
    verbose_name = "Provider simulator"

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`manage.py demo`: the console on its embedded default, fed by the simulator."""

    name = "dlrconsole.demo"
    label = "demo"
    verbose_name = "Demo"

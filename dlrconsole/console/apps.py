from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The console's pages and template tags; its models are the apps' below."""

    name = "dlrconsole.console"
    label = "console"
    verbose_name = "Console"

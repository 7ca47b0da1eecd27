from django.apps import AppConfig


class RollupsConfig(AppConfig):
    name = "receipts.rollups"
    label = "rollups"
    verbose_name = "Rollups"
    default_auto_field = "django.db.models.BigAutoField"

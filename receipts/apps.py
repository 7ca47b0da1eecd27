from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save, pre_delete


class ReceiptsConfig(AppConfig):
    name = "receipts"
    verbose_name = "Receipts"

    def ready(self) -> None:
        from receipts.connection_cache import connection_cache
        from receipts.connection_deletion import refuse_if_receipts_arrived
        from receipts.errors import forget_overrides
        from receipts.models import Connection, ErrorCodeOverride

        post_save.connect(connection_cache.clear, sender=Connection, dispatch_uid="connection-cache-save")
        post_delete.connect(connection_cache.clear, sender=Connection, dispatch_uid="connection-cache-delete")
        pre_delete.connect(refuse_if_receipts_arrived, sender=Connection, dispatch_uid="connection-receipts-guard")
        post_save.connect(forget_overrides, sender=ErrorCodeOverride, dispatch_uid="override-cache-save")
        post_delete.connect(forget_overrides, sender=ErrorCodeOverride, dispatch_uid="override-cache-delete")

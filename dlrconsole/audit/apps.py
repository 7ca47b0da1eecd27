from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "dlrconsole.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from simple_history.signals import post_create_historical_record, pre_create_historical_record

        from dlrconsole.audit.recording import fingerprint_secrets, record_entry

        pre_create_historical_record.connect(fingerprint_secrets, dispatch_uid="audit-fingerprint-secrets")
        post_create_historical_record.connect(record_entry, dispatch_uid="audit-record-entry")

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dlrconsole.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed

        from dlrconsole.accounts.staff import staff_follows_admin_group

        m2m_changed.connect(
            staff_follows_admin_group, sender=get_user_model().groups.through, dispatch_uid="staff-follows-admin"
        )

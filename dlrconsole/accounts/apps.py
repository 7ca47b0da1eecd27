from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dlrconsole.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import m2m_changed, post_migrate

        from dlrconsole.accounts import schema  # noqa: F401 - registers how the API schema shows keys
        from dlrconsole.accounts.language import remember_language
        from dlrconsole.accounts.staff import staff_follows_admin_group
        from dlrconsole.accounts.time_zone import remember_time_zone
        from dlrconsole.roles import roles_sync

        m2m_changed.connect(
            staff_follows_admin_group, sender=get_user_model().groups.through, dispatch_uid="staff-follows-admin"
        )
        # Every app's post_migrate: the last one sees every permission the roles name.
        post_migrate.connect(roles_sync, dispatch_uid="roles-sync")
        user_logged_in.connect(remember_time_zone, dispatch_uid="remember-time-zone")
        user_logged_in.connect(remember_language, dispatch_uid="remember-language")

"""The console's roles: three Django groups and what each may do.

Pages and API endpoints check permissions (`user.has_perm`), never group names, so an admin can
grant one capability to one person without inventing a role. The groups are kept in step with
this table after every migrate (receipts/apps.py), so adding a permission here is enough.

- support: search, timelines, resend; sees full numbers (they talk to the end user).
- admin: everything support does, plus configuration (connections, rules, the error catalog,
  product endpoints, users in their roles, API keys) and the audit log. Never superuser status,
  raw permissions or the groups' permissions (dlrconsole/accounts/admin.py).
- viewer: dashboards and exports, with phone numbers masked (BI does not need them).

One more group is not a console role but a service account: `product`, the product that sends
SMS. Its API key registers messages, searches them, reads timelines with full numbers, reads
the feed API and manages its own feed endpoints; it has no password and never signs in
(`create_api_key --product`).
"""

from __future__ import annotations

from typing import Any

SUPPORT = "support"
ADMIN = "admin"
VIEWER = "viewer"
ROLES = (SUPPORT, ADMIN, VIEWER)
PRODUCT = "product"

# Capabilities, declared on receipts.Message's Meta.permissions.
USE_CONSOLE = "receipts.use_console"  # overview and search results
VIEW_TIMELINE = "receipts.view_timeline"  # a message's page: timeline, raw payloads, chain
RESEND = "receipts.resend_message"
EXPORT = "receipts.export_messages"
SEE_NUMBERS = "receipts.see_full_numbers"
VIEW_AUDIT_LOG = "receipts.view_audit_log"
# Erasing a recipient's number (a data-protection request, dlrconsole/erasure.py): admins only.
ERASE_NUMBERS = "audit.add_erasurerequest"
MANAGE_REPORTS = "reports.change_reportschedule"  # the console's scheduled reports
# The console's alerts: support and admins see, acknowledge, comment and snooze them; admins
# edit the alert rules and channels.
VIEW_ALERTS = "alerts.view_alert"
MANAGE_ALERT_RULES = "alerts.change_alertrule"
MANAGE_ALERT_CHANNELS = "alerts.change_alertchannel"
MANAGE_FLOWS = "flows.change_flow"  # flows, their readiness, fallback tests and go/no-go

# Django's model permissions (add/change/delete/view) the admin role gets for configuration.
CONFIGURATION_MODELS = (
    "receipts.connection",
    "receipts.connectionprice",
    "receipts.errorcodeoverride",
    "retries.rule",
    "feed.productendpoint",
    "retries.connectionsender",
    "retries.fallbackchannel",
    "retries.pilot",
    "reports.reportschedule",
    "alerts.alertrule",
    "alerts.alertchannel",
    "flows.flow",
    "auth.user",
)
# Read-only in the Django admin for the admin role.
INSPECTION_MODELS = (
    "receipts.message",
    "receipts.receipt",
    "retries.decision",
    "retries.attempt",
    "receipts.outboxevent",
    "feed.feedevent",
    "feed.feeddelivery",
    "feed.feedattempt",
    "alerts.alert",  # viewing is enough to acknowledge (alerts/admin.py)
    # The role groups are this module's table, synced after every migrate: admins put people
    # in them (accounts/admin.py) but never change what a group may do.
    "auth.group",
)

# API keys (dlrconsole/accounts): admins make and revoke them for the accounts they manage; a
# key is revoked, never deleted, so its history stays.
API_KEY_PERMISSIONS = ("accounts.add_userapikey", "accounts.change_userapikey", "accounts.view_userapikey")

# Sign-in throttling records (django-axes): admins read them and delete one to unlock early.
LOCKOUT_PERMISSIONS = ("axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accesslog")

# What the product's API key does (dlrconsole/api/messages.py, retries/feed_api.py).
REGISTER_MESSAGES = "receipts.add_message"
READ_FEED_DELIVERIES = "feed.view_feeddelivery"
READ_FEED_ENDPOINTS = "feed.view_productendpoint"
# Create, rotate, pause, resume and replay through the API: a key's own endpoints; with the
# admin role's change permission on endpoints, every endpoint (dlrconsole/api/feed.py).
MANAGE_FEED_ENDPOINTS = "feed.manage_own_productendpoint"
CONFIGURE_FEED_ENDPOINTS = "feed.change_productendpoint"

SUPPORT_PERMISSIONS = (USE_CONSOLE, VIEW_TIMELINE, RESEND, EXPORT, SEE_NUMBERS, VIEW_ALERTS)
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    VIEWER: (USE_CONSOLE, EXPORT),
    SUPPORT: SUPPORT_PERMISSIONS,
    # dict.fromkeys: one entry per permission however many lists name it (alerts.view_alert is
    # support's and an inspected model's).
    ADMIN: tuple(dict.fromkeys((
        *SUPPORT_PERMISSIONS,
        VIEW_AUDIT_LOG,
        ERASE_NUMBERS,
        *(f"{app}.{action}_{model}" for app_model in CONFIGURATION_MODELS for app, model in [app_model.split(".")]
          for action in ("add", "change", "delete", "view")),
        *(f"{app}.view_{model}" for app_model in INSPECTION_MODELS for app, model in [app_model.split(".")]),
        *LOCKOUT_PERMISSIONS,
        *API_KEY_PERMISSIONS,
        MANAGE_FEED_ENDPOINTS,
    ))),
    PRODUCT: (
        REGISTER_MESSAGES, USE_CONSOLE, VIEW_TIMELINE, SEE_NUMBERS, READ_FEED_DELIVERIES, READ_FEED_ENDPOINTS,
        MANAGE_FEED_ENDPOINTS,
    ),
}  # fmt: skip


def roles_sync(**kwargs: Any) -> None:
    """Create the role groups and give each exactly its permissions (post_migrate handler)."""
    from django.contrib.auth.models import Group, Permission

    known = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list("pk", "content_type__app_label", "codename")
    }
    if not all(name in known for names in ROLE_PERMISSIONS.values() for name in names):
        # Not all created yet: post_migrate runs once per app; the last app's run completes it.
        # Setting a partial set would fill the audit log with half-made groups.
        return
    for role, names in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set([known[name] for name in names])


def user_role(user: Any) -> str:
    """The role a page shows in its header; superusers are admins."""
    if getattr(user, "is_superuser", False):
        return ADMIN
    names = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
    return next((role for role in (ADMIN, SUPPORT, VIEWER) if role in names), "")


def can_see_numbers(user: Any) -> bool:
    return bool(user.has_perm(SEE_NUMBERS))

"""Admin registrations of the retries app: importing the modules registers their admins."""

from retries import rules_admin, sending_admin  # noqa: F401

"""Admin registrations of the retries app."""

from retries import feed_admin  # noqa: F401 - registers the feed's admin
from retries import rules_admin  # noqa: E402, F401

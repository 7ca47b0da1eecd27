"""Do nothing: the decision is recorded on the timeline and that is all (a rule that stops the
rules below it from acting on some messages)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from retries.actions.base import Action


class Nothing(Action):
    slug = "none"
    label = gettext_noop("Nothing")
    holdable = True

"""Decision actions by slug, built from their classes; model choices come from here. Apps above
retries add theirs with `register_action` from their AppConfig.ready (alerts: raise an alert)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from retries.actions.base import Action
from retries.actions.fallback import Fallback
from retries.actions.nothing import Nothing
from retries.actions.notify import Notify
from retries.actions.retry_other import RetryOther
from retries.actions.retry_same import RetrySame

ACTIONS: dict[str, Action] = {cls.slug: cls() for cls in (RetrySame, RetryOther, Fallback, Notify, Nothing)}


def register_action(action: type[Action]) -> None:
    ACTIONS[action.slug] = action()


def action_choices() -> list[tuple[str, StrOrPromise]]:
    """Labels read in the reader's language when a form or a record's display shows them."""
    return [(slug, gettext_lazy(action.label)) for slug, action in ACTIONS.items()]


def get_action(slug: str) -> Action:
    """The action of that slug; an unknown one (its app was removed) does nothing."""
    return ACTIONS.get(slug) or ACTIONS[Nothing.slug]

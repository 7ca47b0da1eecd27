"""Texts that leave the reader's request: written in the deployment's language."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.utils import translation

P = ParamSpec("P")
R = TypeVar("R")


def in_default_language(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` in LANGUAGE_CODE, whatever language the current request activated: for texts
    that are stored or sent to a team or a program (alert notices, reports, the product feed).
    Not `@translation.override(...)`: that one object would be shared by concurrent threads,
    each overwriting the language the other restores on exit."""

    @wraps(func)
    def in_default(*args: P.args, **kwargs: P.kwargs) -> R:
        with translation.override(settings.LANGUAGE_CODE):
            return func(*args, **kwargs)

    return in_default

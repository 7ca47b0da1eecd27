"""Project-level pages: the landing page (health: dlrconsole/ops/health.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The console's front door is its overview."""
    return redirect("console:overview")

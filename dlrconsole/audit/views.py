"""The audit log page: configuration changes, newest first, filtered by model and user."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dlrconsole.accounts.decorators import console_permission_required
from dlrconsole.audit.selectors import audit_entries, audit_usernames, audited_models
from dlrconsole.roles import VIEW_AUDIT_LOG

PAGE_SIZE = 50


@console_permission_required(VIEW_AUDIT_LOG)
def audit_log(request: HttpRequest) -> HttpResponse:
    models = audited_models()
    model = request.GET.get("model", "")
    model = model if model in dict(models) else ""
    username = request.GET.get("user", "")[:150]
    page = Paginator(audit_entries(model=model, username=username), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "models": models,
        "usernames": audit_usernames(),
        "model": model,
        "username": username,
        "query": query.urlencode(),
    }
    return render(request, "audit/log.html", context)

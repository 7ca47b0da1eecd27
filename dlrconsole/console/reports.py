"""Scheduled reports, configured by admins: a daily or weekly CSV of the rollups' figures."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import messages as flash
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from alerts.reports.models import ReportDelivery, ReportSchedule, recipient_list
from alerts.reports.services import report_send_now, schedule_period
from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view

TIME_ZONES = sorted(zoneinfo.available_timezones())


class ReportScheduleForm(forms.ModelForm[ReportSchedule]):
    time_zone = forms.ChoiceField(choices=[(zone, zone) for zone in TIME_ZONES], initial="UTC")

    class Meta:
        model = ReportSchedule
        fields = [
            "name", "frequency", "weekday", "send_hour", "time_zone", "group_by", "flow", "connection",
            "recipients", "enabled",
        ]  # fmt: skip
        widgets = {"recipients": forms.Textarea(attrs={"rows": 3, "autocomplete": "off"})}


@require_http_methods(["GET"])
@console_view(roles.MANAGE_REPORTS)
def report_list(request: HtmxHttpRequest) -> HttpResponse:
    schedules = ReportSchedule.objects.select_related("connection").prefetch_related("deliveries")
    return render(request, "console/reports.html", {"nav": "reports", "schedules": schedules})


@require_http_methods(["GET", "POST"])
@console_view(roles.MANAGE_REPORTS)
def report_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    schedule = get_object_or_404(ReportSchedule, pk=pk) if pk else None
    form = ReportScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if saved.created_by_id is None:
            saved.created_by_id = request.user.pk
        saved.save()
        flash.success(request, gettext("Report “%(name)s” saved.") % {"name": saved.name})
        return HttpResponseRedirect(reverse("console:reports"))
    context = {"nav": "reports", "form": form, "schedule": schedule}
    if schedule is not None:
        context["deliveries"] = schedule.deliveries.select_related("requested_by")[:20]
        context["next_period"] = schedule_period(schedule, timezone.now())
    return render(request, "console/report_form.html", context, status=400 if form.errors else 200)


@require_POST
@console_view(roles.MANAGE_REPORTS)
def report_send(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(ReportSchedule, pk=pk)
    delivery = report_send_now(schedule, user=request.user, now=timezone.now())
    if delivery.state == ReportDelivery.State.SENT:
        addresses = len(recipient_list(schedule.recipients))
        sent_to = ngettext("Report sent to %(count)s address", "Report sent to %(count)s addresses", addresses)
        rows = ngettext("%(rows)s row.", "%(rows)s rows.", delivery.rows)
        flash.success(request, f"{sent_to % {'count': addresses}}, {rows % {'rows': delivery.rows}}")
    else:
        flash.error(
            request,
            gettext("The report could not be sent (%(error)s); it is not tried again.")
            % {"error": delivery.last_error},
        )
    return HttpResponseRedirect(reverse("console:report", args=[schedule.pk]))


@require_POST
@console_view(roles.MANAGE_REPORTS)
def report_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(ReportSchedule, pk=pk)
    name = schedule.name
    schedule.delete()
    flash.success(request, gettext("Report “%(name)s” deleted.") % {"name": name})
    return HttpResponseRedirect(reverse("console:reports"))

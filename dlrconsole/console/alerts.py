"""Alerts in the console: support and admins see, acknowledge, comment and snooze them; admins
edit the alert rules and the channels alerts go to (with a "send a test")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from alerts import selectors
from alerts.channels.registry import CHANNELS, channel_class
from alerts.models import Alert, AlertChannel, AlertRule, Notification
from alerts.notify import alert_summary, notification_send_test
from alerts.services import alert_acknowledge, alert_comment, alert_resolve, alert_snooze
from dlrconsole import roles
from dlrconsole.audit.services import audit_action
from dlrconsole.console.common import HtmxHttpRequest, console_view

SNOOZE_CHOICES = [
    ("1", gettext_lazy("1 hour")), ("4", gettext_lazy("4 hours")), ("24", gettext_lazy("24 hours")),
    ("0", gettext_lazy("Wake it up now")),
]  # fmt: skip
# How long a rule must stay quiet before the page warns that evaluation is not running.
EVALUATION_LATE = timedelta(minutes=3)


@require_http_methods(["GET"])
@console_view(roles.VIEW_ALERTS)
def alert_list(request: HtmxHttpRequest) -> HttpResponse:
    now = timezone.now()
    alerts = list(selectors.alerts_for_console(now)[:200])
    last = selectors.last_evaluation()
    late = AlertRule.objects.filter(enabled=True).exists() and (last is None or now - last > EVALUATION_LATE)
    context = {
        "nav": "alerts", "alerts": alerts, "now": now, "last_evaluation": last,
        "evaluation_late": late,
        "summaries": {alert.pk: alert_summary(alert) for alert in alerts},
    }  # fmt: skip
    return render(request, "console/alerts.html", context)


class CommentForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Comment"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class SnoozeForm(forms.Form):
    hours = forms.ChoiceField(label=gettext_lazy("Snooze for"), choices=SNOOZE_CHOICES)


@require_http_methods(["GET"])
@console_view(roles.VIEW_ALERTS)
def alert_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _detail(request, get_object_or_404(Alert.objects.select_related("rule", "rule__connection"), pk=pk))


def _detail(request: HtmxHttpRequest, alert: Alert, **forms_: Any) -> HttpResponse:
    query = selectors.messages_query(alert)
    context = {
        "nav": "alerts", "alert": alert, "summary": alert_summary(alert), "chart": selectors.chart_for(alert),
        "statement": selectors.statement_for(alert),
        "events": alert.events.select_related("user"),
        "messages_url": reverse("console:search") + "?" + urlencode(query, doseq=True) if query else "",
        "comment_form": forms_.get("comment_form") or CommentForm(), "snooze_form": SnoozeForm(),
        "width": selectors.CHART_WIDTH, "height": selectors.CHART_HEIGHT,
    }  # fmt: skip
    return render(request, "console/alert.html", context, status=400 if forms_ else 200)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment else ""


def _audit(request: HtmxHttpRequest, alert: Alert, field: str, label: str, old: str, new: str) -> None:
    """What a person did to an alert, on the audit page beside the configuration changes (the
    alert's own history keeps it too, as its events)."""
    audit_action(user=request.user, instance=alert, changes=[{"field": field, "label": label, "old": old, "new": new}])


def _back(pk: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("console:alert", args=[pk]))


@require_POST
@console_view(roles.VIEW_ALERTS)
def alert_acknowledge_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=pk)
    with transaction.atomic():
        done = alert_acknowledge(alert=alert, user=request.user)
        if done:
            _audit(request, alert, "acknowledged", "Acknowledged", "", "yes")
    if done:
        flash.success(request, _("Alert acknowledged: everyone sees you are on it."))
    else:
        flash.info(request, _("This alert was already acknowledged."))
    return _back(pk)


@require_POST
@console_view(roles.VIEW_ALERTS)
def alert_comment_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _detail(request, alert, comment_form=form)
    with transaction.atomic():
        event = alert_comment(alert=alert, user=request.user, text=form.cleaned_data["text"])
        _audit(request, alert, "comment", "Comment", "", event.text)
    flash.success(request, _("Comment added."))
    return _back(pk)


@require_POST
@console_view(roles.VIEW_ALERTS)
def alert_snooze_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=pk)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        flash.error(request, _("Choose how long to snooze the alert."))
        return HttpResponse(status=400, content=b"Choose how long to snooze the alert.")
    hours = int(form.cleaned_data["hours"])
    until = timezone.now() + timedelta(hours=hours) if hours else None
    with transaction.atomic():
        before = alert.snoozed_until
        alert_snooze(alert=alert, user=request.user, until=until)
        _audit(request, alert, "snoozed_until", "Snoozed until", _when(before), _when(until) or "woken up")
    flash.success(
        request,
        _("Alert woken up.")
        if until is None
        else _("Alert snoozed for %(hours)s hour(s): its channels are not told meanwhile.") % {"hours": hours},
    )
    return _back(pk)


@require_POST
@console_view(roles.VIEW_ALERTS)
def alert_resolve_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Only alerts about one message are resolved by hand: a rule's alert resolves itself when its
    figure is back to normal (resolving it by hand would have it fire again a minute later)."""
    alert = get_object_or_404(Alert, pk=pk)
    if alert.source != Alert.Source.RULE:
        flash.error(request, _("This alert resolves by itself when its figure is back to normal."))
        return _back(pk)
    with transaction.atomic():
        done = alert_resolve(alert=alert, now=timezone.now(), why="resolved by hand", user=request.user)
    flash.success(request, _("Alert resolved.")) if done else flash.info(request, _("This alert was already resolved."))
    return _back(pk)


# Rules


class AlertRuleForm(forms.ModelForm[AlertRule]):
    channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Who is told when it fires and when it resolves."),
    )  # fmt: skip

    class Meta:
        model = AlertRule
        fields = [
            "name", "metric", "error_class", "reason", "comparison", "threshold", "window_minutes", "min_volume",
            "hold_minutes", "cooldown_minutes", "severity", "connection", "country", "network", "flow", "channels",
            "enabled",
        ]  # fmt: skip
        labels = {
            "window_minutes": gettext_lazy("Window"), "min_volume": gettext_lazy("Minimum volume"),
            "hold_minutes": gettext_lazy("Fires after holding for"),
            "cooldown_minutes": gettext_lazy("Resolves after normal for"),
            "comparison": gettext_lazy("Fires when the figure"),
        }  # fmt: skip
        help_texts = {
            # Never %-formatted: without this, xgettext reads "% f" as a placeholder and msgfmt
            # refuses the translations, whose "%" is followed by another word.
            # xgettext:no-python-format
            "threshold": gettext_lazy("In the metric's unit: % for rates, seconds for times, a count for backlogs.")
        }


@require_http_methods(["GET"])
@console_view(roles.MANAGE_ALERT_RULES)
def rule_list(request: HtmxHttpRequest) -> HttpResponse:
    rules = AlertRule.objects.select_related("connection").prefetch_related("channels")
    return render(request, "console/alert_rules.html", {"nav": "alerts", "rules": rules})


@require_http_methods(["GET", "POST"])
@console_view(roles.MANAGE_ALERT_RULES)
def rule_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk) if pk else None
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if saved.created_by_id is None:
            saved.created_by_id = request.user.pk
        saved.save()
        form.save_m2m()
        flash.success(request, _("Alert rule “%(name)s” saved; it is evaluated every minute.") % {"name": saved.name})
        return HttpResponseRedirect(reverse("console:alert-rules"))
    context = {"nav": "alerts", "form": form, "rule": rule}
    return render(request, "console/alert_rule_form.html", context, status=400 if form.errors else 200)


@require_POST
@console_view(roles.MANAGE_ALERT_RULES)
def rule_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    name = rule.name
    with transaction.atomic():
        for alert in Alert.objects.filter(rule=rule, state=Alert.State.OPEN):
            alert_resolve(alert=alert, now=timezone.now(), why="its rule was deleted", user=request.user)
        rule.delete()
    flash.success(request, _("Alert rule “%(name)s” deleted.") % {"name": name})
    return HttpResponseRedirect(reverse("console:alert-rules"))


# Channels


class AlertChannelForm(forms.ModelForm[AlertChannel]):
    """The kind's own fields (channels/*.py `fields`), secrets write-only: left empty on an edit,
    the stored value is kept."""

    class Meta:
        model = AlertChannel
        fields = ["name", "per_message_alerts", "enabled"]

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.channel_class = channel_class(kind)
        stored = self.instance.config if self.instance.pk else {}
        for key, label in self.channel_class.fields:
            if key in self.channel_class.secret_keys:
                keep = bool(stored.get(key))
                self.fields[f"config_{key}"] = forms.CharField(
                    label=label, required=not keep,
                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                    help_text=_("Stored; leave empty to keep it.") if keep else _("Write-only: never shown again."),
                )  # fmt: skip
            elif key == "to":
                self.fields["config_to"] = forms.CharField(
                    label=label, widget=forms.Textarea(attrs={"rows": 3}), initial="\n".join(stored.get("to", []))
                )
            else:
                self.fields[f"config_{key}"] = forms.CharField(
                    label=label, required=False, max_length=500, initial=stored.get(key, "")
                )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stored = self.instance.config if self.instance.pk else {}
        config: dict[str, Any] = {}
        for key, _label in self.channel_class.fields:
            value = (cleaned.get(f"config_{key}") or "").strip()
            if key == "to":
                config["to"] = [a.strip() for a in value.replace(",", "\n").splitlines() if a.strip()]
            elif value:
                config[key] = value
            elif key in self.channel_class.secret_keys and stored.get(key):
                config[key] = stored[key]
        try:
            self.channel_class.validate_config(config)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        self.config = config
        # The model's own check (full_clean, after this) sees what will be stored.
        self.instance.kind, self.instance.config = self.kind, config
        return cleaned

    def save(self, commit: bool = True) -> AlertChannel:
        channel = super().save(commit=False)
        channel.kind, channel.config = self.kind, self.config
        if commit:
            channel.save()
        return channel


@require_http_methods(["GET"])
@console_view(roles.MANAGE_ALERT_CHANNELS)
def channel_list(request: HtmxHttpRequest) -> HttpResponse:
    channels = AlertChannel.objects.all()
    kinds = [(kind, cls.label) for kind, cls in CHANNELS.items()]
    return render(request, "console/alert_channels.html", {"nav": "alerts", "channels": channels, "kinds": kinds})


@require_http_methods(["GET", "POST"])
@console_view(roles.MANAGE_ALERT_CHANNELS)
def channel_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, pk=pk) if pk else None
    kind = channel.kind if channel else request.GET.get("kind", "")
    if kind not in CHANNELS:
        return HttpResponse(f"Choose a kind of channel: {', '.join(CHANNELS)}.", status=400, content_type="text/plain")
    form = AlertChannelForm(request.POST or None, instance=channel, kind=kind)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        flash.success(request, _("Channel “%(name)s” saved. Send a test to check it.") % {"name": saved.name})
        return HttpResponseRedirect(reverse("console:alert-channel", args=[saved.pk]))
    context: dict[str, Any] = {"nav": "alerts", "form": form, "channel": channel, "kind_label": CHANNELS[kind].label}
    if channel is not None:
        context["notifications"] = (
            Notification.objects.filter(channel=channel)
            .select_related("alert", "requested_by")
            .prefetch_related("attempts")[:20]
        )
    return render(request, "console/alert_channel_form.html", context, status=400 if form.errors else 200)


@require_POST
@console_view(roles.MANAGE_ALERT_CHANNELS)
def channel_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, pk=pk)
    notification = notification_send_test(channel, user=request.user)
    attempt = notification.attempts.last()
    if notification.state == Notification.State.SENT:
        flash.success(request, _("Test sent to “%(name)s”: the service took it.") % {"name": channel.name})
    else:
        flash.error(request, f"Test not sent: {attempt.error if attempt else 'unknown error'}.")
    return HttpResponseRedirect(reverse("console:alert-channel", args=[pk]))


@require_POST
@console_view(roles.MANAGE_ALERT_CHANNELS)
def channel_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(AlertChannel, pk=pk)
    name = channel.name
    channel.delete()
    flash.success(request, _("Channel “%(name)s” deleted.") % {"name": name})
    return HttpResponseRedirect(reverse("console:alert-channels"))

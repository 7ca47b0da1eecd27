"""The policy editor's forms: a rule's conditions as choices from retries/policy_vocabulary.py,
its steps as a formset, a fallback channel's settings by the fields its sender kind declares.
Every value is checked here, server-side: an unknown one is refused with what to write."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from receipts.models import Connection
from retries.actions.registry import action_choices, get_action
from retries.models import MAX_STEP_COUNT, FallbackChannel
from retries.policy_services import RuleDraft, StepDraft, secret_key
from retries.policy_vocabulary import (
    country_choices,
    error_class_choices,
    flow_choices,
    parse_duration,
    parse_durations,
    reason_choices,
    status_choices,
)
from retries.senders.registry import SENDERS, sender_choices


def _choices(items: list[Any]) -> list[tuple[str, str]]:
    return [(item.value, item.label) for item in items]


# Each condition's refusal whole, for languages where the words around the value agree with it.
UNKNOWN_CHOICE = {
    "flows": _("unknown flow “%(value)s”: choose one of the listed flows"),
    "statuses": _("unknown status “%(value)s”: choose one of the listed statuses"),
    "error_classes": _("unknown error class “%(value)s”: choose one of the listed error classes"),
    "reasons": _("unknown reason “%(value)s”: choose one of the listed reasons"),
}


def _multiple(name: str, items: list[Any]) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=_choices(items), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": UNKNOWN_CHOICE[name]},
    )  # fmt: skip


class CountriesField(forms.MultipleChoiceField):
    """Countries as choices with their names; a code posted in any case or with spaces (" fr")
    is read as the country it names, anything else is refused by name."""

    def __init__(self) -> None:
        super().__init__(
            choices=_choices(country_choices()), required=False, widget=forms.CheckboxSelectMultiple,
            error_messages={"invalid_choice": _("unknown country “%(value)s”: choose one of the listed countries")},
        )  # fmt: skip

    def to_python(self, value: Any) -> list[str]:
        return [str(code).strip().upper() for code in super().to_python(value)]

    def clean(self, value: Any) -> list[str]:
        return sorted(set(super().clean(value)))


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    enabled = forms.BooleanField(required=False, initial=True)
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.order_by("slug"), required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _("unknown connection “%(value)s”"), "invalid_pk_value": _("unknown connection"),
        },
    )  # fmt: skip
    deadline = forms.CharField(
        required=False, max_length=20, help_text=_("Nothing more is sent this long after the original, e.g. 5m.")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built per form: flows come from recent messages, which change.
        self.fields["flows"] = _multiple("flows", flow_choices())
        self.fields["countries"] = CountriesField()
        self.fields["statuses"] = _multiple("statuses", status_choices())
        self.fields["error_classes"] = _multiple("error_classes", error_class_choices())
        self.fields["reasons"] = _multiple("reasons", reason_choices())

    def clean_deadline(self) -> int | None:
        text = self.cleaned_data["deadline"].strip()
        if not text:
            return None
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if seconds <= 0:
            raise ValidationError(_("a deadline must be longer than 0 s (leave it empty for none)"))
        return seconds


class StepForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    action = forms.ChoiceField(choices=action_choices)
    count = forms.IntegerField(min_value=1, max_value=MAX_STEP_COUNT, initial=1, label=_("Attempts"))
    delays = forms.CharField(
        required=False,
        max_length=200,
        label=_("Waits"),
        help_text=_("Before each attempt, e.g. 30s, 2m (the last repeats)."),
    )
    target_connection = forms.ModelChoiceField(
        queryset=Connection.objects.order_by("slug"), required=False, label=_("Connection")
    )
    fallback_channel = forms.ModelChoiceField(
        queryset=FallbackChannel.objects.all(), required=False, label=_("Channel")
    )

    def clean_delays(self) -> list[int]:
        try:
            delays = parse_durations(self.cleaned_data["delays"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if len(delays) > MAX_STEP_COUNT:
            raise ValidationError(_("at most %(count)s waits") % {"count": MAX_STEP_COUNT})
        if any(d > 7 * 24 * 3600 for d in delays):
            raise ValidationError(_("a wait may be at most 7 days"))
        return delays

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        action = cleaned.get("action")
        if action == "retry_other" and not cleaned.get("target_connection"):
            self.add_error("target_connection", _("choose the connection to retry on"))
        if action == "fallback" and not cleaned.get("fallback_channel"):
            self.add_error("fallback_channel", _("choose the channel to fall back to"))
        if action and not get_action(action).attempts:
            cleaned["count"], cleaned["delays"] = 1, []
        return cleaned

    def draft(self) -> StepDraft:
        data = self.cleaned_data
        return StepDraft(
            action=data["action"], count=data["count"] or 1, delays=tuple(data["delays"]),
            target_connection_id=data["target_connection"].pk if data.get("target_connection") else None,
            fallback_channel_id=data["fallback_channel"].pk if data.get("fallback_channel") else None,
            id=data.get("id"),
        )  # fmt: skip


class BaseStepFormSet(forms.BaseFormSet[StepForm]):
    def clean(self) -> None:
        if any(self.errors):
            return
        if not [form for form in self.forms if form.cleaned_data]:
            raise ValidationError(_("add at least one step: what the rule does for the messages it takes"))


StepFormSet = forms.formset_factory(
    StepForm, formset=BaseStepFormSet, extra=0, max_num=20, validate_max=True, absolute_max=20
)


def rule_draft(form: RuleForm, steps: forms.BaseFormSet[StepForm]) -> RuleDraft:
    data = form.cleaned_data
    return RuleDraft(
        name=data["name"], enabled=data["enabled"], deadline_seconds=data["deadline"],
        flows=data["flows"], countries=data["countries"], statuses=data["statuses"],
        error_classes=data["error_classes"], reasons=data["reasons"],
        connection_ids=[c.pk for c in data["connections"]],
        steps=[step.draft() for step in steps.forms if step.cleaned_data],
    )  # fmt: skip


def kind_fields(kind: str) -> tuple[str, ...]:
    """The settings a sender kind declares (retries/senders/), besides its credential."""
    return SENDERS[kind].setting_fields if kind in SENDERS else ()


class ChannelForm(forms.Form):
    slug = forms.SlugField(max_length=64)
    kind = forms.ChoiceField(choices=sender_choices)
    sender_id = forms.CharField(max_length=254, required=False, label=_("Sender (From)"))
    enabled = forms.BooleanField(required=False, initial=True)
    secret = forms.CharField(
        required=False, max_length=500, label=_("Credential"),
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Password, secret or token. Never shown again; leave blank to keep the stored one."),
    )  # fmt: skip

    def __init__(self, *args: Any, channel: FallbackChannel | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        fields = sorted({name for cls in SENDERS.values() for name in cls.setting_fields})
        secrets = SENDERS[channel.kind].secret_keys if channel and channel.kind in SENDERS else ()
        for name in fields:
            # Never a credential back into the page (Infobip's api_key is one, Vonage's is not).
            initial = (channel.config or {}).get(name, "") if channel and name not in secrets else ""
            self.fields[f"setting_{name}"] = forms.CharField(
                required=False, max_length=500, label=name.replace("_", " "), initial=initial
            )

    def setting_rows(self, kind: str) -> list[forms.BoundField]:
        """The settings `kind` declares, as fields of this form."""
        return [self[f"setting_{name}"] for name in kind_fields(kind)]

    def settings(self) -> dict[str, str]:
        kind = self.cleaned_data["kind"]
        secret = secret_key(kind)
        return {
            name: self.cleaned_data[f"setting_{name}"].strip()
            for name in kind_fields(kind)
            if name != secret and self.cleaned_data.get(f"setting_{name}", "").strip()
        }

    def clean_kind(self) -> str:
        kind = self.cleaned_data["kind"]
        if kind not in SENDERS:
            raise ValidationError(_("unknown kind “%(kind)s”") % {"kind": kind})
        return kind


class TestSendForm(forms.Form):
    to = forms.CharField(max_length=254, label=_("Send a test to"), help_text=_("An e-mail address or a phone number."))

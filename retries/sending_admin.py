"""Admin for how messages are (re)sent: a connection's send API and the fallback channels.

The credential is write-only: the settings field never holds it, the page never renders it
(only its last four characters), and a blank credential keeps the stored one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from retries.models import ConnectionSender, FallbackChannel
from retries.senders.registry import SENDERS


def secret_key(kind: str) -> str:
    keys = SENDERS[kind].secret_keys if kind in SENDERS else ()
    return keys[0] if keys else ""


def secret_hint(config: dict[str, Any], kind: str) -> str:
    value = str(config.get(secret_key(kind)) or "") if secret_key(kind) else ""
    return f"…{value[-4:]}" if len(value) > 8 else ("…" if value else "")


class SendingForm(forms.ModelForm[Any]):
    settings = forms.JSONField(
        required=False,
        help_text='The sender\'s settings except its credential, e.g. {"account_sid": "AC…"} or {"url": "https://…"}.',
    )
    credential = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The API token, key, secret or password. Leave blank to keep the current one.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = dict(self.instance.config or {})
        config.pop(secret_key(self.instance.kind), None)
        self.fields["settings"].initial = config

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind = cleaned.get("kind") or ""
        settings = cleaned.get("settings") or {}
        if not isinstance(settings, dict):
            self.add_error("settings", "an object of settings")
            return cleaned
        key = secret_key(kind)
        config = dict(settings)
        if key:
            # A credential pasted into the settings is taken as the credential, never shown again.
            pasted = config.pop(key, None)
            stored = (self.instance.config or {}).get(key) if self.instance.kind == kind else None
            credential = cleaned.get("credential") or pasted or stored
            if credential:
                config[key] = credential
        # Checked by the model's clean() (validate_sender_config) when the form validates it.
        self.instance.config = config
        return cleaned


class ConnectionSenderForm(SendingForm):
    class Meta:
        model = ConnectionSender
        fields = ["connection", "kind", "sender_id", "enabled"]


class FallbackChannelForm(SendingForm):
    class Meta:
        model = FallbackChannel
        fields = ["slug", "kind", "sender_id", "enabled"]


class SendingAdmin(admin.ModelAdmin[Any]):
    list_filter = ["kind", "enabled"]
    readonly_fields = ["credential_hint"]

    @admin.display(description="stored credential")
    def credential_hint(self, obj: ConnectionSender | FallbackChannel) -> str:
        return secret_hint(obj.config or {}, obj.kind)


def columns(identity: str) -> tuple[str, ...]:
    return (identity, "kind", "sender_id", "credential_hint", "enabled")


def form_fields(identity: str) -> tuple[str, ...]:
    return (identity, "kind", "settings", "credential", "credential_hint", "sender_id", "enabled")


@admin.register(ConnectionSender)
class ConnectionSenderAdmin(SendingAdmin):
    form = ConnectionSenderForm
    list_display = columns("connection")
    fields = form_fields("connection")


@admin.register(FallbackChannel)
class FallbackChannelAdmin(SendingAdmin):
    form = FallbackChannelForm
    list_display = columns("slug")
    fields = form_fields("slug")

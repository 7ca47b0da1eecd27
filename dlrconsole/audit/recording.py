"""Turns each history record into an audit entry (django-simple-history's signals).

One request that saves an object and then its many-to-many fields makes several history
records (the Django admin does); they become one entry, so a page reads as one change.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from simple_history.models import HistoricalRecords, ModelChange
from simple_history.utils import get_m2m_reverse_field_name

from dlrconsole.audit.models import AuditEntry
from dlrconsole.audit.services import audit_action
from dlrconsole.lib.history import REDACTED, secret_fingerprint

MAX_VALUE_CHARS = 300


def fingerprint_secrets(*, instance: models.Model, history_instance: Any, **_: Any) -> None:
    """pre_create_historical_record: the secrets' fingerprints, never their values."""
    fingerprints = {
        name: secret_fingerprint(getattr(instance, name))
        for name in getattr(type(history_instance), "audit_secret_fields", ())
    }
    for name, keys_of in getattr(type(history_instance), "audit_secret_keys", {}).items():
        value = getattr(instance, name)
        if not isinstance(value, dict):
            continue
        keys = set(keys_of(instance))
        # A new dict: the record's value is the instance's own object until replaced.
        setattr(history_instance, name, {k: REDACTED if k in keys and v else v for k, v in value.items()})
        fingerprints.update({f"{name}.{key}": secret_fingerprint(value.get(key)) for key in sorted(keys)})
    if fingerprints:
        history_instance.secret_fingerprints = fingerprints


def record_entry(*, instance: models.Model, history_instance: Any, history_user: Any, **_: Any) -> None:
    """post_create_historical_record: write (or extend) the audit entry of this change."""
    action = {"+": AuditEntry.Action.CREATED, "~": AuditEntry.Action.CHANGED, "-": AuditEntry.Action.DELETED}[
        history_instance.history_type
    ]
    changes = _changes(history_instance, action)
    if action == AuditEntry.Action.CHANGED and not changes:
        return  # saved without a change
    opts = instance._meta
    key = (opts.label_lower, str(instance.pk))
    pending = _entries_of_this_request()
    entry = pending.get(key)
    if entry is not None and action == AuditEntry.Action.CHANGED:
        entry.changes = _merge(entry.changes, changes)
        if not entry.changes and entry.action == AuditEntry.Action.CHANGED:
            entry.delete()  # changed and changed back within the request
            del pending[key]
            return
        entry.object_repr = str(instance)[:200]
        entry.save(update_fields=["changes", "object_repr"])
        return
    pending[key] = audit_action(
        user=history_user, instance=instance, changes=changes, action=action, at=history_instance.history_date
    )


def _entries_of_this_request() -> dict[tuple[str, str], AuditEntry]:
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        return {}  # outside a request every record is its own entry
    entries: dict[tuple[str, str], AuditEntry] = request.__dict__.setdefault("_audit_entries", {})
    return entries


def _changes(record: Any, action: str) -> list[dict[str, Any]]:
    if action == AuditEntry.Action.DELETED:
        return []
    previous = record.prev_record if action == AuditEntry.Action.CHANGED else None
    changes: list[dict[str, Any]] = []
    if previous is None:
        changes = [_created(record, field) for field in record.tracked_fields if _worth_listing(record, field)]
        changes += [_m2m(record, field, [], getattr(record, field.name).all()) for field in record._history_m2m_fields]
        changes = [change for change in changes if change.get("added") or change.get("new")]
    else:
        delta = record.diff_against(previous, foreign_keys_are_objs=True)
        changes = [_changed(record, change) for change in delta.changes]
    for name, fingerprint in sorted(getattr(record, "secret_fingerprints", {}).items()):
        before = getattr(previous, "secret_fingerprints", {}).get(name) if previous is not None else None
        if fingerprint != before:
            changes.append({"field": name, "label": _label(record, name), "secret": True})
    return changes


def _worth_listing(record: Any, field: models.Field) -> bool:
    """On creation: the values that say something (not the id, not a default left as is)."""
    if not field.editable or field.primary_key:
        return False
    return callable(field.default) or getattr(record, field.attname) != field.get_default()


def _created(record: Any, field: models.Field) -> dict[str, Any]:
    value = getattr(record, field.name)
    if isinstance(field, models.DateTimeField):
        value = None  # creation and join times are the entry's own time
    return {"field": field.name, "label": _label(record, field.name), "old": "", "new": _display(field, value)}


def _changed(record: Any, change: ModelChange) -> dict[str, Any]:
    field = record.instance_type._meta.get_field(change.field)
    if field.many_to_many:
        return _m2m(record, field, change.old, change.new)
    return {
        "field": change.field,
        "label": _label(record, change.field),
        "old": _display(field, change.old),
        "new": _display(field, change.new),
    }


def _m2m(record: Any, field: Any, old_rows: Any, new_rows: Any) -> dict[str, Any]:
    """Many-to-many rows (through-table rows as dicts or history objects) as added/removed names."""
    target = get_m2m_reverse_field_name(field)

    def names(rows: Any) -> set[str]:
        return {str(row[target] if isinstance(row, dict) else getattr(row, target)) for row in rows}

    old, new = names(old_rows), names(new_rows)
    return {
        "field": field.name,
        "label": _label(record, field.name),
        "added": sorted(new - old),
        "removed": sorted(old - new),
    }


def _merge(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One request's successive changes of a field: the first old value, the last new one."""
    merged = {change["field"]: dict(change) for change in earlier}
    for change in later:
        first = merged.get(change["field"])
        if first is None:
            merged[change["field"]] = dict(change)
        elif "added" in change:
            added = (set(first["added"]) - set(change["removed"])) | set(change["added"])
            removed = (set(first["removed"]) - set(change["added"])) | set(change["removed"])
            first.update(added=sorted(added - removed), removed=sorted(removed - added))
        elif "new" in change:
            first["new"] = change["new"]
    return [
        change
        for change in merged.values()
        if change.get("secret")
        or change.get("added")
        or change.get("removed")
        or change.get("old") != change.get("new")
    ]


def _label(record: Any, name: str) -> str:
    field_name, _, key = name.partition(".")
    try:
        label = str(record.instance_type._meta.get_field(field_name).verbose_name)
        return f"{label}: {key}" if key else label
    except FieldDoesNotExist:  # a field since removed from the model keeps its name
        return name


def _display(field: models.Field, value: Any) -> str:
    if value is None or (isinstance(value, str | list | dict) and not value):
        return ""
    if field.choices and not isinstance(value, models.Model):
        value = dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"

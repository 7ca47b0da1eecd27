"""SMPP receipts (the smpp-text and kannel providers) carry the message's first characters after
`text:`, an OTP often; texts are shown to no one, and ingestion no longer keeps them. This
removes them from receipts stored before. The logic is frozen here, as a migration's must be
(receipts/providers/smpp_text.py holds the live one)."""

import re

from django.db import migrations

TEXT_KEY = re.compile(r"(?:^|\s)text\s*:", re.IGNORECASE)
ENCODED_TEXT = re.compile(r"(text(?::|%3A))[^&]*", re.IGNORECASE)
NOT_KEPT = "(not kept)"


def without_message_text(raw, *, encoded):
    if encoded:
        return ENCODED_TEXT.sub(lambda match: match.group(1) + NOT_KEPT, raw)
    match = TEXT_KEY.search(raw)
    return raw if match is None else raw[: match.end()] + NOT_KEPT


def forget_texts(apps, schema_editor):
    Receipt = apps.get_model("receipts", "Receipt")
    receipts = Receipt.objects.filter(connection__provider__in=["smpp-text", "kannel"]).only("raw_body", "headers")
    changed = []
    for receipt in receipts.iterator(chunk_size=2000):
        content_type = str((receipt.headers or {}).get("content-type", "")).split(";")[0].strip().lower()
        encoded = content_type == "application/x-www-form-urlencoded" or "=" in receipt.raw_body.split(" ", 1)[0]
        kept = without_message_text(receipt.raw_body, encoded=encoded)
        if kept != receipt.raw_body:
            receipt.raw_body = kept
            changed.append(receipt)
        if len(changed) >= 2000:
            Receipt.objects.bulk_update(changed, ["raw_body"])
            changed = []
    Receipt.objects.bulk_update(changed, ["raw_body"])


class Migration(migrations.Migration):

    dependencies = [
        ("receipts", "0015_connection_rate_limit"),
    ]

    operations = [migrations.RunPython(forget_texts, migrations.RunPython.noop)]

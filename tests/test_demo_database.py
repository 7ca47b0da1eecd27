"""The embedded demo runs on SQLite with eager tasks: its ingestion path (the portable
status update, the in-process publish) is checked here in a process of its own. The rest of
the suite runs on PostgreSQL only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings

SCRIPT = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from receipts.phones import parse_number
    from receipts.services import MessageRegistration, connection_create, message_register
    from receipts.models import OutboxEvent, Receipt
    from tests.webhooks import generic_body, generic_headers

    call_command("migrate", verbosity=0)
    connection = connection_create(slug="demo", provider="standard-webhooks",
                                   secrets=["whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"])
    client = Client()

    def post(message_id, status):
        body = generic_body(message_id, status)
        headers = generic_headers(connection, body)
        response = client.post("/hooks/demo/", data=body, content_type=headers.pop("content-type"), headers=headers)
        return response.status_code

    message, _ = message_register(MessageRegistration(connection=connection, provider_message_id="m1",
                                                      recipient=parse_number("+33612345678")))
    codes = [post("m1", s) for s in ("delivered", "sent", "expired")] + [post("m2", "undelivered")]
    early, _ = message_register(MessageRegistration(connection=connection, provider_message_id="m2",
                                                    recipient=parse_number("+447700900123")))
    message.refresh_from_db()
    print(codes, message.status, early.status, sorted(OutboxEvent.objects.values_list("status", flat=True)),
          OutboxEvent.objects.filter(processed_at__isnull=True).count())

    # A batch takes the set-based path, statement by statement on SQLite.
    third, _ = message_register(MessageRegistration(connection=connection, provider_message_id="m3",
                                                    recipient=parse_number("+33612345679")))
    items = [{"message_id": m, "status": s} for m, s in (("m3", "sent"), ("m3", "delivered"), ("m5", "sent"))]
    body = json.dumps({"type": "message.status", "data": items}).encode()
    headers = generic_headers(connection, body)
    response = client.post("/hooks/demo/", data=body, content_type=headers.pop("content-type"), headers=headers)
    third.refresh_from_db()
    print(response.json(), third.status, Receipt.objects.get(provider_message_id="m5").outcome)

    # Rollups and alert rules work on SQLite too (no advisory locks, grouping sets or arrays there).
    from datetime import timedelta
    from django.utils import timezone
    from alerts import evaluation
    from alerts.models import Alert, AlertRule
    from receipts.rollups import maintain
    maintain.roll_up_all(seconds=30)
    rule = AlertRule.objects.create(name="rate", metric="delivery_rate", threshold=99, min_volume=1,
                                    hold_minutes=0, window_minutes=15)
    evaluation.evaluate_all(now=timezone.now() + timedelta(minutes=2))
    rule.refresh_from_db()
    print(rule.state, round(rule.last_value, 1), Alert.objects.filter(rule=rule).count())
    """
)


def test_demo_database_ingests_in_any_order_and_runs_tasks_in_process(tmp_path: Path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "SECRET_KEY", "DLR_SECRETS_KEYS", "DEBUG"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings_demo",
        "DLR_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines() == [
        "[200, 200, 200, 200] delivered undelivered ['delivered', 'undelivered'] 0",
        "{'received': 3, 'duplicates': 0, 'applied': 2, 'parked': 1} delivered parked",
        "firing 66.7 1",
    ]
    assert (tmp_path / "dlrconsole.sqlite3").exists()
    # Keys of its own, readable by their owner only: never a key published with the code.
    for name in ("demo-secret-key", "demo-secrets-key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600

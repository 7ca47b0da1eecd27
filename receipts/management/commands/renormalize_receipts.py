from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from receipts.models import Connection
from receipts.renormalize import DEFAULT_BATCH, RenormalizeReport, receipts_renormalize


class Command(BaseCommand):
    help = (
        "Read stored receipts again through the current adapters and error catalog. Shows what would "
        "change (a dry run) unless --apply, which restates the receipts and their messages without "
        "running rules again (no decisions, no notifications)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Write the changes (default: only show them).")
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="Receipts read at a time.")
        parser.add_argument("--since", default="", help="Only receipts received since (ISO date or date-time).")
        parser.add_argument("--connection", default="", help="Only this connection's receipts (its slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["batch"] <= 100_000:
            raise CommandError("--batch must be between 1 and 100000")
        slug = options["connection"]
        if slug and not Connection.objects.filter(slug=slug).exists():
            raise CommandError(f"no connection {slug!r}")
        report = receipts_renormalize(
            apply=options["apply"], batch=options["batch"], since=parse_since(options["since"]), connection_slug=slug
        )
        self.stdout.write(describe(report))


def parse_since(value: str) -> datetime | None:
    """An ISO date (midnight in the current time zone) or date-time; a time without a zone is in
    the current time zone."""
    if not value:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--since {value!r} is not an ISO date or date-time")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def describe(report: RenormalizeReport) -> str:
    verb = "Restated" if report.applied else "Would restate"
    lines = []
    for slug, tally in sorted(report.connections.items()):
        lines.append(
            f"{slug}: {tally.examined} receipts read, {tally.receipts_changed} changed, "
            f"{tally.messages_changed} messages changed, {tally.unreadable} unreadable (left as they were)"
        )
        if tally.networks_changed or tally.prices_changed:
            lines.append(f"  network read anew: {tally.networks_changed}, price read anew: {tally.prices_changed}")
        for (name, old, new), count in sorted(tally.changes.items()):
            lines.append(f"  {name} {old or '-'} -> {new or '-'}: {count}")
    if report.examples:
        lines.append("Examples:")
        lines.extend(f"  {example}" for example in report.examples)
    lines.append(
        f"{verb} {report.receipts_changed} receipts and {len(report.changed_message_ids)} messages."
        + ("" if report.applied else " Nothing was written: run again with --apply to write it.")
    )
    return "\n".join(lines)

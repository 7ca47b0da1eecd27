"""Apply the retention settings now (what the daily beat task does), optionally exporting the
purged rows first; prints how many rows of each table were deleted."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dlrconsole.ops.retention import retention_apply


class Command(BaseCommand):
    help = "Delete what each table keeps no longer (DLR_RETENTION_*), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--export-dir",
            help="Write the purged rows there first (gzip JSON lines per table); default DLR_RETENTION_EXPORT_DIR.",
        )
        parser.add_argument("--seconds", type=int, help="Stop after this long (default DLR_RETENTION_PASS_SECONDS).")

    def handle(self, *args: Any, **options: Any) -> None:
        export_dir = options["export_dir"]
        if export_dir is not None and not (os.path.isdir(export_dir) and os.access(export_dir, os.W_OK)):
            raise CommandError(f"--export-dir {export_dir!r} is not a writable directory")
        seconds = options["seconds"]
        if seconds is not None and not 1 <= seconds <= 24 * 3600:
            raise CommandError("--seconds must be between 1 and 86400")
        deleted = retention_apply(export_dir=export_dir, seconds=seconds)
        if deleted is None:
            raise CommandError("another retention run is in progress; nothing done")
        for table, number in sorted(deleted.items()):
            self.stdout.write(f"{table}: {number} deleted")
        self.stdout.write(
            self.style.SUCCESS(f"{sum(n for t, n in deleted.items() if t != 'parked receipts expired')} rows deleted.")
        )

"""Check the rollups against a full recount of the messages, or rebuild them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from receipts.rollups import rebuild as rollups_rebuild
from receipts.rollups import recount


class Command(BaseCommand):
    help = (
        "Compare every rollup cell with a full recount of the messages and list the differences "
        "(none when the rollups are right). --rebuild counts everything again from the messages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Forget the rollups and count every message again.")
        parser.add_argument("--limit", type=int, default=20, help="Differences to print (default 20).")

    def handle(self, *args: Any, rebuild: bool, limit: int, **options: Any) -> None:
        if limit < 0:
            raise CommandError("--limit must be 0 or more")
        if rebuild:
            try:
                counted = rollups_rebuild.rebuild()
            except rollups_rebuild.PassRunning as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{counted} messages counted again")
        differences = recount.check()
        for difference in differences[:limit]:
            self.stdout.write(
                f"{difference.table} {difference.cell}: {difference.column} is {difference.found}, "
                f"a recount gives {difference.expected}"
            )
        if differences:
            raise CommandError(f"{len(differences)} rollup figures differ from a full recount")
        self.stdout.write("The rollups equal a full recount.")

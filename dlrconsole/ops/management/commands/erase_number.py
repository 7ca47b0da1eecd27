"""Erase a recipient's number everywhere (a data-protection request): its messages anonymized,
their receipts' raw payloads emptied, the number cut out of what quotes it. Recorded and
audited with the number masked; prints the rows touched per table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dlrconsole.erasure import number_erase
from receipts.phones import InvalidNumber, parse_number


class Command(BaseCommand):
    help = "Erase a recipient's number from every table (data-protection request)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", help="The number in international form, e.g. +41793026727.")
        parser.add_argument("--confirm", required=True, help="The same number again: nothing is undone later.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            number = parse_number(options["number"]).e164
            again = parse_number(options["confirm"]).e164
        except InvalidNumber as exc:
            raise CommandError(str(exc)) from None
        if number != again:
            raise CommandError("--confirm is not the same number; nothing erased")
        request = number_erase(e164=number)
        for table, count in request.counts.items():
            self.stdout.write(f"{table}: {count}")
        self.stdout.write(self.style.SUCCESS(f"{request.masked_number} erased (request {request.pk}, audited)."))

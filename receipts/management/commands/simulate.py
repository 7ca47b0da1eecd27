from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from receipts.simulator import Simulator, SimulatorConfig, SimulatorError, load_targets


def fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


class Command(BaseCommand):
    help = (
        "Play SMS providers against a running DLR Console: register messages through the API and post "
        "realistic, correctly signed delivery receipts to the connections' webhooks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="Base URL of the running console, e.g. http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="API token used to register messages (create_api_token).")
        parser.add_argument(
            "--connection",
            required=True,
            action="append",
            help="Connection slug(s) to play, comma-separated or repeated; secrets are read from the database.",
        )
        parser.add_argument("--rate", type=float, default=5.0, help="New messages per second (default 5).")
        parser.add_argument(
            "--duration", type=float, default=60.0, help="Seconds during which new messages start (default 60)."
        )
        parser.add_argument("--count", type=int, default=None, help="Stop after starting this many messages.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a reproducible run.")
        parser.add_argument(
            "--duplicate-rate", type=fraction, default=0.05, help="Share of messages with a retried post."
        )
        parser.add_argument(
            "--out-of-order-rate", type=fraction, default=0.1, help="Share of messages whose last receipts swap."
        )
        parser.add_argument(
            "--early-receipt-rate",
            type=fraction,
            default=0.05,
            help="Share of messages whose first receipt is posted before the registration (parked, then linked).",
        )
        parser.add_argument(
            "--bad-signature-rate",
            type=fraction,
            default=0.0,
            help="Share of messages that also get a forged post (wrong secret); these must be answered 401.",
        )
        parser.add_argument(
            "--time-scale", type=float, default=1.0, help="Multiplies the delays between a message's events."
        )
        parser.add_argument(
            "--allow-remote", action="store_true", help="Allow a --url that is not a loopback host (127.0.0.1, ::1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [slug.strip() for value in options["connection"] for slug in value.split(",") if slug.strip()]
        try:
            config = SimulatorConfig(
                base_url=options["url"],
                token=options["token"],
                targets=load_targets(slugs),
                rate=options["rate"],
                duration=options["duration"],
                count=options["count"],
                seed=options["seed"],
                duplicate_rate=options["duplicate_rate"],
                out_of_order_rate=options["out_of_order_rate"],
                early_receipt_rate=options["early_receipt_rate"],
                bad_signature_rate=options["bad_signature_rate"],
                time_scale=options["time_scale"],
                allow_remote=options["allow_remote"],
            )
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        limit = f"{config.count} messages" if config.count else "no count limit"
        self.stdout.write(
            f"Simulating {', '.join(t.slug for t in config.targets)} against {config.base_url}: "
            f"{config.rate:g} messages/s for up to {config.duration:g} s, {limit}. Ctrl-C stops."
        )
        simulator = Simulator(config, emit=self.stdout.write, verbose=options["verbosity"] >= 1)
        try:
            report = simulator.run()
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        for line in report.summary_lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"{report.unexpected_count} unexpected responses")

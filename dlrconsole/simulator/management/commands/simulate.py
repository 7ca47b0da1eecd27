from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dlrconsole.simulator import Simulator, SimulatorConfig, SimulatorError, load_targets
from dlrconsole.simulator.players.registry import player_kinds
from dlrconsole.simulator.traffic import parse_mixes


def fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


class Command(BaseCommand):
    help = (
        "Play SMS providers against a running DLR Console: register messages through the API and post "
        "realistic, correctly signed delivery receipts to the connections' webhooks. Plays: "
        + ", ".join(player_kinds())
        + ". Telnyx needs --telnyx-private-key (the connection holds only the public key). AWS SNS cannot be "
        "played from here nor in the demo: SNS signs with a certificate that only an SNS host serves (the tests "
        "play it in-process against a loopback certificate host)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="Base URL of the running console, e.g. http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="API key used to register messages (create_api_key).")
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
        rates = (
            ("--duplicate-rate", 0.05, "Share of messages with a post the provider retries (same delivery id)."),
            ("--out-of-order-rate", 0.1, "Share of messages whose last two receipts swap."),
            ("--early-receipt-rate", 0.05, "Share of messages whose first receipt precedes their registration."),
            ("--late-rate", 0.03, "Share of messages with an in-flight receipt arriving well after the final."),
            ("--missing-rate", 0.02, "Share of messages whose final receipt never comes."),
            ("--bad-signature-rate", 0.0, "Share of messages that also get a forged post (wrong key), due a 401."),
        )
        for flag, default, text in rates:
            parser.add_argument(flag, type=fraction, default=default, help=f"{text} (default {default:g})")
        parser.add_argument(
            "--country-mix",
            type=Path,
            default=None,
            help='JSON file of country → fate weights, e.g. {"NG": {"delivered": 70, "absent_subscriber": 30}}; '
            "replaces the default mix of the countries it names.",
        )
        parser.add_argument(
            "--lying",
            action="append",
            default=[],
            help="Play this connection (slug; repeat or comma-separate) as a lying route: every message "
            '"delivered" at once, dated before its submission. The route trust score should catch it.',
        )
        parser.add_argument(
            "--telnyx-private-key",
            default="",
            help="Base64 32-byte Ed25519 seed whose public key is a secret of the Telnyx connection(s).",
        )
        parser.add_argument(
            "--time-scale", type=float, default=1.0, help="Multiplies the delays between a message's events."
        )
        parser.add_argument(
            "--allow-remote", action="store_true", help="Allow a --url that is not a loopback host (127.0.0.1, ::1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [slug.strip() for value in options["connection"] for slug in value.split(",") if slug.strip()]
        private_keys = {"telnyx": options["telnyx_private_key"]} if options["telnyx_private_key"] else {}
        try:
            config = SimulatorConfig(
                base_url=options["url"],
                token=options["token"],
                targets=load_targets(slugs, private_keys=private_keys),
                rate=options["rate"],
                duration=options["duration"],
                count=options["count"],
                seed=options["seed"],
                duplicate_rate=options["duplicate_rate"],
                out_of_order_rate=options["out_of_order_rate"],
                early_receipt_rate=options["early_receipt_rate"],
                late_rate=options["late_rate"],
                missing_rate=options["missing_rate"],
                bad_signature_rate=options["bad_signature_rate"],
                country_mixes=read_mixes(options["country_mix"]),
                lying=frozenset(
                    slug.strip() for value in options["lying"] for slug in value.split(",") if slug.strip()
                ),
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


def read_mixes(path: Path | None) -> dict[str, dict[str, float]]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SimulatorError(f"cannot read --country-mix {path}: {exc}") from None
    return parse_mixes(data)

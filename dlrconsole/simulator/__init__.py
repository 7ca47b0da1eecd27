"""A provider simulator: plays SMS providers against a running DLR Console over real HTTP.

- base.py: the player interface and the types the core and the players share;
- players/: one module per provider, registered by provider kind (players/__init__.py);
- traffic.py: recipients, per-country fate mixes, and the plan of each message's requests;
- runner.py: the configuration, the loopback guard and the timed run with its report;
- gateway.py: a simulated send API the console's retries resend through, whose resends the run plays;
- mailbox.py: a simulated mail server the e-mail fallback channel delivers into (imported by the
  demo only, not from here: aiosmtpd is a development dependency, and this app is installed).

Traffic is realistic rather than tidy: most messages end `delivered`, others fail as their
country makes likely with the provider's own error codes, some receipts are posted twice,
out of order, late, before the message is registered, or never; forged posts (wrong key) can
be mixed in and must be refused with 401.
"""

from dlrconsole.simulator.base import SimulatorError, Target
from dlrconsole.simulator.gateway import SendGateway
from dlrconsole.simulator.runner import (
    SimulationReport,
    Simulator,
    SimulatorConfig,
    check_base_url,
    is_loopback_host,
    load_targets,
)

__all__ = [
    "SendGateway",
    "SimulationReport",
    "Simulator",
    "SimulatorConfig",
    "SimulatorError",
    "Target",
    "check_base_url",
    "is_loopback_host",
    "load_targets",
]

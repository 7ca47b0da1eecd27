"""The alert-channel contract, as healthchecks' transports: a channel raises
`ChannelError(permanent=...)`; only a permanent error stops retries. Reasons never carry
credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from alerts.models import Alert


class ChannelError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Channel:
    kind: ClassVar[str]
    label: ClassVar[str]
    # Keys of the configuration that hold credentials: write-only in forms, fingerprinted in
    # the audit log, never shown.
    secret_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.validate_config(config)
        self.config = dict(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Raise ValueError, saying what is wrong, when `config` cannot be used."""

    def send(self, alert: Alert) -> None:
        """Tell the channel's audience about `alert`; raise ChannelError when it could not."""
        raise NotImplementedError

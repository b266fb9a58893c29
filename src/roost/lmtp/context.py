"""What one LMTP connection needs from the server around it, passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roost.config import DeliverySettings, LmtpSettings
from roost.delivery import SieveContext
from roost.smtp import Dialect, ServerConfig
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class LmtpContext:
    store: Store
    lmtp: LmtpSettings
    delivery: DeliverySettings
    server_name: str
    spool_dir: Path
    # [quota] over_quota_tempfail: 452 4.2.2 instead of 552 5.2.2 when over quota.
    over_quota_tempfail: bool = False
    sieve: SieveContext | None = None  # None: no filtering (no [sieve] in use)

    def core_config(self) -> ServerConfig:
        return ServerConfig(
            dialect=Dialect.LMTP,
            max_message_size=self.lmtp.max_message_size,
            max_recipients=self.lmtp.max_recipients,
        )

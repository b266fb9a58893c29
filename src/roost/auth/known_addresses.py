"""The sign-in throttle's trusted addresses, kept in the store (users.db), so that a
restart does not forget them: after one, an account under a guessing attack from many
addresses still lets its owner's usual devices in (``throttle.KnownAddresses``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from roost.store.credentials import SignInStore


class StoreKnownAddresses:
    """``throttle.KnownAddresses`` over the store's credentials, in epoch seconds."""

    def __init__(self, store: SignInStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def remember(self, account_key: str, ip_key: str) -> None:
        await self._store.remember_sign_in_address(account_key, ip_key, int(self._clock()))

    async def known_within(self, account_key: str, ip_key: str, period: float) -> bool:
        last = await self._store.last_sign_in_from(account_key, ip_key)
        return last is not None and self._clock() - last < period

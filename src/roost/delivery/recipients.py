"""Which account and folder an envelope recipient means (``[delivery]``).

``alice+lists@example.org`` is the account ``alice@example.org`` (``alice`` with
``strip_domain``) and the detail ``lists``. The local part is matched without regard to
case (RFC 5321 §2.4 lets the receiving host decide; every MTA user expects it); an
account whose name has capitals is still found under its exact spelling. A domain not in
``domains`` (when that list is not empty) is not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.config import DeliverySettings
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class Target:
    account: str
    detail: str | None  # the subaddress, a folder to try before INBOX


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    if not local:  # no "@": a bare name, as ``roost deliver -d alice`` gives
        return domain, ""
    return local, domain


async def resolve(store: Store, settings: DeliverySettings, address: str) -> Target | None:
    """The account ``address`` delivers to, or None when it is not one of ours."""
    local, domain = split_address(address)
    domain = domain.lower().rstrip(".")
    if domain and settings.domains and domain not in settings.domains:
        return None
    detail: str | None = None
    separator = settings.subaddress_separator
    if separator and separator in local:
        local, _, detail = local.partition(separator)
        detail = detail or None
    if not local:
        return None
    names = [local] if settings.strip_domain or not domain else [f"{local}@{domain}"]
    for name in names:
        for candidate in dict.fromkeys((name.lower(), name)):
            if await store.get_password_hash(candidate) is not None:
                return Target(candidate, detail)
    return None

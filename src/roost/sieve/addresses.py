"""Address parts (RFC 5228 §2.7.4) with the subaddress split of RFC 5233."""

from __future__ import annotations

from collections.abc import Sequence

SUBADDRESS_SEPARATOR = "+"


def address_part(address: str, part: str) -> str | None:
    """One part of an address (RFC 5228 §2.7.4, RFC 5233 §4); None when it has none."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    match part:
        case "localpart":
            return local
        case "domain":
            return domain
        case "user":
            return local.partition(SUBADDRESS_SEPARATOR)[0]
        case "detail":
            _user, separator, detail = local.partition(SUBADDRESS_SEPARATOR)
            # RFC 5233 §4: without a separator there is no detail, and nothing matches.
            return detail if separator else None
    return address


def parts(addresses: Sequence[str], part: str) -> list[str]:
    """The given part of each address that has it."""
    selected = (address_part(address, part) for address in addresses)
    return [value for value in selected if value is not None]

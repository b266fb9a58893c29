"""What a signed-in user may send as: the addresses of the account (RFC 6409 §4.1,
§8 lets a submission server enforce the sender).

An account "alice@example.org" may send as that address; an account "alice" as
alice@<each [delivery] domain>; and either as its aliases (``roost user alias``).
The envelope sender and every address in From: must be one of them, compared
case-insensitively; a sender with a subaddress (alice+lists@) is alice@'s.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import SMTPUTF8
from email.utils import getaddresses

from roost.config import DeliverySettings
from roost.smtp import Reply
from roost.store.base import Store

NOT_YOURS = "5.7.1"  # RFC 3463: delivery not authorized, message refused
MAX_HEADER = 256 * 1024  # the From: check reads at most this much of the header


def not_yours(what: str, address: str) -> Reply:
    return Reply(553, NOT_YOURS, f"{what} <{address}> is not an address of your account")


async def account_addresses(
    store: Store, account: str, delivery: DeliverySettings
) -> frozenset[str]:
    """Every address ``account`` may send as, case-folded."""
    addresses = {alias.casefold() for alias in await store.list_aliases(account)}
    if "@" in account:
        addresses.add(account.casefold())
    else:
        addresses.update(f"{account}@{domain}".casefold() for domain in delivery.domains)
    return frozenset(addresses)


def owns(address: str, allowed: frozenset[str], separator: str = "+") -> bool:
    folded = address.casefold()
    if folded in allowed:
        return True
    local, at, domain = folded.rpartition("@")
    if at and separator and separator in local:
        return f"{local.split(separator, 1)[0]}@{domain}" in allowed
    return False


def header_block(head: bytes) -> bytes:
    """The header of a message whose first bytes are ``head`` (CRLF line ends)."""
    end = head.find(b"\r\n\r\n")
    return head if end < 0 else head[: end + 2]


def from_addresses(header: bytes) -> list[str] | None:
    """The addresses of every From: field; None when there is no From: at all."""
    message = BytesHeaderParser(policy=SMTPUTF8).parsebytes(header)
    fields = message.get_all("From")
    if not fields:
        return None
    return [address for _, address in getaddresses([str(field) for field in fields])]


def check_from(header: bytes, allowed: frozenset[str], separator: str = "+") -> Reply | None:
    """The refusal for a From: field naming someone else, or None."""
    addresses = from_addresses(header)
    if not addresses:
        return Reply(553, NOT_YOURS, "The message has no From: address")
    for address in addresses:
        if not owns(address, allowed, separator):
            return not_yours("From:", address or "")
    return None

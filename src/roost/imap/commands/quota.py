"""GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208 §4.1).

Each account is one quota root, named "" (as in RFC 9208's examples), governing every
mailbox of the account; its resources are STORAGE (the sum of RFC822.SIZE, in units
of 1024 octets, rounded up) and MESSAGE (the count), as the store counts them exactly.
Only limited resources are reported, and the root exists only while one is limited: a
QUOTA response lists at least one resource (RFC 9208 §9, ``quota-list``). Limits are
the administrator's (``roost user quota set``): SETQUOTA is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.handler_types import Done, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import QuotaResource, QuotaResponse, QuotaRootResponse, Response
from roost.store.base import QuotaUsage

ROOT = ""  # the account's quota root


def storage_units(octets: int) -> int:
    """Octets as RFC 9208 STORAGE units of 1024 octets, rounded up: a mailbox holding
    anything never shows 0."""
    return -(-octets // 1024)


def quota_response(usage: QuotaUsage) -> QuotaResponse | None:
    """The root's QUOTA response, or None when nothing is limited (no root)."""
    resources = []
    if usage.storage_limit is not None:
        storage = QuotaResource(
            "STORAGE", storage_units(usage.storage), usage.storage_limit // 1024
        )
        resources.append(storage)
    if usage.message_limit is not None:
        resources.append(QuotaResource("MESSAGE", usage.messages, usage.message_limit))
    return QuotaResponse(ROOT, tuple(resources)) if resources else None


async def getquota(session: Session, cmd: c.GetQuota) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    response = quota_response(await account.quota()) if cmd.root == ROOT else None
    if response is None:
        raise no("No such quota root", "NONEXISTENT")
    yield response
    yield Done("GETQUOTA completed")


async def getquotaroot(session: Session, cmd: c.GetQuotaRoot) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    name = session.mailbox_name(cmd.mailbox)
    await account.get_mailbox(name)  # NoSuchMailbox: NO [NONEXISTENT]
    response = quota_response(await account.quota())
    yield QuotaRootResponse(name, () if response is None else (ROOT,))
    if response is not None:
        yield response
    yield Done("GETQUOTAROOT completed")


async def setquota(session: Session, cmd: c.SetQuota) -> AsyncIterator[Response | Done]:
    session.require_account()
    raise no("Quotas are set by the administrator", "NOPERM")
    yield  # an async generator, like every handler

"""Store one received message for one recipient, and say how it went.

The outcome is one of five (as Dovecot's mail-deliver): ``ok``; ``temporary`` (try
again later: disk full, store trouble, any unexpected error — never a bounce for
something transient); ``quota``; ``permanent``; ``no_such_user``. LMTP maps them to
replies, ``roost deliver`` to sysexits codes. A store that stays busy is not waited on
forever here: SQLite's busy timeout (store/sqlite/schema.py) raises, and that becomes
``temporary`` like any other unexpected error — well inside an MTA's own time-outs
(Postfix waits 10 minutes for the reply after the data), so its retry never races a
delivery still in progress.

The message given to ``deliver`` already carries its trace fields (``trace_fields``,
written first into the spool, then the content: prepending by concatenation, as
Dovecot's LMTP does). With one recipient those include ``Delivered-To``; with several
they do not, so every recipient's copy is the same bytes and an account that receives
it twice (``alice`` and ``alice+lists``) keeps them once (content-addressed store).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from roost.smtp import trace
from roost.smtp.paths import Mailbox
from roost.store.base import (
    CannotDoThat,
    MessageSource,
    NewMessage,
    NoSuchAccount,
    NoSuchMailbox,
    QuotaExceeded,
    StorageFull,
    Store,
)

log = logging.getLogger("roost.delivery")

INBOX = "INBOX"


class Outcome(Enum):
    OK = "ok"
    TEMPORARY = "temporary"
    QUOTA = "quota"
    PERMANENT = "permanent"
    NO_SUCH_USER = "no_such_user"


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    outcome: Outcome
    text: str
    folder: str | None = None  # where it went, when it went somewhere

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the trace fields and the log line need to know of a transaction."""

    sender: Mailbox | None  # MAIL FROM; None is the null path <>
    recipients: tuple[Mailbox, ...]  # every accepted recipient, in RCPT order
    client_domain: str  # from LHLO; "localhost" for ``roost deliver``
    client_address: str | None
    server_name: str
    protocol: str  # RFC 3848 "with" value, e.g. LMTP, UTF8LMTP
    queue_id: str | None = None
    received: datetime | None = None  # None: now


def trace_fields(envelope: Envelope) -> bytes:
    """Return-Path, Delivered-To (one recipient only) and Received (RFC 5321 §4.4),
    in the order they end up on top of the message: newest first."""
    single = envelope.recipients[0] if len(envelope.recipients) == 1 else None
    when = envelope.received or datetime.now(UTC)
    out = trace.return_path(envelope.sender)
    if single is not None:
        out += trace.delivered_to(single)
    out += trace.received(
        client_domain=envelope.client_domain,
        client_address=envelope.client_address,
        server_name=envelope.server_name,
        protocol=envelope.protocol,
        queue_id=envelope.queue_id,
        recipient=single,
        when=when,
    )
    return out


async def deliver(
    store: Store,
    account_name: str,
    source: MessageSource,
    size: int,
    *,
    folder: str | None = None,
    sender: str = "",
    recipient: str = "",
) -> DeliveryStatus:
    """Store ``source`` in ``folder`` of the account (INBOX when ``folder`` is None or
    does not exist). Returns only after the message is durable and its change event is
    published (``Account.append``). Never raises for a store problem: it becomes an
    outcome, and a log line says which."""
    started = time.monotonic()
    status = await _deliver(store, account_name, source, folder)
    log.info(
        "delivery from=<%s> to=<%s> account=%s folder=%s size=%d ms=%d result=%s %s",
        sender,
        recipient,
        account_name,
        status.folder or "-",
        size,
        (time.monotonic() - started) * 1000,
        status.outcome.value,
        status.text,
        extra={
            "event": "delivery",
            "sender": sender,
            "recipient": recipient,
            "account": account_name,
            "folder": status.folder,
            "size": size,
            "result": status.outcome.value,
        },
    )
    return status


async def _deliver(
    store: Store, account_name: str, source: MessageSource, folder: str | None
) -> DeliveryStatus:
    try:
        account = await store.open_account(account_name)
    except NoSuchAccount:
        return DeliveryStatus(Outcome.NO_SUCH_USER, "No such user")
    except Exception as error:
        log.exception("delivery to %s: cannot open the account", account_name)
        return DeliveryStatus(Outcome.TEMPORARY, f"Cannot open the mailbox: {type(error).__name__}")
    try:
        folders = [folder, INBOX] if folder and folder.upper() != INBOX else [INBOX]
        for name in folders:
            try:
                result = await account.append(name, [NewMessage(source)])
            except (NoSuchMailbox, CannotDoThat):
                if name == INBOX:
                    raise
                continue  # a detail or -m folder that is not there: INBOX instead
            return DeliveryStatus(Outcome.OK, f"Saved as UID {result.uids[0]}", name)
        raise AssertionError("unreachable: INBOX always answers")
    except QuotaExceeded as error:
        return DeliveryStatus(Outcome.QUOTA, str(error) or "Mailbox is full")
    except StorageFull:
        return DeliveryStatus(Outcome.TEMPORARY, "Disk full, try again later")
    except Exception as error:
        log.exception("delivery to %s failed", account_name)
        return DeliveryStatus(Outcome.TEMPORARY, f"Temporary failure: {type(error).__name__}")
    finally:
        await account.close()

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

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from roost.delivery import carry_out, filtering
from roost.delivery.filtering import SieveContext
from roost.observability import metrics
from roost.sieve import Keep, Reject
from roost.smtp import trace
from roost.smtp.paths import Mailbox
from roost.store.base import (
    Account,
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
    REJECTED = "rejected"  # a Sieve reject/ereject: refused for this recipient


for _outcome in Outcome:  # every result's series exists from the start, at zero
    metrics.DELIVERIES.labels(_outcome.value)


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
    sieve: SieveContext | None = None,
    queue_id: str = "",
    account: Account | None = None,
    filtering: bool | None = None,
) -> DeliveryStatus:
    """Store ``source`` in ``folder`` of the account (INBOX when ``folder`` is None or
    does not exist). Returns only after the message is durable and its change event is
    published (``Account.append``). Never raises for a store problem: it becomes an
    outcome, and a log line says which. With ``sieve``, the account's scripts decide
    where it goes (filtering.py, carry_out.py); ``folder`` is then where a keep goes.
    ``account``: the account already open (LMTP opens it at RCPT and keeps it for the
    transaction); the caller closes it. Else it is opened and closed here.
    ``filtering``: whether the account has an active Sieve script, when the caller
    has just read it (``Account.delivery_state``); None: asked here."""
    started = time.monotonic()
    if account is not None:
        status = await _deliver_to(
            account, source, size, folder, sieve, sender, recipient, filtering
        )
    else:
        status = await _open_and_deliver(
            store, account_name, source, size, folder, sieve, sender, recipient
        )
    metrics.DELIVERIES.labels(status.outcome.value).inc()
    elapsed_ms = round((time.monotonic() - started) * 1000)
    log.info(
        "delivery queue=%s from=<%s> to=<%s> account=%s folder=%s size=%d ms=%d result=%s %s",
        queue_id or "-",
        sender,
        recipient,
        account_name,
        status.folder or "-",
        size,
        elapsed_ms,
        status.outcome.value,
        status.text,
        extra={
            "event": "delivery",
            "queue_id": queue_id or None,
            "sender": sender,
            "recipient": recipient,
            "account": account_name,
            "folder": status.folder,
            "size": size,
            "ms": elapsed_ms,
            "result": status.outcome.value,
        },
    )
    return status


async def _open_and_deliver(
    store: Store,
    account_name: str,
    source: MessageSource,
    size: int,
    folder: str | None,
    sieve: SieveContext | None,
    sender: str,
    recipient: str,
) -> DeliveryStatus:
    try:
        account = await store.open_account(account_name)
    except NoSuchAccount:
        return DeliveryStatus(Outcome.NO_SUCH_USER, "No such user")
    except Exception as error:
        log.exception("delivery to %s: cannot open the account", account_name)
        return DeliveryStatus(Outcome.TEMPORARY, f"Cannot open the mailbox: {type(error).__name__}")
    try:
        return await _deliver_to(account, source, size, folder, sieve, sender, recipient)
    finally:
        await account.close()


async def _deliver_to(
    account: Account,
    source: MessageSource,
    size: int,
    folder: str | None,
    sieve: SieveContext | None,
    sender: str,
    recipient: str,
    filtering: bool | None = None,
) -> DeliveryStatus:
    """Deliver to an open account: filtered when it (or the site) has scripts."""
    data: bytes | None = None
    if sieve is not None:
        try:
            if sieve.settings.before or sieve.settings.after:
                filtering = True
            elif filtering is None:
                filtering = await account.active_script() is not None
            if filtering:
                data = await _read_source(source, sieve.settings.max_message_size)
        except Exception:
            log.exception("sieve: cannot prepare filtering for %s", account.name)
    if data is None:  # no scripts, too large to filter, or unreadable: unfiltered
        return await _deliver(account, source, folder)
    assert sieve is not None
    return await _deliver_filtered(account, source, data, folder, sieve, sender, recipient)


async def _deliver(account: Account, source: MessageSource, folder: str | None) -> DeliveryStatus:
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
        log.exception("delivery to %s failed", account.name)
        return DeliveryStatus(Outcome.TEMPORARY, f"Temporary failure: {type(error).__name__}")


async def _read_source(source: MessageSource, limit: int) -> bytes | None:
    if source.data is not None:
        return source.data if len(source.data) <= limit else None
    assert source.path is not None
    path = source.path
    if path.stat().st_size > limit:
        return None
    return await asyncio.to_thread(path.read_bytes)


async def _deliver_filtered(
    account: Account,
    source: MessageSource,
    data: bytes,
    folder: str | None,
    context: SieveContext,
    sender: str,
    recipient: str,
) -> DeliveryStatus:
    """Deliver as the account's Sieve scripts decide (ARCHITECTURE decision 9)."""
    try:
        try:
            decision = await filtering.decide(
                context, account, data, sender=sender, recipient=recipient
            )
        except Exception:
            # Not the script's fault (the store, a bug): unfiltered beats a lost message.
            log.exception("sieve: filtering for %s failed, delivering unfiltered", account.name)
            decision = filtering.Decision([Keep((), True)], data, [])
        for action in decision.actions:
            if isinstance(action, Reject):
                return DeliveryStatus(Outcome.REJECTED, action.reason.strip() or "Rejected")
        edited = MessageSource(data=decision.data) if decision.data != data else source
        keep_folder = folder if folder and folder.upper() != INBOX else INBOX

        async def store_into(mailbox: str, flags: frozenset[str]) -> str:
            result = await account.append(mailbox, [NewMessage(edited, flags=flags)])
            return f"Saved as UID {result.uids[0]}"

        try:
            filed = await carry_out.file_messages(
                account, decision.actions, keep_folder, store_into
            )
        except (NoSuchMailbox, CannotDoThat):
            filed = carry_out.Filed([INBOX], [await store_into(INBOX, frozenset())])
        await carry_out.send_and_record(
            context,
            account,
            decision.actions,
            decision.data,
            sender=sender,
            recipient=recipient,
            keep_copy=lambda: _keep_copy(filed, store_into),
        )
        if not filed.folders:
            return DeliveryStatus(Outcome.OK, "Filtered by Sieve (not stored)")
        return DeliveryStatus(Outcome.OK, filed.texts[0], filed.folders[0])
    except QuotaExceeded as error:
        return DeliveryStatus(Outcome.QUOTA, str(error) or "Mailbox is full")
    except StorageFull:
        return DeliveryStatus(Outcome.TEMPORARY, "Disk full, try again later")
    except Exception as error:
        log.exception("delivery to %s failed", account.name)
        return DeliveryStatus(Outcome.TEMPORARY, f"Temporary failure: {type(error).__name__}")


async def _keep_copy(filed: carry_out.Filed, store_into: carry_out.StoreFn) -> None:
    """A redirect that failed: keep the message in INBOX, unless it is there already."""
    if INBOX not in filed.folders:
        filed.texts.append(await store_into(INBOX, frozenset()))
        filed.folders.append(INBOX)

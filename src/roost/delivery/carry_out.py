"""Carry out what the Sieve scripts decided, after every script ended (sieve-result.c).

Order, so that a failure never loses mail and a retry repeats nothing that mattered:

1. A reject refuses the message for this recipient (LMTP 550 5.7.1, ``roost deliver``
   exit 77): RFC 5429 §2.1.1 allows refusing at the protocol level, and the MTA's
   bounce then tells the sender. Roost never writes a rejection message itself.
2. Every keep and fileinto is stored; the first store failure is returned when nothing
   was stored (the MTA tries again later), logged otherwise.
3. Redirects and the vacation reply are sent through ``[sieve] relay``. A redirect that
   cannot be sent keeps a copy in INBOX; a vacation that cannot be sent is logged.
4. Only then are duplicate ids and vacation responses remembered.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.header import Header

from roost import sieve
from roost.delivery.filtering import DUPLICATE, VACATION, SieveContext, vacation_key
from roost.delivery.outbound import SendError, send_message
from roost.store.errors import MailboxExists, NoSuchMailbox, StoreError
from roost.store.interface import Account

log = logging.getLogger("roost.sieve")

INBOX = "INBOX"

# Stores ``data`` in a mailbox with flags; returns the status text, raises on failure.
StoreFn = Callable[[str, frozenset[str]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Filed:
    folders: list[str]
    texts: list[str]


async def file_messages(
    account: Account, actions: list[sieve.Action], keep_folder: str, store: StoreFn
) -> Filed:
    """Store the message once per keep/fileinto; raises the first failure if none stored."""
    folders: list[str] = []
    texts: list[str] = []
    first_error: Exception | None = None
    targets: list[tuple[str, frozenset[str]]] = []
    for action in actions:
        if isinstance(action, sieve.Keep):
            targets.append((keep_folder, frozenset(action.flags)))
        elif isinstance(action, sieve.FileInto):
            mailbox = INBOX if action.mailbox.upper() == INBOX else action.mailbox
            if action.create:
                with contextlib.suppress(MailboxExists):
                    await account.create_mailbox(mailbox)
            targets.append((mailbox, frozenset(action.flags)))
    seen: set[str] = set()
    for mailbox, flags in targets:
        if mailbox in seen:
            continue
        seen.add(mailbox)
        try:
            texts.append(await store(mailbox, flags))
            folders.append(mailbox)
        except NoSuchMailbox:
            # RFC 5228 §4.1: a fileinto that cannot be done keeps the message instead.
            log.warning("sieve: no folder %r in %s, kept in INBOX", mailbox, account.name)
            if INBOX not in seen:
                seen.add(INBOX)
                texts.append(await store(INBOX, flags))
                folders.append(INBOX)
        except Exception as error:
            if first_error is None:
                first_error = error
            # Quota, a full disk, a busy store: the caller's outcome says so (452/552/451).
            level = logging.WARNING if isinstance(error, StoreError) else logging.ERROR
            log.log(level, "sieve: storing into %r for %s failed: %s", mailbox, account.name, error)
    if not folders and first_error is not None:
        raise first_error
    return Filed(folders, texts)


async def send_and_record(
    context: SieveContext,
    account: Account,
    actions: list[sieve.Action],
    data: bytes,
    *,
    sender: str,
    recipient: str,
    keep_copy: Callable[[], Awaitable[object]],
) -> None:
    """Redirects and vacation through the relay, then the tracking records."""
    now = time.time()
    for action in actions:
        if isinstance(action, sieve.Redirect):
            ok = await _send(
                context,
                sender,
                action.address,
                f"X-Sieve-Redirected-By: <{recipient or account.name}>\r\n".encode() + data,
                "redirect",
            )
            if not ok and not action.copy:
                await keep_copy()
        elif isinstance(action, sieve.Vacation):
            reply = vacation_message(action)
            if await _send(context, "", action.recipient, reply, "vacation"):
                key = vacation_key(action.sender, action.handle)
                await account.sieve_track(VACATION, key, now + action.period_seconds, now)
    for action in actions:
        if isinstance(action, sieve.TrackDuplicate):
            await account.sieve_track(DUPLICATE, action.duplicate_id, now + action.seconds, now)


async def _send(context: SieveContext, sender: str, to: str, data: bytes, kind: str) -> bool:
    if context.relay is None:
        log.warning("sieve: %s to <%s> not sent: no [sieve] relay configured", kind, to)
        return False
    try:
        await send_message(context.relay, sender, [to], data)
    except SendError as error:
        log.warning("sieve: %s to <%s> failed: %s", kind, to, error)
        return False
    log.info("sieve: %s sent to <%s>", kind, to)
    return True


def vacation_message(action: sieve.Vacation) -> bytes:
    """The reply of RFC 5230 §5: Auto-Submitted (RFC 3834 §5), In-Reply-To, References."""
    fields = [
        ("From", action.from_address),
        ("To", f"<{action.recipient}>"),
        ("Subject", action.subject),
        ("Date", email.utils.formatdate(localtime=True)),
        ("Message-ID", email.utils.make_msgid(domain=_domain(action.from_address))),
        ("Auto-Submitted", "auto-replied"),
    ]
    if action.in_reply_to:
        fields.append(("In-Reply-To", action.in_reply_to))
    if action.references:
        fields.append(("References", action.references))
    fields.append(("MIME-Version", "1.0"))
    head = "".join(f"{name}: {_encode(value)}\r\n" for name, value in fields)
    if action.mime:
        # RFC 5230 §4.3: with :mime the reason is a MIME entity (its own header and body).
        body = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
        return head.encode() + body.encode("utf-8")
    text = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
    head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    return (head + "\r\n" + text).encode("utf-8")


def _domain(address: str) -> str | None:
    parsed = email.utils.parseaddr(address)[1]
    return parsed.rpartition("@")[2] or None


def _encode(value: str) -> str:
    if value.isascii():
        return value.replace("\r", " ").replace("\n", " ")
    return Header(value, "utf-8").encode()

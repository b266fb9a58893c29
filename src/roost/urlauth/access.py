"""URLAUTH tokens (RFC 4467 §2.4, mechanism INTERNAL) and fetching what a URL names.

A token is HMAC-SHA256 of the URL rump under the secret of the URL's account and
mailbox, kept in the store (``Store.urlauth_key``); RESETKEY replaces the secret and
so voids every URL it signed. Checking compares in constant time.

Who may use a URL (RFC 4467 §2.3): ``anonymous`` anyone; ``authuser`` anyone signed
in; ``user+NAME`` the IMAP session of NAME; ``submit+NAME`` the submission server
acting for NAME (BURL), never an IMAP session. Every failure gives the same answer
(None): the caller says NIL (URLFETCH) or refuses (BURL) without telling why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from roost.mime.model import MessageModel
from roost.store.base import Store
from roost.urlauth.url import MECHANISM_INTERNAL, ImapUrl, UrlError, parse_url

log = logging.getLogger("roost.urlauth")

MECHANISMS = (MECHANISM_INTERNAL,)
MAX_FETCH = 64 * 1024 * 1024  # a URL naming more than this is refused


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks: the signed-in IMAP user, or the submission server for a user."""

    account: str | None = None  # an IMAP session's account
    submit_for: str | None = None  # BURL: the account the submission session signed in as


def token(secret: bytes, rump: str) -> str:
    return hmac.new(secret, rump.encode("utf-8"), hashlib.sha256).hexdigest()


def same_account(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


async def sign(store: Store, account: str, url: ImapUrl) -> str:
    """The full URL (RFC 4467 §6.1 GENURLAUTH) for ``url``'s rump."""
    secret = await store.urlauth_key(account, url.mailbox, create=True)
    assert secret is not None
    return url.with_token(MECHANISM_INTERNAL, token(secret, url.rump)).full


def allowed(access: str, requester: Requester) -> bool:
    kind, _, name = access.partition("+")
    match kind.lower():
        case "anonymous":
            return True
        case "authuser":
            return requester.account is not None or requester.submit_for is not None
        case "user":
            return requester.account is not None and same_account(requester.account, name)
        case "submit":
            return requester.submit_for is not None and same_account(requester.submit_for, name)
    return False


async def fetch(
    store: Store, text: str, requester: Requester, *, now: datetime | None = None
) -> bytes | None:
    """The bytes ``text`` names, if it is a valid URLAUTH URL this requester may use."""
    try:
        url = parse_url(text)
    except UrlError:
        return None
    if url.mechanism != MECHANISM_INTERNAL or url.token is None:
        return None
    if not allowed(url.access, requester):
        return None
    if url.expire is not None and url.expire <= (now or datetime.now(UTC)):
        return None
    try:
        secret = await store.urlauth_key(url.user, url.mailbox, create=False)
        if secret is None or not hmac.compare_digest(token(secret, url.rump), url.token):
            return None
        return await _read(store, url)
    except Exception as error:  # a store problem is a failed fetch, and logged
        log.info("urlauth fetch of %s failed: %r", url.rump, error)
        return None


async def _read(store: Store, url: ImapUrl) -> bytes | None:
    account = await store.open_account(url.user)
    try:
        mailbox = await account.get_mailbox(url.mailbox)
        if url.uidvalidity is not None and url.uidvalidity != mailbox.uidvalidity:
            return None
        metas = await account.fetch_meta(mailbox.id, [url.uid], with_model=url.section is not None)
        if not metas:
            return None
        meta = metas[0]
        start, end = 0, meta.size
        if url.section is not None and not url.part:
            start, end = (0, meta.header_size) if url.text == "HEADER" else (meta.header_size, end)
        elif url.section is not None:
            if meta.model is None:
                return None
            span = MessageModel.from_blob(meta.model).section(url.part, url.text)
            if span is None:
                return None
            start, end = span
        if url.partial is not None:
            offset, length = url.partial
            start = min(start + offset, end)
            if length is not None:
                end = min(end, start + length)
        if end - start > MAX_FETCH:
            return None
        return await account.read_range(meta, start, end - start)
    finally:
        await account.close()

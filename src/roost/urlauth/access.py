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

from roost.mime.bodystructure import bodystructure
from roost.mime.decode import decode_transfer
from roost.mime.model import MessageModel
from roost.mime.parse import KIND_MULTIPART, KIND_RFC822, Node, parse_message
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


async def _valid(
    store: Store, text: str, requester: Requester, now: datetime | None
) -> ImapUrl | None:
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
    secret = await store.urlauth_key(url.user, url.mailbox, create=False)
    if secret is None or not hmac.compare_digest(token(secret, url.rump), url.token):
        return None
    return url


async def fetch(
    store: Store, text: str, requester: Requester, *, now: datetime | None = None
) -> bytes | None:
    """The bytes ``text`` names, if it is a valid URLAUTH URL this requester may use."""
    try:
        url = await _valid(store, text, requester, now)
        return None if url is None else await _read(store, url)
    except Exception as error:  # a store problem is a failed fetch, and logged
        log.info("urlauth fetch of %s failed: %r", text, error)
        return None


@dataclass(frozen=True, slots=True)
class Extended:
    """RFC 5524 §3.2: what an extended URLFETCH returns for one URL."""

    data: bytes | None  # BODY or BINARY content; None when neither was asked for
    structure: bytes | None  # the part's BODYSTRUCTURE, when asked for


async def fetch_extended(
    store: Store,
    text: str,
    requester: Requester,
    *,
    binary: bool,
    structure: bool,
    data: bool,
    now: datetime | None = None,
) -> Extended | None:
    """RFC 5524: the part with its transfer encoding undone (``binary``) or as stored,
    and its BODYPARTSTRUCTURE; None where the URL is not valid for this requester, or
    the part's encoding cannot be undone."""
    try:
        url = await _valid(store, text, requester, now)
        if url is None:
            return None
        whole = await _read(store, _whole(url))
        if whole is None:
            return None
        node = _node(parse_message(whole), url.part)
        if node is None:
            return None
        part_structure = bodystructure(whole, node) if structure else None
        content = None
        if binary:
            start, end = (node.body_start, node.end) if url.part else (0, len(whole))
            content = whole[start:end]
            encoding = _encoding(node) if url.part else None
            if encoding is not None:
                content = decode_transfer(content, encoding)
                if content is None:
                    return None
            content = _cut(content, url.partial)
        elif data:
            content = await _read(store, url)
        return Extended(content, part_structure)
    except Exception as error:
        log.info("urlauth fetch of %s failed: %r", text, error)
        return None


def _whole(url: ImapUrl) -> ImapUrl:
    return ImapUrl(
        url.user, url.host, url.mailbox, url.uidvalidity, url.uid, None, None, None,
        url.access, url.rump,
    )  # fmt: skip


def _node(root: Node, path: tuple[int, ...]) -> Node | None:
    """The part ``path`` names (as ``roost.mime.sections.resolve`` on the stored model)."""
    part = root
    for index, number in enumerate(path):
        more = index + 1 < len(path)
        if part.kind == KIND_MULTIPART:
            if not 1 <= number <= len(part.children):
                return None
            part = part.children[number - 1]
        elif number != 1 or (more and part.kind != KIND_RFC822):
            return None
        if part.kind == KIND_RFC822 and more:
            if not part.children:
                return None
            part = part.children[0]
    return part


def _encoding(node: Node) -> str | None:
    """A leaf's Content-Transfer-Encoding, lower-case; None for containers."""
    if node.kind in (KIND_MULTIPART, KIND_RFC822):
        return None
    for name, value in reversed([(f.name.lower(), f.value) for f in node.fields]):
        if name == b"content-transfer-encoding":
            return bytes(value).decode("latin-1").strip().lower() or "7bit"
    return "7bit"


def _cut(data: bytes, partial: tuple[int, int | None] | None) -> bytes:
    if partial is None:
        return data
    offset, length = partial
    return data[offset:] if length is None else data[offset : offset + length]


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

"""GENURLAUTH, RESETKEY, URLFETCH (RFC 4467 §7): URLs that let another party — the
submission server for BURL, above all — read one message or part without the
owner's password. Parsing, signing and checking are ``roost.urlauth``'s.

GENURLAUTH signs only URLs of the signed-in user (RFC 4467 §7.1: "the user" of the
URL must be the session's) whose mailbox exists; URLFETCH answers NIL for any URL it
will not serve, without saying why (§7.3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.handler_types import Done, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    GenUrlAuthResponse,
    Response,
    UrlFetchExtended,
    UrlFetchResponse,
)
from roost.urlauth import access
from roost.urlauth.url import UrlError, parse_url


async def genurlauth(session: Session, cmd: c.GenUrlAuth) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    store = session.context.store
    urls = []
    for text, mechanism in cmd.items:
        if mechanism not in access.MECHANISMS:
            raise bad(f"Unknown URLAUTH mechanism {mechanism}")
        try:
            url = parse_url(text)
        except UrlError as error:
            raise bad(f"Invalid URL: {error}") from None
        if url.mechanism is not None:
            raise bad("Give the URL without a mechanism and token (a url-rump)")
        if not access.same_account(url.user, account.name):
            raise no("Only URLs of your own messages can be authorized", "NOPERM")
        await account.get_mailbox(url.mailbox)  # NoSuchMailbox: NO [NONEXISTENT]
        urls.append(await access.sign(store, account.name, url))
    yield GenUrlAuthResponse(tuple(urls))
    yield Done("GENURLAUTH completed")


async def resetkey(session: Session, cmd: c.ResetKey) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    unknown = [m for m in cmd.mechanisms if m not in access.MECHANISMS]
    if unknown:
        raise bad(f"Unknown URLAUTH mechanism {unknown[0]}")
    mailbox = None
    if cmd.mailbox is not None:
        mailbox = session.mailbox_name(cmd.mailbox)
        await account.get_mailbox(mailbox)
    await session.context.store.reset_urlauth_keys(account.name, mailbox)
    yield Done("RESETKEY completed")


async def urlfetch(session: Session, cmd: c.UrlFetch) -> AsyncIterator[Response | Done]:
    """RFC 4467 §7.3, and RFC 5524's extended form: ``(url BINARY BODYPARTSTRUCTURE)``
    (a list without BODY or BINARY returns no data unless it is empty: then BODY)."""
    account = session.require_account()
    requester = access.Requester(account=account.name)
    store = session.context.store
    items: list[tuple[str, bytes | UrlFetchExtended | None]] = []
    for url, params in cmd.urls:
        if params is None:
            items.append((url, await access.fetch(store, url, requester)))
            continue
        kind = (
            "BINARY" if "BINARY" in params else "BODY" if "BODY" in params or not params else None
        )
        extended = await access.fetch_extended(
            store,
            url,
            requester,
            binary=kind == "BINARY",
            structure="BODYPARTSTRUCTURE" in params,
            data=kind == "BODY",
        )
        if extended is None:
            items.append((url, None))
        else:
            structure, data = extended.structure, extended.data or b""
            items.append((url, UrlFetchExtended(structure, kind, data)))
    yield UrlFetchResponse(tuple(items))
    yield Done("URLFETCH completed")

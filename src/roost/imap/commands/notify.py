"""NOTIFY SET / NOTIFY NONE (RFC 5465 §3). The events themselves are delivered by the
connection, which watches the account's changes whenever NOTIFY is on."""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.acl import sharing_accounts
from roost.imap.commands.fetch import fetch
from roost.imap.handler_types import Done, bad, no
from roost.imap.notify import EVENT_SPELLING, Notifier, NotifyError, build_spec
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Code, Response


async def notify(session: Session, cmd: c.Notify) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    if cmd.groups is None:
        session.notifier = None
        session.watch_accounts(())
        yield Done("NOTIFY completed, no more events")
        return
    try:
        spec = build_spec(cmd, session.mailbox_name)
    except NotifyError as error:
        if error.bad_event:
            raise no(str(error), Code("BADEVENT", f"({' '.join(EVENT_SPELLING)})")) from None
        raise bad(str(error)) from None
    notifier = Notifier(spec, lambda command: fetch(session, command))
    await notifier.load(account)
    # Mailboxes others share with the user, in their owners' accounts (imap/notify.py).
    session.watch_accounts(
        await notifier.load_shared(account.name, await sharing_accounts(session))
    )
    session.notifier = notifier
    if cmd.status:
        selected = session.selected.mailbox_id if session.selected else None
        owner = session.mailbox_account
        own_selected = selected if owner is None else None
        in_shared = None if owner is None or selected is None else (owner.name.casefold(), selected)
        async for response in notifier.initial_status(
            account, own_selected, session.condstore, in_shared
        ):
            yield response
    yield Done("NOTIFY completed")

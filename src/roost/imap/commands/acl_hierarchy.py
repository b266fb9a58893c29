"""CREATE, DELETE and RENAME in another user's mailboxes (RFC 4314 §4), and the ACL a
new mailbox takes from its parent.

Under ``Other Users/<owner>/`` these commands act in the owner's account (whose
``max_mailboxes`` counts) as far as the user's rights go: CREATE needs "k" on the
parent, DELETE "x" on the mailbox, RENAME "x" on the old name and "k" on the new
name's parent, both within one account. The parent is the nearest selectable mailbox
above the name (CREATE makes any missing levels, RFC 9051 §6.3.4); without one, or
without the right, NO [NOPERM]. A mailbox the user may neither list nor read stays
NO [NONEXISTENT] (§4), as for every other command.

A new mailbox starts with its parent's ACL, in the user's own account as in
another's, as Cyrus and Dovecot do: what is created below a shared mailbox is shared
alike, and a sharer who creates one in the owner's account can use it.
"""

from __future__ import annotations

from roost.imap.handler_types import no
from roost.imap.mailbox_names import parent_names
from roost.imap.session import Session
from roost.imap.shared import OTHER_USERS, Place, rights_in
from roost.store.base import Account, MailboxInfo


async def creation_place(session: Session, name: str) -> Place:
    """Where a new mailbox ``name`` (CREATE, RENAME's new name) is to be made, if the
    user may make it there: own names always, another's with "k" on the parent."""
    place = await session.place_of(name)
    if place is None:
        raise no(f"{OTHER_USERS} holds other users' mailboxes, not new ones", "NOPERM")
    if place.owner is None:
        return place
    parent = nearest_parent(place.name, await place.account.list_mailboxes())
    user = session.require_account().name
    rights = "" if parent is None else (await rights_in(place.account, user)).get(parent.name, "")
    if "k" not in rights:
        raise no("Creating a mailbox here needs the right 'k' on its parent (RFC 4314)", "NOPERM")
    return place


def nearest_parent(name: str, existing: list[MailboxInfo]) -> MailboxInfo | None:
    """The nearest selectable mailbox above ``name`` among ``existing``."""
    selectable = {info.name: info for info in existing if not info.noselect}
    for parent in reversed(parent_names(name)):
        if parent in selectable:
            return selectable[parent]
    return None


async def inherit_acl(account: Account, name: str, before: list[MailboxInfo]) -> None:
    """Give the mailbox ``name`` just created, and every level above it that CREATE
    made with it, the entries of its nearest parent that existed ``before``."""
    parent = nearest_parent(name, before)
    if parent is None:
        return
    entries = await account.get_acl(parent.id)
    if not entries:
        return
    known = {info.name for info in before if not info.noselect}
    for level in [*parent_names(name), name]:
        if level in known:
            continue
        created = await account.get_mailbox(level)
        if created.noselect:  # a placeholder keeps no entries
            continue
        for identifier, rights in entries.items():
            await account.set_acl(created.id, identifier, rights)

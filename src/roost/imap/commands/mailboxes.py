"""SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE
(RFC 9051 §6.3, RFC 3501 §6.3, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
SPECIAL-USE RFC 6154, LIST-MYRIGHTS RFC 8440); STATUS is in status.py.

Special-use attributes are returned in every LIST and LSUB, asked for or not: old
Outlook looks only at LSUB, and RFC 6154 §2 allows it (CLIENTS.md).

Mailboxes other accounts share with the user (ACL, imap/shared.py) are listed after
the user's own, under "Other Users/<owner>/", with \\Noselect levels above them; a
shared mailbox is selected in its owner's account, READ-ONLY without any of "s", "w",
"t", "e" (RFC 4314 §4).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from roost.imap.commands.acl import shared_mailboxes
from roost.imap.commands.acl_hierarchy import creation_place, inherit_acl
from roost.imap.commands.metadata import list_metadata
from roost.imap.commands.status import status_values
from roost.imap.handler_types import Done, State, bad, no
from roost.imap.mailbox_names import (
    DELIMITER,
    InvalidMailboxName,
    check_new_name,
    compile_list_pattern,
    is_inbox,
    parent_names,
)
from roost.imap.selected import SelectedMailbox
from roost.imap.session import Session
from roost.imap.shared import ALL_RIGHTS, OTHER_USERS, split_shared
from roost.imap.wire import commands as c
from roost.imap.wire.mutf7 import decode_mutf7, encode_mutf7
from roost.imap.wire.responses import (
    Code,
    Exists,
    FetchResponse,
    FlagsResponse,
    ListResponse,
    MyRightsResponse,
    NamespaceResponse,
    Parenthesized,
    PermanentFlagsCode,
    Recent,
    Response,
    Status,
    StatusResponse,
    Untagged,
    Vanished,
)
from roost.store.base import (
    SPECIAL_USES,
    MailboxInfo,
    StorageFull,
)

log = logging.getLogger("roost.imap")

# The names clients give the folders they create when they find none of their liking
# (CLIENTS.md: Apple Mail's "Sent Messages", Outlook's "Sent Items"): created at the top
# level without USE, they get that special use, so every other client finds them too.
# RFC 6154 §2 lets several mailboxes share one.
CLIENT_FOLDER_NAMES = {
    "sent messages": "\\Sent",
    "sent items": "\\Sent",
    "deleted messages": "\\Trash",
    "deleted items": "\\Trash",
    "junk e-mail": "\\Junk",
    "junk email": "\\Junk",
}


async def select(session: Session, cmd: c.Select) -> AsyncIterator[Response | Done]:
    session.require_account()
    verb = "EXAMINE" if cmd.readonly else "SELECT"
    if cmd.qresync is not None and not session.qresync:
        raise bad("QRESYNC must be enabled first")  # RFC 7162 §3.2.5
    if cmd.condstore:
        session.enable_condstore()
        session.announce_highestmodseq = False  # the new mailbox's comes untagged below
    # RFC 9051 §6.3.2: SELECT first leaves any selected mailbox, even if it then fails;
    # with QRESYNC the client is told where the old mailbox's responses end (§3.2.11).
    if session.selected is not None and (session.qresync or session.rev2):
        yield Untagged(Status.OK, "Previous mailbox is now closed", Code("CLOSED"))
    session.selected = None
    session.state = State.AUTHENTICATED
    session.leave_shared()
    name = session.mailbox_name(cmd.mailbox)
    place = await session.locate(cmd.mailbox)
    place.require("r", verb)  # RFC 4314 §4
    account = place.account
    # RFC 4314 §4: without any right to change it, a shared mailbox is read-only.
    readonly = cmd.readonly or not set(place.rights) & set("swte")
    info = await account.get_mailbox(place.name)
    if info.noselect:
        raise no(f"{name} is not selectable: it only holds other mailboxes", "CANNOT")
    claims = not readonly and not session.rev2  # RFC 9051 has no \Recent
    # RFC 3501 §6.3.2: EXAMINE must not take \Recent away, but a rev1 session that is
    # the first to hear of a message still sees it as recent (Dovecot does the same).
    peeks = readonly and not session.rev2
    try:
        snapshot = await account.snapshot(info.id, claim_recent=claims, peek_recent=peeks)
    except StorageFull:
        if not claims:
            raise
        # \Recent is a courtesy, never a reason to refuse SELECT on a full disk.
        log.warning("disk full: \\Recent not claimed ip=%s", session.remote_ip)
        snapshot = await account.snapshot(info.id)
    view = SelectedMailbox(snapshot, readonly=readonly, recent_floor=snapshot.recent_floor)
    view.condstore, view.qresync, view.rev2 = session.condstore, session.qresync, session.rev2
    session.enter_shared(place, info.id)
    view.uidonly = session.uidonly
    if session.listener is not None:
        session.listener.pending()  # everything up to now is in the snapshot
    session.selected = view
    session.state = State.SELECTED

    yield FlagsResponse(view.all_flags())
    yield Exists(view.exists)
    if not session.rev2:  # RFC 9051 dropped RECENT and [UNSEEN] from SELECT
        yield Recent(len(view.recent))
    first_unseen = None if snapshot.first_unseen is None else view.msn_of(snapshot.first_unseen)
    if first_unseen is not None and not session.rev2:
        yield Untagged(Status.OK, "First unseen", Code("UNSEEN", str(first_unseen)))
    yield Untagged(Status.OK, "UIDs valid", Code("UIDVALIDITY", str(info.uidvalidity)))
    yield Untagged(Status.OK, "Predicted next UID", Code("UIDNEXT", str(info.uidnext)))
    permanent = () if readonly else _permanent_flags(view.all_flags(), place.rights)
    yield Untagged(Status.OK, "Flags permitted", PermanentFlagsCode(permanent))
    # RFC 7162 §3.1.2.1: every mailbox keeps mod-sequences, so always say how far.
    yield Untagged(Status.OK, "Highest", Code("HIGHESTMODSEQ", str(snapshot.info.highestmodseq)))
    yield Untagged(Status.OK, "Ok", Code("MAILBOXID", f"({info.object_id})"))  # RFC 8474 §4.3
    if cmd.qresync is not None and cmd.qresync.uidvalidity == info.uidvalidity:
        async for response in _qresync(session, view, cmd.qresync):
            yield response
    access = Code("READ-ONLY") if readonly else Code("READ-WRITE")
    yield Done(f"{verb} completed", access)


def _permanent_flags(flags: tuple[str, ...], rights: str) -> tuple[str, ...]:
    """RFC 4314 §4: the flags the user may change: \\Seen with "s", \\Deleted with
    "t", the others (and new keywords, "\\*") with "w"."""
    needs = {"\\Seen": "s", "\\Deleted": "t"}
    allowed = tuple(f for f in flags if needs.get(f, "w") in rights)
    return (*allowed, "\\*") if "w" in rights else allowed


async def _qresync(
    session: Session, view: SelectedMailbox, params: c.QresyncParams
) -> AsyncIterator[Response]:
    """RFC 7162 §3.2.5.2: what vanished and what changed since the client's modseq,
    limited to the UIDs it says it knows."""
    account = session.selected_account()
    changes = await account.changes_since(view.mailbox_id, params.modseq)
    largest = max(view.uidnext - 1, 1)
    known = params.known_uids.membership(largest) if params.known_uids else None
    vanished = [uid for uid in changes.expunged if known is None or known(uid)]
    if vanished:
        yield Vanished(tuple(vanished), earlier=True)
    for state in changes.changed:
        msn = view.msn_of(state.uid)
        if msn is None or (known is not None and not known(state.uid)):
            continue
        yield FetchResponse(
            msn,
            (
                ("UID", state.uid),
                ("FLAGS", view.flags_for_wire(state.uid, state.flags)),
                ("MODSEQ", Parenthesized(state.modseq)),
            ),
        )


def _new_mailbox_name(session: Session, raw: bytes) -> str:
    """A name a mailbox is to get: valid as any name, and without LIST wildcards."""
    name = session.mailbox_name(raw)
    try:
        check_new_name(name)
    except InvalidMailboxName as error:
        raise no(f"Invalid mailbox name: {error}", "CANNOT") from None
    return name


async def create(session: Session, cmd: c.Create) -> AsyncIterator[Response | Done]:
    session.require_account()
    # RFC 9051 §6.3.4: a trailing separator says children will follow; the name is without it.
    raw = cmd.mailbox[:-1] if cmd.mailbox.endswith(b"/") and len(cmd.mailbox) > 1 else cmd.mailbox
    name = _new_mailbox_name(session, raw)
    if is_inbox(name):
        raise no("INBOX always exists", "ALREADYEXISTS")
    special_use: str | None = None
    for use in cmd.special_use:
        canonical = next((s for s in SPECIAL_USES if s.lower() == use.lower()), None)
        if canonical is None:
            raise no(f"Unknown special use {use}", "USEATTR")
        if special_use is not None:
            raise no("Only one special use per mailbox", "USEATTR")
        special_use = canonical
    if not cmd.special_use:
        special_use = CLIENT_FOLDER_NAMES.get(name.casefold())
    place = await creation_place(session, name)  # another's needs "k" (RFC 4314 §4)
    existing = await place.account.list_mailboxes()
    _check_mailbox_count(session, existing, place.name)
    created = await place.account.create_mailbox(place.name, special_use)
    await inherit_acl(place.account, place.name, existing)
    # RFC 8474 §4.1: the new mailbox's id comes with the OK.
    yield Done("CREATE completed", Code("MAILBOXID", f"({created.object_id})"))


def _check_mailbox_count(session: Session, mailboxes: list[MailboxInfo], name: str) -> None:
    """``max_mailboxes`` of the account holding ``mailboxes``: counting what CREATE
    would add, the name and any missing parent. Checked before the store call, so two
    CREATEs at once may pass it by one."""
    limit = session.context.limits.max_mailboxes
    existing = {info.name for info in mailboxes}
    levels = name.split("/")
    wanted = {"/".join(levels[:depth]) for depth in range(1, len(levels) + 1)}
    if len(existing) + len(wanted - existing) > limit:
        log.warning("mailbox limit ip=%s limit=%d", session.remote_ip, limit)
        raise no(f"Too many mailboxes (max_mailboxes = {limit})", "LIMIT")


async def delete(session: Session, cmd: c.Delete) -> AsyncIterator[Response | Done]:
    place = await session.locate(cmd.mailbox)
    place.require("x", "DELETE")  # RFC 4314 §4, in another user's mailbox
    if is_inbox(place.name):
        raise no("INBOX cannot be deleted", "CANNOT")
    selected = session.selected
    await place.account.delete_mailbox(place.name)
    if (
        selected is not None
        and session.selected_account() is place.account
        and selected.info.name == place.name
    ):
        session.selected = None
        session.state = State.AUTHENTICATED
        session.leave_shared()
    yield Done("DELETE completed")


async def rename(session: Session, cmd: c.Rename) -> AsyncIterator[Response | Done]:
    old = await session.locate(cmd.old)
    old.require("x", "RENAME")  # RFC 4314 §4: "x" on the old name, "k" on the new parent
    new = await creation_place(session, _new_mailbox_name(session, cmd.new))
    if new.account is not old.account:
        raise no("RENAME moves a mailbox within its owner's account only", "CANNOT")
    if is_inbox(new.name):
        raise no("INBOX already exists", "ALREADYEXISTS")
    if old.name == new.name:
        raise no("Source and destination are the same", "ALREADYEXISTS")
    await old.account.rename_mailbox(old.name, new.name)
    yield Done("RENAME completed")


async def subscribe(session: Session, cmd: c.Subscribe) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    await account.set_subscribed(session.mailbox_name(cmd.mailbox), True)
    yield Done("SUBSCRIBE completed")


async def unsubscribe(session: Session, cmd: c.Unsubscribe) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    await account.set_subscribed(session.mailbox_name(cmd.mailbox), False)
    yield Done("UNSUBSCRIBE completed")


async def namespace(session: Session, cmd: c.Namespace) -> AsyncIterator[Response | Done]:
    # RFC 2342: other users' mailboxes shared with this user (ACL, RFC 4314).
    others = ((OTHER_USERS + DELIMITER, DELIMITER),)
    yield NamespaceResponse(personal=(("", DELIMITER),), other_users=others, shared=None)
    yield Done("NAMESPACE completed")


# ---- LIST and LSUB -------------------------------------------------------------------


def _decode_pattern(session: Session, raw: bytes) -> str:
    """Reference and pattern text: decoded like names, but without name validation
    (they may be empty, end with "/", or hold wildcards).

    A pattern that is not valid modified UTF-7 (or UTF-8) is matched literally, never
    refused (RFC 9051 §6.3.9: a pattern is a mailbox name with wildcards; a name that
    cannot exist simply matches nothing). Dovecot 2.3 answers such a LIST with OK too.
    """
    try:
        return raw.decode("utf-8") if session.utf8 else decode_mutf7(raw)
    except (UnicodeDecodeError, ValueError):
        return raw.decode("utf-8", "replace")


def _children_index(names: set[str]) -> set[str]:
    """Names that have at least one inferior."""
    parents: set[str] = set()
    for name in names:
        parents.update(parent_names(name))
    return parents


async def list_(session: Session, cmd: c.List) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    reference = _decode_pattern(session, cmd.reference)
    patterns = [_decode_pattern(session, p) for p in cmd.patterns]
    selection = set(cmd.selection)
    returns = set(cmd.return_options)
    if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
        raise bad("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3.1

    if patterns == [""] and not cmd.extended:
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if DELIMITER in reference else ""
        yield ListResponse(("\\Noselect",), DELIMITER, root)
        yield Done("LIST completed")
        return

    mailboxes = {m.name: m for m in await account.list_mailboxes()}
    subscribed = set(await account.list_subscriptions())
    has_children = _children_index(set(mailboxes))
    matchers = [compile_list_pattern(reference, p) for p in patterns if p != ""]

    def matches(name: str) -> bool:
        return any(m(name) for m in matchers)

    want_subscribed = "SUBSCRIBED" in selection
    want_special = "SPECIAL-USE" in selection
    show_subscribed = want_subscribed or "SUBSCRIBED" in returns
    results: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []

    candidates = set(mailboxes) | (subscribed if want_subscribed else set())
    if want_subscribed and "RECURSIVEMATCH" in selection:
        # RFC 5258 §3.5: a parent with subscribed children is listed (with CHILDINFO)
        # even when it neither exists nor is subscribed itself.
        candidates |= _children_index(subscribed)
    # Names under "Other Users" are answered from the shared mailboxes, below.
    candidates = {n for n in candidates if split_shared(n) is None}
    for name in _ordered(candidates):
        info = mailboxes.get(name)
        child_info: tuple[str, ...] = ()
        selected_by_options = True
        if want_subscribed and name not in subscribed:
            selected_by_options = False
            if "RECURSIVEMATCH" in selection and any(
                s.startswith(name + DELIMITER) for s in subscribed
            ):
                child_info = ("SUBSCRIBED",)
        if want_special and (info is None or info.special_use is None):
            selected_by_options = False
        if not (selected_by_options or child_info) or not matches(name):
            continue
        attributes = _attributes(info, name in has_children)
        if show_subscribed and name in subscribed:
            attributes += ("\\Subscribed",)
        results.append((name, attributes, child_info))

    shared_rights: dict[str, str] = {}
    if not want_special:  # another's special folders are not this user's
        tree = _shared_tree(await shared_mailboxes(session))
        for name, attributes, rights in tree:
            if (want_subscribed and name not in subscribed) or not matches(name):
                continue
            if show_subscribed and name in subscribed:
                attributes += ("\\Subscribed",)
            results.append((name, attributes, ()))
            if rights:
                shared_rights[name] = rights
        if want_subscribed:  # RFC 5258 §3.4: subscribed, but no longer shared
            listed = {name for name, _, _ in tree}
            gone = {s for s in subscribed if split_shared(s) and s not in listed and matches(s)}
            results += [(name, ("\\NonExistent", "\\Subscribed"), ()) for name in sorted(gone)]

    status_items = cmd.status_items
    for name, attributes, child_info in results:
        yield ListResponse(attributes, DELIMITER, name, child_info)
        if "MYRIGHTS" in returns:  # RFC 8440: the rights of each mailbox listed
            rights = shared_rights.get(name, ALL_RIGHTS if name in mailboxes else "")
            if rights:
                yield MyRightsResponse(name, rights)
        info = mailboxes.get(name)
        if status_items and info is not None and not info.noselect:
            status = await account.status(info.id)
            yield StatusResponse(name, status_values(session, status_items, status, info))
        if cmd.metadata_entries and info is not None:
            yield await list_metadata(session, name, info, cmd.metadata_entries)
        if (status_items or cmd.metadata_entries) and "r" in shared_rights.get(name, ""):
            # RFC 4314 §4: STATUS and GETMETADATA of a shared mailbox need "r".
            place = await session.locate(_wire_name(session, name))
            shared = await place.account.get_mailbox(place.name)
            if status_items:
                status = await place.account.status(shared.id)
                yield StatusResponse(name, status_values(session, status_items, status, shared))
            if cmd.metadata_entries:
                yield await list_metadata(session, name, shared, cmd.metadata_entries, place)
    yield Done("LIST completed")


def _wire_name(session: Session, name: str) -> bytes:
    """A mailbox name as the client would send it (for ``Session.locate``)."""
    return name.encode("utf-8") if session.utf8 else encode_mutf7(name)


def _shared_tree(
    shared: list[tuple[str, str]],
) -> list[tuple[str, tuple[str, ...], str]]:
    """(name, attributes, rights) of the shared mailboxes and of the levels above them
    ("Other Users", "Other Users/alice", a parent not shared itself: \\Noselect,
    rights ""), in LIST order."""
    rights = dict(shared)
    names = set(rights)
    for name in rights:
        names.update(parent_names(name))
    children = _children_index(names)
    tree: list[tuple[str, tuple[str, ...], str]] = []
    for name in _ordered(names):
        kids = "\\HasChildren" if name in children else "\\HasNoChildren"
        attributes = (kids,) if name in rights else (kids, "\\Noselect")
        tree.append((name, attributes, rights.get(name, "")))
    return tree


def _attributes(info: MailboxInfo | None, has_children: bool) -> tuple[str, ...]:
    if info is None:
        # RFC 5258 §3.4 and §5 examples: subscribed (or a parent) but gone. \NonExistent
        # implies \Noselect (RFC 9051 §7.3.1), so it comes alone, as in the RFC.
        return ("\\NonExistent",)
    attributes: list[str] = ["\\HasChildren" if has_children else "\\HasNoChildren"]
    if info.noselect:
        attributes.append("\\Noselect")
    if info.special_use:
        attributes.append(info.special_use)
    return tuple(attributes)


def _ordered(names: set[str]) -> list[str]:
    """INBOX first, then the rest in name order, parents before their children."""
    return sorted(names, key=lambda n: (not is_inbox(n.split(DELIMITER, 1)[0]), n.split("/")))


async def lsub(session: Session, cmd: c.Lsub) -> AsyncIterator[Response | Done]:
    account = session.require_account()
    reference = _decode_pattern(session, cmd.reference)
    pattern = _decode_pattern(session, cmd.pattern)
    if pattern == "":
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if DELIMITER in reference else ""
        yield ListResponse(("\\Noselect",), DELIMITER, root, lsub=True)
        yield Done("LSUB completed")
        return
    mailboxes = {m.name: m for m in await account.list_mailboxes()}
    subscribed = set(await account.list_subscriptions())
    has_children = _children_index(set(mailboxes))
    matches = compile_list_pattern(reference, pattern)
    shared: dict[str, tuple[str, ...]] = {}
    if any(split_shared(name) is not None for name in subscribed):
        tree = _shared_tree(await shared_mailboxes(session))
        shared = {name: attributes for name, attributes, _ in tree}
    shown: dict[str, tuple[str, ...]] = {}
    for name in subscribed:
        if matches(name):
            info = mailboxes.get(name)
            if name in shared:
                shown[name] = shared[name]
            else:
                shown[name] = (
                    ("\\Noselect",) if info is None else _attributes(info, name in has_children)
                )
        else:
            # RFC 3501 §6.3.9: a parent matched by "%" whose child is subscribed is
            # listed \Noselect when it is not subscribed itself.
            for parent in parent_names(name):
                if parent not in subscribed and matches(parent):
                    shown.setdefault(parent, ("\\Noselect",))
    for name in _ordered(set(shown)):
        yield ListResponse(shown[name], DELIMITER, name, lsub=True)
    yield Done("LSUB completed")


# ---- STATUS --------------------------------------------------------------------------

"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, LIST, LSUB,
NAMESPACE, STATUS (RFC 9051 §6.3, RFC 5258, RFC 5819, RFC 6154), and the client habits
in CLIENTS.md."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_new_account_has_special_folders_marked_in_list(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.ok('LIST "" "*"')
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
        b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
        b'* LIST (\\HasNoChildren \\Sent) "/" Sent',
        b'* LIST (\\HasNoChildren \\Trash) "/" Trash',
    ]


async def test_thunderbird_list_subscribed_return_special_use(imap: ImapServer) -> None:
    """Thunderbird: LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE) (CLIENTS.md)."""
    client = await imap.login()
    reply = await client.ok('LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)')
    names = [line.rsplit(b" ", 1)[1] for line in reply.untagged]
    assert names == [b"INBOX", b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"]
    assert all(b"\\Subscribed" in line for line in reply.untagged)
    assert b"\\Sent" in reply.untagged[4]


async def test_lsub_shows_special_use_for_old_outlook(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.ok('LSUB "" "*"')
    assert b'* LSUB (\\HasNoChildren \\Sent) "/" Sent' in reply.untagged
    assert len(reply.untagged) == 6


async def test_list_empty_pattern_gives_delimiter(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.ok('LIST "" ""')
    assert reply.untagged == [b'* LIST (\\Noselect) "/" ""']


async def test_list_percent_and_children(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE Work/2026/Q4")
    reply = await client.ok('LIST "" "Work/%"')
    assert reply.untagged == [b'* LIST (\\HasChildren) "/" Work/2026']
    reply = await client.ok('LIST "Work/" "*"')
    assert [u.rsplit(b" ", 1)[1] for u in reply.untagged] == [b"Work/2026", b"Work/2026/Q4"]


async def test_list_return_status(imap: ImapServer) -> None:
    """RFC 5819 LIST-STATUS."""
    client = await imap.login()
    await client.append("INBOX", message())
    reply = await client.ok('LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))')
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b"* STATUS INBOX (MESSAGES 1 UNSEEN 1)",
    ]


async def test_create_existing_is_alreadyexists(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE Projects")
    reply = await client.no("CREATE Projects")
    assert b"[ALREADYEXISTS]" in reply.line
    reply = await client.no("CREATE inbox")
    assert b"[ALREADYEXISTS]" in reply.line


async def test_create_trailing_separator_and_special_use(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE Lists/")
    await client.ok("CREATE MyAll (USE (\\All))")
    reply = await client.ok('LIST "" "MyAll"')
    assert reply.untagged == [b'* LIST (\\HasNoChildren \\All) "/" MyAll']
    reply = await client.no("CREATE Bad (USE (\\Nonsense))")
    assert b"[USEATTR]" in reply.line


async def test_inbox_any_case_means_inbox(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("inbox", message())
    reply = await client.ok("SELECT iNbOx")
    assert b"* 1 EXISTS" in reply.untagged


async def test_select_response_rfc3501(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("INBOX", message(), flags="\\Seen")
    await client.append("INBOX", message("two"))
    reply = await client.ok("SELECT INBOX")
    assert reply.untagged[0] == b"* FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)"
    assert reply.untagged[1:4] == [
        b"* 2 EXISTS",
        b"* 2 RECENT",
        b"* OK [UNSEEN 2] First unseen",
    ]
    assert reply.lines_starting(b"* OK [UIDVALIDITY ")
    assert reply.lines_starting(b"* OK [UIDNEXT 3]")
    assert reply.lines_starting(b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged")
    assert b"[READ-WRITE]" in reply.line


async def test_select_again_after_another_session_changed_the_mailbox(
    imap: ImapServer,
) -> None:
    """RFC 3501 §7.1 [UNSEEN n] is a message number, not a UID; each SELECT tells the
    mailbox as it is now, whatever another connection did in between."""
    client = await imap.login()
    other = await imap.login()
    for n in range(5):
        await client.append("INBOX", message(f"m{n}"), flags="\\Seen")
    reply = await client.ok("SELECT INBOX")
    assert reply.untagged[1:3] == [b"* 5 EXISTS", b"* 5 RECENT"]
    assert not reply.lines_starting(b"* OK [UNSEEN")

    await other.ok("SELECT INBOX")
    await other.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    await other.ok("STORE 4 -FLAGS.SILENT (\\Seen)")
    await other.ok("CLOSE")  # expunged: UIDs 3, 4, 5 are now messages 1, 2, 3
    await other.append("INBOX", message("new"))  # UID 6, message 4, recent for client
    reply = await client.ok("SELECT INBOX")
    assert reply.untagged[1:4] == [b"* 4 EXISTS", b"* 1 RECENT", b"* OK [UNSEEN 2] First unseen"]
    assert reply.lines_starting(b"* OK [UIDNEXT 7]")
    reply = await client.ok("UID FETCH 1:* (FLAGS)")
    assert reply.untagged == [
        b"* 1 FETCH (UID 3 FLAGS (\\Seen))",
        b"* 2 FETCH (UID 4 FLAGS ())",
        b"* 3 FETCH (UID 5 FLAGS (\\Seen))",
        b"* 4 FETCH (UID 6 FLAGS (\\Recent))",
    ]
    reply = await other.ok("SELECT INBOX")  # the other session's claim came first
    assert reply.untagged[1:4] == [b"* 4 EXISTS", b"* 0 RECENT", b"* OK [UNSEEN 2] First unseen"]


async def test_examine_is_read_only_and_claims_no_recent(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("INBOX", message())
    reply = await client.ok("EXAMINE INBOX")
    assert b"[READ-ONLY]" in reply.line
    # Unclaimed, so recent to this session too (RFC 3501 §2.3.2), just not taken away.
    assert b"* 1 RECENT" in reply.untagged
    assert b"* OK [PERMANENTFLAGS ()] Flags permitted" in reply.untagged
    await client.no("STORE 1 +FLAGS (\\Seen)")
    # \Recent was not claimed by EXAMINE, so SELECT still gets it (RFC 3501 §2.3.2).
    reply = await client.ok("SELECT INBOX")
    assert b"* 1 RECENT" in reply.untagged
    other = await imap.login()
    reply = await other.ok("SELECT INBOX")
    assert b"* 0 RECENT" in reply.untagged


async def test_select_missing_mailbox(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("SELECT INBOX")
    reply = await client.no("SELECT Nowhere")
    assert b"[NONEXISTENT]" in reply.line
    # RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
    await client.bad("FETCH 1 FLAGS")


async def test_delete_and_inbox_refused(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE Old")
    await client.ok("DELETE Old")
    reply = await client.no("DELETE Old")
    assert b"[NONEXISTENT]" in reply.line
    await client.no("DELETE INBOX")


async def test_delete_parent_keeps_children_as_noselect(imap: ImapServer) -> None:
    """RFC 3501 §6.3.4: the parent becomes \\Noselect."""
    client = await imap.login()
    await client.ok("CREATE Parent/Child")
    await client.ok("DELETE Parent")
    reply = await client.ok('LIST "" "Parent*"')
    assert reply.untagged == [
        b'* LIST (\\HasChildren \\Noselect) "/" Parent',
        b'* LIST (\\HasNoChildren) "/" Parent/Child',
    ]
    await client.no("SELECT Parent")


async def test_rename_keeps_uidvalidity_and_moves_children(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE Folder/Sub")
    await client.append("Folder", message())
    before = await client.ok("STATUS Folder (UIDVALIDITY MESSAGES)")
    await client.ok("RENAME Folder Renamed")
    after = await client.ok("STATUS Renamed (UIDVALIDITY MESSAGES)")
    assert before.untagged[0].split(b"(")[1] == after.untagged[0].split(b"(")[1]
    reply = await client.ok('LIST "" "Renamed*"')
    assert len(reply.untagged) == 2
    await client.no("RENAME Renamed Sent")


async def test_rename_inbox_moves_messages(imap: ImapServer) -> None:
    """RFC 9051 §6.3.6: RENAME INBOX moves its messages and leaves INBOX empty."""
    client = await imap.login()
    await client.append("INBOX", message())
    await client.ok("RENAME INBOX Saved")
    reply = await client.ok("STATUS INBOX (MESSAGES)")
    assert reply.untagged == [b"* STATUS INBOX (MESSAGES 0)"]
    reply = await client.ok("STATUS Saved (MESSAGES)")
    assert reply.untagged == [b"* STATUS Saved (MESSAGES 1)"]


async def test_subscribe_unsubscribe(imap: ImapServer) -> None:
    client = await imap.login()
    await client.ok("CREATE News")
    await client.ok("SUBSCRIBE News")
    reply = await client.ok('LSUB "" "News"')
    assert reply.untagged == [b'* LSUB (\\HasNoChildren) "/" News']
    await client.ok("UNSUBSCRIBE News")
    reply = await client.ok('LSUB "" "News"')
    assert reply.untagged == []


async def test_namespace(imap: ImapServer) -> None:
    """RFC 2342: the personal namespace without a prefix, and other users' mailboxes
    shared with this one (ACL, RFC 4314) under "Other Users/"."""
    client = await imap.login()
    reply = await client.ok("NAMESPACE")
    assert reply.untagged == [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL']


async def test_status_with_size_and_deleted(imap: ImapServer) -> None:
    client = await imap.login()
    body = message()
    await client.append("INBOX", body, flags="\\Deleted")
    await client.append("INBOX", body, flags="\\Seen")
    reply = await client.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE RECENT)")
    assert reply.untagged == [
        f"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 1 DELETED 1 SIZE {2 * len(body)} "
        "RECENT 2)".encode()
    ]
    await client.bad("STATUS INBOX (BOGUS)")
    reply = await client.no("STATUS Nowhere (MESSAGES)")
    assert b"[NONEXISTENT]" in reply.line


async def test_modified_utf7_names(imap: ImapServer) -> None:
    """RFC 3501 §5.1.3: names travel in modified UTF-7 for IMAP4rev1 clients."""
    client = await imap.login()
    await client.ok('CREATE "&ZeVnLIqe-"')
    reply = await client.ok('LIST "" "&ZeVnLIqe-"')
    assert reply.untagged == [b'* LIST (\\HasNoChildren) "/" &ZeVnLIqe-']
    await client.no('CREATE "&Jjo!"')  # invalid modified UTF-7


async def test_utf8_names_after_enable(imap: ImapServer) -> None:
    """RFC 6855: after ENABLE UTF8=ACCEPT names are UTF-8, and "&" is just "&"."""
    client = await imap.login()
    await client.ok("ENABLE UTF8=ACCEPT")
    await client.ok('CREATE "日本語"'.encode())
    await client.ok('CREATE "R&D"')
    reply = await client.ok('LIST "" "*"')
    assert '* LIST (\\HasNoChildren) "/" "日本語"'.encode() in reply.untagged
    assert b'* LIST (\\HasNoChildren) "/" R&D' in reply.untagged
    other = await imap.login()
    reply = await other.ok('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" &ZeVnLIqe-' in reply.untagged
    assert b'* LIST (\\HasNoChildren) "/" R&-D' in reply.untagged


async def test_bad_mailbox_names_refused(imap: ImapServer) -> None:
    client = await imap.login()
    for name in ('"a//b"', '"../etc"', '"/abs"', '"a/./b"'):
        await client.no(f"CREATE {name}")
    await client.no(b'CREATE "ctl\x01"')

"""Conformance defects found by an outside IMAP test suite and a messy corpus (issue 17),
each pinned to its RFC section. Where Roost and Dovecot 2.3 answer differently and the
RFC allows both, the test says which Roost chose and why."""

from __future__ import annotations

import re
from pathlib import Path

from roost.imap.context import ImapLimits
from tests.conftest import ImapServer, start_imap_server, stop_imap_server
from tests.support.imap_client import ImapClient, message


def _highest(line: bytes) -> int | None:
    match = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
    return int(match.group(1)) if match else None


async def _selected(imap: ImapServer, count: int = 2) -> ImapClient:
    client = await imap.login()
    for i in range(count):
        await client.append("INBOX", message(f"m{i}"))
    await client.ok("SELECT INBOX")
    return client


async def _highest_now(imap: ImapServer) -> int:
    """The INBOX's HIGHESTMODSEQ as another session sees it."""
    other = await imap.login()
    status = await other.ok("STATUS INBOX (HIGHESTMODSEQ)")
    await other.close()
    return int(status.untagged[0].split(b"HIGHESTMODSEQ ")[1].rstrip(b")"))


# ---- 5. RFC 7162 §3.1: implicit CONDSTORE enabling reports HIGHESTMODSEQ -------------


async def test_fetch_modseq_enabling_condstore_reports_highestmodseq(imap: ImapServer) -> None:
    """RFC 7162 §3.1: the first CONDSTORE-enabling command issued while a mailbox is
    selected reports that mailbox's HIGHESTMODSEQ. Roost puts it in the tagged OK;
    Dovecot sends an untagged ``OK [HIGHESTMODSEQ n]`` before the FETCH data — both
    carry the same value. Later commands do not repeat it."""
    client = await _selected(imap)
    expected = await _highest_now(imap)
    reply = await client.ok("FETCH 1 (MODSEQ)")
    assert _highest(reply.line) == expected
    again = await client.ok("FETCH 1 (MODSEQ)")
    assert _highest(again.line) is None


async def test_search_modseq_enabling_condstore_reports_highestmodseq(
    imap: ImapServer,
) -> None:
    """RFC 7162 §3.1 (SEARCH MODSEQ is a CONDSTORE-enabling command, §3.1.5)."""
    client = await _selected(imap)
    reply = await client.ok("SEARCH MODSEQ 1")
    assert _highest(reply.line) == await _highest_now(imap)


async def test_store_unchangedsince_enabling_condstore_reports_highestmodseq(
    imap: ImapServer,
) -> None:
    """RFC 7162 §3.1 (STORE UNCHANGEDSINCE, §3.1.3): after the change, so the value
    is the modseq the STORE itself took."""
    client = await _selected(imap)
    reply = await client.ok("STORE 1 (UNCHANGEDSINCE 100) +FLAGS (\\Seen)")
    assert _highest(reply.line) == await _highest_now(imap)


# ---- 7. RFC 6851: MOVE into the selected mailbox itself ------------------------------


async def test_move_into_the_selected_mailbox_refiles(imap: ImapServer) -> None:
    """RFC 6851 §3.3 does not forbid the destination being the selected mailbox: the
    message is copied with a new UID (COPYUID, untagged first, §4.3) and the original
    expunged. Dovecot 2.3 does the same."""
    client = await _selected(imap)
    reply = await client.ok("MOVE 1 INBOX")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 1 3\] .*", reply.untagged[0]), reply.untagged
    # Roost reports the expunge first and then the new count (2); Dovecot announces
    # 3 EXISTS before the EXPUNGE. Both are valid orders of the same state change.
    assert reply.untagged[1:3] == [b"* 1 EXPUNGE", b"* 2 EXISTS"]
    uids = await client.ok("FETCH 1:* (UID)")
    assert uids.untagged == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]
    subject = await client.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: m0" in subject.untagged[0]


async def test_uid_move_into_the_selected_mailbox_with_qresync(imap: ImapServer) -> None:
    """RFC 6851 §4.3 with QRESYNC (RFC 7162 §3.2.10): the old UID is reported VANISHED."""
    client = await imap.login()
    await client.append("INBOX", message("m0"))
    await client.ok("ENABLE QRESYNC")
    await client.ok("SELECT INBOX")
    reply = await client.ok("UID MOVE 1 INBOX")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 1 2\] .*", reply.untagged[0]), reply.untagged
    assert b"* VANISHED 1" in reply.untagged


# ---- 4. RFC 9051 §6.3.9: a pattern that is not modified UTF-7 matches literally ------


async def test_list_pattern_of_atom_specials_and_ampersand_is_not_refused(
    imap: ImapServer,
) -> None:
    """RFC 9051 §6.3.9 and §5.1.3: list-char allows these characters unquoted; "&'+,-."
    is not valid modified UTF-7, so the pattern is matched literally and matches no
    mailbox. Dovecot 2.3 also answers OK with no LIST responses."""
    client = await imap.login()
    reply = await client.ok('LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*')
    assert reply.untagged == []
    reply = await client.ok('LIST "" "&Jjo"')  # base64 of an unfinished character
    assert reply.untagged == []


async def test_list_pattern_with_invalid_utf7_matches_literally(imap: ImapServer) -> None:
    """RFC 9051 §6.3.9: with UTF8=ACCEPT (RFC 6855 §3) "&" is an ordinary character, so
    a mailbox named "&Jjo" exists; without it the same pattern, invalid as modified
    UTF-7, still finds it by its literal text."""
    client = await imap.login()
    await client.ok("ENABLE UTF8=ACCEPT")
    await client.ok('CREATE "&Jjo"')
    other = await imap.login()
    reply = await other.ok('LIST "" "&Jjo*"')
    assert reply.untagged == [b'* LIST (\\HasNoChildren) "/" &-Jjo']


# ---- 6. RFC 5258 §3.4, §3.5: LIST-EXTENDED SUBSCRIBED and RECURSIVEMATCH ------------


async def _fruit_tree(imap: ImapServer) -> ImapClient:
    """RFC 5258 §5's kind of tree: Fruit exists with a subscribed child, Fruit/Peach
    is subscribed but gone, Tofu does not exist but has a subscribed child,
    Vegetable and Vegetable/Corn are both subscribed."""
    client = await imap.login()
    for name in ("Fruit", "Fruit/Banana", "Vegetable", "Vegetable/Corn"):
        await client.ok(f"CREATE {name}")
    for name in ("Fruit/Banana", "Fruit/Peach", "Tofu/Sub", "Vegetable", "Vegetable/Corn"):
        await client.ok(f"SUBSCRIBE {name}")
    return client


async def test_list_subscribed_nonexistent_is_nonexistent_and_subscribed(
    imap: ImapServer,
) -> None:
    """RFC 5258 §3.4 (and the §5 examples): a subscribed name that does not exist is
    ``(\\NonExistent \\Subscribed)``; \\NonExistent already implies \\Noselect (RFC 9051
    §7.3.1). Dovecot 2.3 refuses to SUBSCRIBE a missing name by default, so it never
    has such a name to list; RFC 9051 §6.3.7 lets a server accept it, as Roost does."""
    client = await _fruit_tree(imap)
    reply = await client.ok('LIST (SUBSCRIBED) "" "Fruit/*"')
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana',
        b'* LIST (\\NonExistent \\Subscribed) "/" Fruit/Peach',
    ]


async def test_list_recursivematch_childinfo_only_for_names_not_matching(
    imap: ImapServer,
) -> None:
    """RFC 5258 §3.5: with RECURSIVEMATCH, CHILDINFO marks a name that does not itself
    satisfy the selection but has children that do — including a parent that does
    not exist (Tofu, \\NonExistent). Vegetable is itself subscribed, so it gets no
    CHILDINFO. Dovecot 2.3 also adds CHILDINFO to Vegetable; the RFC's examples do
    not, and Roost follows them."""
    client = await _fruit_tree(imap)
    reply = await client.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    listed = [line for line in reply.untagged if b'"/" INBOX' not in line]
    assert b'* LIST (\\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))' in listed
    assert b'* LIST (\\NonExistent) "/" Tofu ("CHILDINFO" ("SUBSCRIBED"))' in listed
    assert b'* LIST (\\HasChildren \\Subscribed) "/" Vegetable' in listed
    assert not [line for line in listed if b"Fruit/" in line or b"Tofu/" in line]


# ---- 1. RFC 9051 §2.3.1, §6.3.12: bare LF is stored as CRLF --------------------------

LF_MESSAGE = (
    b"From: alice@example.org\nTo: bob@example.org\nSubject: bare LF\n"
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
    b"--b\nContent-Type: text/plain\n\nfirst line\nsecond line\r\nthird\n"
    b"--b--\n"
)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _literal(line: bytes) -> bytes:
    """The literal's bytes in a one-item FETCH response line."""
    match = re.search(rb"\{(\d+)\}\r\n", line)
    assert match, line
    start = match.end()
    return line[start : start + int(match.group(1))]


async def _check_lf_message_served_as_crlf(client: ImapClient) -> None:
    expected = _crlf(LF_MESSAGE)
    await client.ok("SELECT INBOX")
    size = await client.ok("FETCH 1 (RFC822.SIZE)")
    assert size.untagged == [f"* 1 FETCH (RFC822.SIZE {len(expected)})".encode()]
    whole = await client.ok("FETCH 1 (BODY.PEEK[])")
    assert _literal(whole.untagged[0]) == expected
    header_end = expected.index(b"\r\n\r\n") + 4
    text = await client.ok("FETCH 1 (BODY.PEEK[TEXT])")
    assert _literal(text.untagged[0]) == expected[header_end:]
    part = await client.ok("FETCH 1 (BODY.PEEK[1])")
    assert _literal(part.untagged[0]) == b"first line\r\nsecond line\r\nthird"
    fields = await client.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT TO)])")
    assert _literal(fields.untagged[0]) == b"To: bob@example.org\r\nSubject: bare LF\r\n\r\n"


async def test_bare_lf_message_is_stored_and_served_as_crlf(imap: ImapServer) -> None:
    """RFC 9051 §2.3.1 and §6.3.12: messages are CRLF. A message APPENDed with bare LF
    (and one stray CRLF) is normalised on the way in, as Dovecot does, so RFC822.SIZE,
    BODY[], BODY[TEXT], BODY[1] and HEADER.FIELDS all agree on CRLF bytes."""
    client = await imap.login()
    await client.append("INBOX", LF_MESSAGE)
    await _check_lf_message_served_as_crlf(client)


async def test_bare_lf_spooled_message_is_normalised_too(tmp_path: Path) -> None:
    """The same for a literal big enough to be spooled to a file on its way in."""
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(spool_threshold=64))
    try:
        await handle.add_user("alice")
        client = await handle.login()
        await client.append("INBOX", LF_MESSAGE)
        await _check_lf_message_served_as_crlf(client)
    finally:
        await stop_imap_server(handle, server)


async def test_binary_literal8_message_is_kept_byte_exact(imap: ImapServer) -> None:
    """RFC 3516 §4.4: a literal8 APPEND carries binary content, where 0x0A is data, not
    a line end; Roost stores it exactly as sent, and BINARY[1] returns the part's bytes.
    Dovecot 2.3 also returns such a part byte-exact from BINARY[1] (it serves BODY[]
    re-encoded as base64, which Roost does not)."""
    body = b"ab\ncd\r\n"
    binary = (
        b"From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n" + body
    )
    client = await imap.login()
    await client.ok(f"APPEND INBOX ~{{{len(binary)}+}}\r\n".encode() + binary)
    await client.ok("SELECT INBOX")
    size = await client.ok("FETCH 1 (RFC822.SIZE BINARY.SIZE[1])")
    assert size.untagged == [f"* 1 FETCH (RFC822.SIZE {len(binary)} BINARY.SIZE[1] 7)".encode()]
    part = await client.ok("FETCH 1 (BINARY.PEEK[1])")
    assert _literal(part.untagged[0].replace(b"~{", b"{")) == body


# ---- 8. RFC 3501 §2.3.2, §6.3.2, §7.3.2: \Recent for IMAP4rev1 sessions -------------


async def test_examine_sees_recent_without_claiming_it(imap: ImapServer) -> None:
    """RFC 3501 §2.3.2: \\Recent means this session is the first to be told of the
    message; §6.3.2: EXAMINE must not make a message lose \\Recent. So an EXAMINE before
    any SELECT reports them (``* 2 RECENT``, §7.3.2), and the SELECT after it still gets
    them; an EXAMINE after that SELECT gets none. Dovecot 2.3 answers exactly so."""
    writer = await imap.login()
    for i in range(2):
        await writer.append("INBOX", message(f"m{i}"))
    examiner = await imap.login()
    assert b"* 2 RECENT" in (await examiner.ok("EXAMINE INBOX")).untagged
    flags = await examiner.ok("FETCH 1:* (FLAGS)")
    assert flags.untagged == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
    selector = await imap.login()
    assert b"* 2 RECENT" in (await selector.ok("SELECT INBOX")).untagged
    late = await imap.login()
    assert b"* 0 RECENT" in (await late.ok("EXAMINE INBOX")).untagged


async def test_new_mail_is_recent_to_an_examining_session_until_claimed(
    imap: ImapServer,
) -> None:
    """RFC 3501 §7.3.2: a read-only session told of new mail first sees it as recent,
    without claiming it; a read-write session that then selects still claims it."""
    examiner = await imap.login()
    await examiner.ok("EXAMINE INBOX")
    writer = await imap.login()
    await writer.append("INBOX", message("new"))
    noop = await examiner.ok("NOOP")
    assert noop.untagged == [b"* 1 EXISTS", b"* 1 RECENT"]
    selector = await imap.login()
    assert b"* 1 RECENT" in (await selector.ok("SELECT INBOX")).untagged
    status = await writer.ok("STATUS INBOX (RECENT)")
    assert status.untagged == [b"* STATUS INBOX (RECENT 0)"]


# ---- 9. RFC 5465 §5: MessageNew and MessageExpunge only together ---------------------


async def test_notify_message_new_or_expunge_alone_is_bad_in_every_filter(
    imap: ImapServer,
) -> None:
    """RFC 5465 §5: "If one of MessageNew or MessageExpunge is specified, then both
    events MUST be specified. Otherwise, the server MUST respond with the tagged BAD
    response" (and the §8 ABNF comment: they "MUST always be specified together"); the
    same for FlagChange without both. The rule names no filter, so it holds for a
    STATUS-only or a mailboxes filter as much as for SELECTED. Roost answers exactly
    so. Dovecot 2.3 enforces it only for SELECTED and accepts the others with OK; the
    RFC does not allow that, so Roost does not follow it. A refused NOTIFY sends no
    STATUS, and a correct one afterwards still works."""
    client = await imap.login()
    for command in (
        "NOTIFY SET STATUS (personal (MessageNew))",
        "NOTIFY SET STATUS (personal (MessageExpunge))",
        "NOTIFY SET (mailboxes INBOX (MessageNew))",
        "NOTIFY SET STATUS (mailboxes INBOX (MessageExpunge))",
        "NOTIFY SET (mailboxes INBOX (FlagChange))",
        "NOTIFY SET (subtree INBOX (MessageNew FlagChange))",
        "NOTIFY SET (selected (MessageNew))",
    ):
        reply = await client.bad(command)
        assert reply.untagged == [], command
    reply = await client.ok("NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge))")
    assert [line[:16] for line in reply.untagged] == [b"* STATUS INBOX ("]


# ---- 2. RFC 9051 §6.4.4: TEXT covers the headers of body parts -----------------------

WITH_ATTACHMENT = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
    b"--x\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b'--x\r\nContent-Type: application/pdf; name="budget-2026.pdf"\r\n'
    b'Content-Disposition: attachment; filename="budget-2026.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
    b"--x\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''%C3%9Cbersicht.xlsx\r\n\r\nxx\r\n"
    b"--x--\r\n"
)


async def test_search_text_finds_words_only_in_a_part_header(imap: ImapServer) -> None:
    """RFC 9051 §6.4.4: TEXT matches "the header or body of the message", and the body
    of a multipart message holds its parts' headers — so an attachment's file name,
    also an RFC 2231 encoded one, is found. Dovecot 2.3 finds it with TEXT too.
    Dovecot's BODY leaves part headers out; Roost's BODY finds them, since the body
    (BODY[TEXT]) literally contains them and RFC 9051 defines no narrower body."""
    client = await imap.login()
    await client.append("INBOX", WITH_ATTACHMENT)
    await client.append("INBOX", message("plain", body="nothing attached\r\n"))
    await client.ok("SELECT INBOX")
    for key in ("TEXT budget-2026", "TEXT application/pdf", 'TEXT "übersicht"'):
        command = f"SEARCH CHARSET UTF-8 {key}" if not key.isascii() else f"SEARCH {key}"
        assert (await client.ok(command)).untagged == [b"* SEARCH 1"], key
    assert (await client.ok("SEARCH BODY budget-2026")).untagged == [b"* SEARCH 1"]
    assert (await client.ok("SEARCH TEXT nothing")).untagged == [b"* SEARCH 2"]


# ---- 3. RFC 9051 §6.4.4, RFC 5256 §3, RFC 5957: groups in address search and sort ----

# (Cc, To) of messages 1-8; None: no such field.
GROUPS: list[tuple[str | None, str | None]] = [
    ("Team: zed@x.org, amy@y.org;", "undisclosed-recipients:;"),
    ("bob@b.org", '"Carl" <carl@c.org>'),
    (None, "Zoe"),
    ('"Anna" <anna@a.org>', "Group2:;"),
    ("mike", 'Alpha Team: "Yves" <yves@y.org>;'),
    ("Beta: ;", "<x@x.org>"),
    ("aaron@z.org", '"" <quinn@q.org>'),
    (None, None),
]


async def _group_mailbox(imap: ImapServer) -> ImapClient:
    client = await imap.login()
    for number, (cc, to) in enumerate(GROUPS, start=1):
        header = f"From: s{number}@example.org\r\nSubject: m{number}\r\n"
        header += f"To: {to}\r\n" if to is not None else ""
        header += f"Cc: {cc}\r\n" if cc is not None else ""
        await client.append("INBOX", (header + "\r\nbody\r\n").encode())
    await client.ok("SELECT INBOX")
    return client


async def test_address_search_matches_group_names(imap: ImapServer) -> None:
    """RFC 9051 §6.4.4: TO/CC/BCC/FROM match "the specified string in the envelope
    structure's ... field"; a group's display name is part of that field (ENVELOPE
    lists it as ``(NIL NIL "undisclosed-recipients" NIL)``), so it is matched as text
    like any name. Dovecot 2.3 gives exactly these answers."""
    client = await _group_mailbox(imap)
    for key, expected in (
        ("TO undisclosed", b"* SEARCH 1"),
        ("CC Team", b"* SEARCH 1"),
        ("TO Group2", b"* SEARCH 4"),
        ('TO "Alpha Team"', b"* SEARCH 5"),
        ("CC Beta", b"* SEARCH 6"),
        ("CC zed", b"* SEARCH 1"),
        ("TO Yves", b"* SEARCH 5"),
        ("TO Zoe", b"* SEARCH 3"),
        ("CC mike", b"* SEARCH 5"),
    ):
        assert (await client.ok(f"SEARCH {key}")).untagged == [expected], key


async def test_sort_cc_and_displayto_with_groups_and_missing_addresses(
    imap: ImapServer,
) -> None:
    """RFC 5256 §3: CC/TO sort by the addr-mailbox of the first address, which for a
    group is its name (the ENVELOPE's first entry); a missing field is the empty
    string and sorts first; ties keep sequence order, also under REVERSE. RFC 5957 §2:
    DISPLAYTO uses the first address's display name — a group's name — or, with none
    or an empty one, the address. Dovecot 2.3 sorts these eight exactly so."""
    client = await _group_mailbox(imap)
    answers = {
        "SORT (CC) UTF-8 ALL": b"* SORT 3 8 7 4 6 2 5 1",
        "SORT (REVERSE CC) UTF-8 ALL": b"* SORT 1 5 2 6 4 7 3 8",
        "SORT (TO) UTF-8 ALL": b"* SORT 8 5 2 4 7 1 6 3",
        "SORT (DISPLAYTO) UTF-8 ALL": b"* SORT 8 5 2 4 7 1 6 3",
        "SORT (REVERSE DISPLAYTO) UTF-8 ALL": b"* SORT 3 6 1 7 4 2 5 8",
    }
    for command, expected in answers.items():
        assert (await client.ok(command)).untagged == [expected], command

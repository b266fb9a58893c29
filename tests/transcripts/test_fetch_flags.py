"""FETCH of only UID, FLAGS and MODSEQ (a whole-mailbox flag sync) takes a fast path
(commands/fetch.py ``_flag_batch``, serializer ``FlagFetchBatch``). Its answers must be
byte for byte the general path's, in every state a session can be in: \\Recent for an
IMAP4rev1 session (RFC 3501 §2.3.2), MODSEQ and CHANGEDSINCE (RFC 7162 §3.1.4), messages
expunged by another session but not yet announced (RFC 9051 §7.5.1, EXPUNGEISSUED),
sequence sets that name them, and batches smaller than the mailbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roost.imap.commands import fetch as fetch_module
from roost.imap.context import ImapLimits
from tests.conftest import ImapServer, backend_url, start_imap_server, stop_imap_server
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

FLAGS = ["\\Seen", "", "$Label1 \\Flagged", "\\Seen $Label1", "\\Answered", "", "\\Seen", ""]
# Run by the session under test; the other session changes the mailbox in between.
COMMANDS = [
    "FETCH 1:* (FLAGS)",
    "FETCH 2:5,7 (FLAGS UID)",
    "FETCH 6 (FLAGS)",  # only an expunged message: nothing but EXPUNGEISSUED
    "UID FETCH 1:* (UID FLAGS)",  # after it, the expunges are announced
    "UID FETCH 1:* (FLAGS MODSEQ)",
    "FETCH 1:* (MODSEQ)",
    "UID FETCH 3:* (FLAGS) (CHANGEDSINCE {base})",
    "FETCH 1:* (UID FLAGS MODSEQ) (CHANGEDSINCE {changed})",
    "UID FETCH 4:6 (FLAGS)",
    "UID FETCH 1:* (FLAGS)",  # UID added by the server; no modseqs read
    "FETCH 1:* (UID FLAGS MODSEQ)",
    "UID FETCH 2,4:5,8 (UID FLAGS)",  # gaps inside a batch: the store filters its scan
]


async def transcript(tmp_path: Path, *, rev2: bool, store_backend: str) -> list[bytes]:
    """Every line the session under test received, with its commands; on a store of
    its own."""
    limits = ImapLimits(fetch_batch_size=3, flag_fetch_batch_size=3)
    async with backend_url(store_backend) as url:
        handle, server = await start_imap_server(tmp_path, limits=limits, store_url=url)
        try:
            return await _session_lines(handle, rev2=rev2)
        finally:
            await stop_imap_server(handle, server)


async def _session_lines(handle: ImapServer, *, rev2: bool) -> list[bytes]:
    await handle.add_user("alice")
    client = await handle.login()
    other = await handle.login()
    appender = await handle.login()  # selects nothing, so claims no \Recent
    for n, flags in enumerate(FLAGS[:4]):
        await appender.append("INBOX", message(f"m{n}"), flags=flags)
    await other.ok("SELECT INBOX")  # \Recent of UIDs 1-4 is the other session's
    if rev2:
        await client.ok("ENABLE IMAP4rev2")
    reply = await client.ok("SELECT INBOX")
    base = int(reply.lines_starting(b"* OK [HIGHESTMODSEQ ")[0].split()[3][:-1])
    for n, flags in enumerate(FLAGS[4:], 4):
        await appender.append("INBOX", message(f"m{n}"), flags=flags)
    await client.ok("NOOP")  # UIDs 5-8 are new to it, and \Recent for it
    await other.ok("NOOP")
    await other.ok("STORE 2,6 +FLAGS (\\Deleted $Later)")
    reply = await other.ok("FETCH 1:* (MODSEQ)")
    changed = max(int(m) for m in re.findall(rb"MODSEQ \((\d+)\)", b" ".join(reply.untagged)))
    await other.ok("UID STORE 7 -FLAGS (\\Seen)")
    await other.ok("EXPUNGE")  # the session under test is not told during FETCH
    lines: list[bytes] = []
    for command in COMMANDS:
        reply = await client.command(command.format(base=base, changed=changed))
        lines += [command.encode(), *reply.untagged, reply.line.split(b" ", 1)[1]]
    return lines


@pytest.mark.parametrize("rev2", [False, True], ids=["imap4rev1", "imap4rev2"])
async def test_fast_path_answers_as_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rev2: bool, store_backend: str
) -> None:
    calls: list[int] = []
    real = fetch_module._flag_batch

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch_module, "_flag_batch", counted)
    fast = await transcript(tmp_path / "fast", rev2=rev2, store_backend=store_backend)
    assert calls, "the fast path was not taken"
    monkeypatch.setattr(fetch_module, "_FLAG_ITEMS", frozenset())
    fetch_module._plan.cache_clear()  # plans are made with _FLAG_ITEMS
    calls.clear()
    try:
        general = await transcript(tmp_path / "general", rev2=rev2, store_backend=store_backend)
    finally:
        monkeypatch.undo()
        fetch_module._plan.cache_clear()
    assert not calls

    assert fast == general
    text = b"\n".join(fast)
    assert (b"\\Recent" in text) is not rev2
    assert b"[EXPUNGEISSUED]" in text  # FETCH 1:* still names the expunged messages
    assert b"MODSEQ (" in text and b"$Later" in text
    # CHANGEDSINCE: only UID 7's change is after ``changed``.
    since_changed = next(command for command in COMMANDS if "{changed}" in command)
    changes = fast[fast.index(since_changed.encode()) + 1 :][:2]
    assert changes[0].startswith(b"* 5 FETCH (UID 7 FLAGS (")
    assert changes[1] == b"OK FETCH completed"

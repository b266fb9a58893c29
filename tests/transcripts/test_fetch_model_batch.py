"""FETCH of items that come from the stored metadata and MIME model only (ENVELOPE,
BODYSTRUCTURE, BODY, UID, RFC822.SIZE, INTERNALDATE, FLAGS, ...) is answered a batch at
a time as columns (commands/fetch.py ``_model_batch``, serializer ``FetchBatch``). Its
answers must be byte for byte the general path's, in every state a session can be in:
several batches, messages expunged by another session but not yet announced (RFC 9051
§7.5.1), messages new since the last sync point, CHANGEDSINCE (RFC 7162 §3.1.4.1),
UIDONLY's UIDFETCH responses (RFC 9586 §3.3) and IMAP4rev2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roost.imap.commands import fetch as fetch_module
from roost.imap.context import ImapLimits
from tests.conftest import start_imap_server, stop_imap_server
from tests.support.imap_client import message

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages"
# Dates of APPEND without a date are the clock's: masked for the comparison.
_DATES = re.compile(rb'(INTERNALDATE|SAVEDATE) "[^"]*"')
FLAGS = ["\\Seen", "", "$Label1 \\Flagged", "\\Seen $Label1", "\\Answered", "", "\\Seen", ""]
COMMANDS = [
    "UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
    "UID FETCH 1:* (UID ENVELOPE)",
    "UID FETCH 2:5,7 (BODY RFC822.SIZE INTERNALDATE)",
    "UID FETCH 6 (ENVELOPE)",  # only an expunged message
    "UID FETCH 1:* (FLAGS ENVELOPE MODSEQ EMAILID THREADID SAVEDATE)",
    "UID FETCH 3:* (BODYSTRUCTURE) (CHANGEDSINCE {changed})",
    "UID FETCH 1:* (RFC822.SIZE)",
]
NUMBERED = [
    "FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
    "FETCH 2:5,7 (UID BODY FLAGS)",
    "FETCH 6 (ENVELOPE)",  # only an expunged message: EXPUNGEISSUED
    "FETCH 1:* ALL",
    "FETCH 2:4 FULL",
]


async def transcript(tmp_path: Path, *, mode: str) -> list[bytes]:
    """Every line the session under test received, with its commands."""
    limits = ImapLimits(fetch_batch_size=3)
    handle, server = await start_imap_server(tmp_path, limits=limits)
    await handle.add_user("alice")
    corpus = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))[:40]]
    try:
        client = await handle.login()
        other = await handle.login()
        appender = await handle.login()
        for n, flags in enumerate(FLAGS[:4]):
            await appender.append("INBOX", message(f"m{n}"), flags=flags)
        if mode != "imap4rev1":
            await client.ok(f"ENABLE {'UIDONLY' if mode == 'uidonly' else 'IMAP4rev2'}")
        await client.ok("ENABLE CONDSTORE")
        await client.ok("SELECT INBOX")
        await other.ok("SELECT INBOX")
        for n, flags in enumerate(FLAGS[4:], 4):
            await appender.append("INBOX", message(f"m{n}"), flags=flags)
        await client.ok("NOOP")
        await other.ok("NOOP")
        reply = await other.ok("UID FETCH 1:* (MODSEQ)")
        await other.ok("STORE 2,6 +FLAGS (\\Deleted $Later)")
        changed = max(int(line.split(b"MODSEQ (")[1].split(b")")[0]) for line in reply.untagged)
        await other.ok("EXPUNGE")  # the session under test is told at its sync point
        for data in corpus:  # new to the session until a sync point
            if data:
                await appender.append("INBOX", data)
        commands = ([] if mode == "uidonly" else NUMBERED) + COMMANDS
        lines: list[bytes] = []
        for command in commands:
            reply = await client.command(command.format(changed=changed))
            lines += [command.encode(), *reply.untagged, reply.line.split(b" ", 1)[1]]
        return [_DATES.sub(rb'\1 "date"', line) for line in lines]
    finally:
        await stop_imap_server(handle, server)


@pytest.mark.parametrize("mode", ["imap4rev1", "imap4rev2", "uidonly"])
async def test_batches_answer_as_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    calls: list[int] = []
    real = fetch_module._model_batch

    def counted(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        if result is not None:
            calls.append(1)
        return result

    monkeypatch.setattr(fetch_module, "_model_batch", counted)
    batched = await transcript(tmp_path / "batched", mode=mode)
    assert calls, "the batch path was not taken"
    monkeypatch.setattr(fetch_module, "_model_batch", lambda *args: None)
    general = await transcript(tmp_path / "general", mode=mode)

    assert batched == general
    text = b"\n".join(batched)
    assert b"ENVELOPE (" in text and b"BODYSTRUCTURE (" in text
    assert b'INTERNALDATE "date"' in text and b'SAVEDATE "date"' in text
    assert (b"UIDFETCH" in text) is (mode == "uidonly")
    if mode != "uidonly":
        assert b"[EXPUNGEISSUED]" in text

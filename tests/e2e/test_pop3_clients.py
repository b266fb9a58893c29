"""Real POP3 clients against a real Roost: Python's poplib over STLS and over implicit
TLS (995), fetchmail over STLS and getmail6 over implicit TLS, each in "keep" and in
"delete" mode — with an IMAP session idling on the same INBOX all the while, which
must be told of every expunge (and of none when the client keeps its mail).

poplib is synchronous, so it runs in a thread while the server runs on the test's event
loop; fetchmail and getmail run as processes with HOME in the test's directory, and
trust the server's self-signed certificate explicitly (fetchmail ``sslcertfile`` with
``sslcertck``, getmail ``ca_certs``). Each is skipped with a reason when the program is
missing; ``.ci/run`` installs them.
"""

from __future__ import annotations

import asyncio
import os
import poplib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.base import SEEN
from tests.conftest import PASSWORD
from tests.pop3.conftest import Pop3Server, pop3_server
from tests.support.imap_client import ImapClient, message

needs_fetchmail = pytest.mark.skipif(
    shutil.which("fetchmail") is None, reason="fetchmail not installed (Debian package fetchmail)"
)
needs_getmail = pytest.mark.skipif(
    shutil.which("getmail") is None, reason="getmail not installed (Debian package getmail6)"
)

BIG_BODY = b"".join(b"line %06d of a long message\r\n" % n for n in range(12_000))
MESSAGES = [
    message("plain"),
    # Bare LF line ends, lines that need byte-stuffing, a lone ".", a NUL, no final EOL.
    b"Subject: tricky\nMessage-ID: <tricky@test>\n\n.leading dot\n..two\n.\nnul\0here\nend",
    message("big", body=BIG_BODY.decode()),
    message("8bit", body="Grüße aus Köln.\r\n"),
]


def on_the_wire(raw: bytes) -> bytes:
    """What a client receives after un-stuffing (roost.pop3.wire.message)."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", raw).replace(b"\0", b"\x80")
    return data if not data or data.endswith(b"\n") else data + b"\r\n"


def as_delivered(raw: bytes) -> bytes:
    """What fetchmail and getmail hand to a local delivery program: LF line ends."""
    return on_the_wire(raw).replace(b"\r\n", b"\n")


def without_added_headers(data: bytes) -> bytes:
    """Drop the trace fields the clients add on top (fetchmail Received:, getmail
    Return-Path:)."""
    while data.startswith((b"Received:", b"Return-Path:")):
        end = data.index(b"\n")
        while data[end + 1 : end + 2] in (b" ", b"\t"):
            end = data.index(b"\n", end + 1)
        data = data[end + 1 :]
    return data


def delivered(directory: Path) -> list[bytes]:
    return sorted(without_added_headers(p.read_bytes()) for p in directory.rglob("msg.*"))


class InboxWatcher:
    """An IMAP session idling on INBOX (RFC 2177) while a POP3 client works."""

    def __init__(self, client: ImapClient, tag: str) -> None:
        self.client = client
        self.tag = tag

    @classmethod
    async def start(cls, server: Pop3Server) -> InboxWatcher:
        client = await server.imap()
        return cls(client, await client.idle())

    async def heard(self) -> list[bytes]:
        """End the IDLE; the server tells everything pending before its OK, so this is
        complete for whatever finished before the call."""
        reply = await self.client.done(self.tag)
        assert reply.status == "OK"
        return reply.untagged

    async def restart(self) -> None:
        self.tag = await self.client.idle()


def expunges(lines: list[bytes]) -> int:
    return sum(line.endswith(b" EXPUNGE") for line in lines)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    async with pop3_server(tmp_path, allow_plaintext_auth=False) as handle:
        yield handle


async def run(*command: str, home: Path, ok: tuple[int, ...] = (0,)) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home)},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    text = output.decode("utf-8", "replace")
    assert process.returncode in ok, f"{command[0]} exited with {process.returncode}:\n{text}"
    return text


# ---- poplib ----------------------------------------------------------------------------


def poplib_session(pop: poplib.POP3, expected: list[bytes]) -> list[bytes]:
    """A full session: STAT, LIST, UIDL, TOP, RETR of everything, DELE, RSET, DELE of
    everything, QUIT. Returns the UIDLs."""
    assert pop.user("alice").startswith(b"+OK")
    assert pop.pass_(PASSWORD) == b"+OK Signed in; 4 messages"
    sizes = [len(m) for m in expected]
    assert pop.stat() == (len(expected), sum(sizes))
    _, listing, _ = pop.list()
    assert listing == [b"%d %d" % (n, size) for n, size in enumerate(sizes, 1)]
    _, uidls, _ = pop.uidl()
    uids = [line.split()[1] for line in uidls]
    assert len(set(uids)) == len(expected)
    _, top_lines, _ = pop.top(2, 1)
    assert top_lines == [b"Subject: tricky", b"Message-ID: <tricky@test>", b"", b".leading dot"]
    for number, wanted in enumerate(expected, 1):
        _, lines, octets = pop.retr(number)
        assert b"".join(line + b"\r\n" for line in lines) == wanted
        assert octets == len(wanted) == sizes[number - 1]  # poplib counts what it kept
    assert pop.dele(1).startswith(b"+OK")
    assert pop.rset().startswith(b"+OK")
    for number in range(1, len(expected) + 1):
        pop.dele(number)
    assert pop.noop() == b"+OK"
    assert pop.quit() == b"+OK Roost POP3 server signing off (4 deleted)"
    return uids


async def test_poplib_over_stls(server: Pop3Server) -> None:
    await server.deliver(*MESSAGES)
    watcher = await InboxWatcher.start(server)

    def session() -> list[bytes]:
        pop = poplib.POP3(server.host, server.pop3_port, timeout=30)
        capabilities = pop.capa()
        assert "STLS" in capabilities and "USER" not in capabilities
        pop.stls(server.client_tls)
        capabilities = pop.capa()
        assert {"USER", "UIDL", "TOP", "PIPELINING", "RESP-CODES"} <= set(capabilities)
        assert capabilities["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        return poplib_session(pop, [on_the_wire(m) for m in MESSAGES])

    await asyncio.to_thread(session)
    assert expunges(await watcher.heard()) == len(MESSAGES)
    assert await server.inbox() == {}


async def test_poplib_over_implicit_tls_keeps_mail(server: Pop3Server) -> None:
    uids = await server.deliver(*MESSAGES)
    watcher = await InboxWatcher.start(server)

    def session() -> tuple[list[bytes], list[bytes]]:
        first = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.client_tls)
        first.user("alice")
        first.pass_(PASSWORD)
        _, listing, _ = first.uidl()
        contents = [b"\r\n".join(first.retr(n)[1]) + b"\r\n" for n in range(1, len(MESSAGES) + 1)]
        # A second session while this one holds the maildrop gets [IN-USE].
        second = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.client_tls)
        second.user("alice")
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            second.pass_(PASSWORD)
        second.quit()
        first.quit()
        third = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.client_tls)
        third.user("alice")
        third.pass_(PASSWORD)
        _, again, _ = third.uidl()
        third.quit()
        assert again == listing  # UIDLs stable across sessions
        return contents, listing

    contents, _ = await asyncio.to_thread(session)
    assert contents == [on_the_wire(m) for m in MESSAGES]
    heard = await watcher.heard()
    assert expunges(heard) == 0
    assert len(heard) == len(MESSAGES)  # each one's \Seen, set by RETR at QUIT
    assert await server.inbox() == {uid: frozenset({SEEN}) for uid in uids}


# ---- fetchmail -------------------------------------------------------------------------


def fetchmail_rc(server: Pop3Server, home: Path, out: Path, *, keep: bool) -> Path:
    """Over STLS on the plain port (fetchmail asks for it with sslproto and no ssl),
    verifying the certificate; each message is written to a file by an MDA."""
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto POP3 port {server.pop3_port} uidl\n"
        f'    user "alice" there with password "{PASSWORD}" is "alice" here\n'
        f'    sslproto "TLS1.2+" sslcertck sslcertfile "{server.cert}" sslcommonname "localhost"\n'
        f'    mda "cat > {out}/msg.$$"\n'
        f"    {'keep' if keep else 'no keep'} no rewrite\n"
    )
    rc.chmod(0o600)  # fetchmail refuses a readable rc file
    return rc


async def fetchmail(rc: Path, home: Path, *, expect_mail: bool = True) -> str:
    # Exit status 0: mail was delivered; 1: there was none (fetchmail(1), EXIT CODES).
    return await run(
        "fetchmail", "-f", str(rc), "--nosyslog", "-v", home=home, ok=(0,) if expect_mail else (1,)
    )


@needs_fetchmail
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
async def test_fetchmail(server: Pop3Server, tmp_path: Path, keep: bool) -> None:
    await server.deliver(*MESSAGES)
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    rc = fetchmail_rc(server, home, out, keep=keep)
    watcher = await InboxWatcher.start(server)

    log = await fetchmail(rc, home)
    assert "upgrade to TLS succeeded" in log
    assert delivered(out) == sorted(as_delivered(m) for m in MESSAGES)
    heard = await watcher.heard()
    if keep:
        assert expunges(heard) == 0
        assert len(await server.inbox()) == len(MESSAGES)
        # UIDL: a second run downloads nothing again.
        await watcher.restart()
        await fetchmail(rc, home, expect_mail=False)
        assert len(delivered(out)) == len(MESSAGES)
    else:
        assert expunges(heard) == len(MESSAGES)
        assert await server.inbox() == {}
        await watcher.restart()

    # A message that arrives later is fetched next time, alone.
    await server.deliver(message("later"))
    await fetchmail(rc, home)
    assert len(delivered(out)) == len(MESSAGES) + 1
    assert as_delivered(message("later")) in delivered(out)
    assert expunges(await watcher.heard()) == (0 if keep else 1)


# ---- getmail ---------------------------------------------------------------------------


def getmail_rc(server: Pop3Server, home: Path, maildir: Path, *, keep: bool) -> Path:
    """Over implicit TLS (995), verifying the certificate. getmail delivers to a
    Maildir, except as root, where it refuses to (by design): then a delivery command
    writes the same files."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    if os.geteuid() == 0:
        destination = (
            "type = MDA_external\npath = /bin/sh\n"
            f'arguments = ("-c", "cat > {maildir}/new/msg.$$")\nallow_root_commands = true\n'
        )
    else:
        destination = f"type = Maildir\npath = {maildir}/\nfilename_template = msg.%(unique)s\n"
    directory = home / "getmail"
    directory.mkdir()
    (directory / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\n"
        f"server = 127.0.0.1\nport = {server.pop3s_port}\n"
        f"username = alice\npassword = {PASSWORD}\nca_certs = {server.cert}\n\n"
        f"[destination]\n{destination}\n"
        "[options]\nverbose = 2\nread_all = false\n"
        f"delete = {'false' if keep else 'true'}\n"
        "delivered_to = false\nreceived = false\n"
    )
    return directory


async def getmail(directory: Path, home: Path) -> str:
    return await run("getmail", "--getmaildir", str(directory), "--rcfile", "getmailrc", home=home)


@needs_getmail
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
async def test_getmail(server: Pop3Server, tmp_path: Path, keep: bool) -> None:
    await server.deliver(*MESSAGES)
    home, maildir = tmp_path / "home", tmp_path / "Maildir"
    home.mkdir()
    directory = getmail_rc(server, home, maildir, keep=keep)
    watcher = await InboxWatcher.start(server)

    log = await getmail(directory, home)
    assert f"{len(MESSAGES)} messages" in log
    assert delivered(maildir) == sorted(as_delivered(m) for m in MESSAGES)
    heard = await watcher.heard()
    if keep:
        assert expunges(heard) == 0
        assert all(SEEN in flags for flags in (await server.inbox()).values())
        # getmail remembers UIDLs: the next run retrieves nothing.
        await watcher.restart()
        log = await getmail(directory, home)
        assert "0 messages" in log
        assert len(delivered(maildir)) == len(MESSAGES)
    else:
        assert expunges(heard) == len(MESSAGES)
        assert await server.inbox() == {}
        await watcher.restart()

    await server.deliver(message("later"))
    await getmail(directory, home)
    assert len(delivered(maildir)) == len(MESSAGES) + 1
    assert as_delivered(message("later")) in delivered(maildir)
    assert expunges(await watcher.heard()) == (0 if keep else 1)

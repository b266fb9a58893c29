"""Python's imaplib and IMAPClient against a real Roost, over STARTTLS and implicit TLS.

The clients are synchronous, so each scenario runs in a thread while the server runs on
the test's event loop.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.conftest import PASSWORD, ImapServer, start_imap_server, stop_imap_server
from tests.support.imap_client import message


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    handle, server = await start_imap_server(
        tmp_path, allow_plaintext_auth=False, implicit_tls=True
    )
    await handle.add_user("alice")
    try:
        yield handle
    finally:
        await stop_imap_server(handle, server)


@pytest.fixture
async def starttls_server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    handle, server = await start_imap_server(tmp_path, allow_plaintext_auth=False)
    await handle.add_user("alice")
    try:
        yield handle
    finally:
        await stop_imap_server(handle, server)


def imaplib_session(connection: imaplib.IMAP4) -> None:
    typ, _ = connection.login("alice", PASSWORD)
    assert typ == "OK"
    typ, data = connection.list()
    assert typ == "OK"
    assert any(b"\\Sent" in line and b"Sent" in line for line in data if isinstance(line, bytes))
    typ, data = connection.append("INBOX", "(\\Flagged)", None, message("via imaplib"))
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = connection.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = connection.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert b"Subject: via imaplib" in data[0][1]  # type: ignore[index]
    typ, data = connection.uid("STORE", "1", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and b"\\Seen" in data[0]
    typ, _ = connection.create("Projects/2026")
    assert typ == "OK"
    typ, data = connection.uid("COPY", "1", "Projects/2026")
    assert typ == "OK"
    typ, data = connection.status("Projects/2026", "(MESSAGES UIDNEXT)")
    assert data == [b"Projects/2026 (MESSAGES 1 UIDNEXT 2)"]
    connection.store("1", "+FLAGS", "\\Deleted")
    typ, data = connection.expunge()
    assert typ == "OK" and data == [b"1"]
    connection.close()
    connection.logout()


async def test_imaplib_over_implicit_tls(tls_server: ImapServer) -> None:
    def run() -> None:
        connection = imaplib.IMAP4_SSL(
            tls_server.host, tls_server.port, ssl_context=tls_server.client_tls
        )
        imaplib_session(connection)

    await asyncio.to_thread(run)


async def test_imaplib_over_starttls(starttls_server: ImapServer) -> None:
    def run() -> None:
        connection = imaplib.IMAP4(starttls_server.host, starttls_server.port)
        assert "LOGINDISABLED" in connection.capabilities
        connection.starttls(ssl_context=starttls_server.client_tls)
        assert "LOGINDISABLED" not in connection.capabilities
        imaplib_session(connection)

    await asyncio.to_thread(run)


def imapclient_session(client: IMAPClient) -> None:
    client.login("alice", PASSWORD)
    assert client.has_capability("UIDPLUS") and client.has_capability("MOVE")
    folders = {name: flags for flags, _, name in client.list_folders()}
    assert b"\\Trash" in folders["Trash"]
    assert client.find_special_folder(b"\\Sent") == "Sent"
    client.create_folder("Röstigraben")  # travels as modified UTF-7
    assert "Röstigraben" in {name for _, _, name in client.list_folders()}
    for n in range(5):
        client.append("INBOX", message(f"n{n}"), flags=[b"\\Seen"] if n % 2 else [])
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 5 and info[b"UIDNEXT"] == 6
    fetched = client.fetch(range(1, 6), ["FLAGS", "RFC822.SIZE", "BODY.PEEK[HEADER]"])
    assert sorted(fetched) == [1, 2, 3, 4, 5]
    assert b"\\Seen" in fetched[2][b"FLAGS"]
    client.add_flags([1, 2], [b"\\Flagged", b"$Important"])
    assert b"$Important" in client.get_flags([1])[1]
    client.move([3], "Archive")
    assert client.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 1
    client.delete_messages([4])
    client.uid_expunge([4])
    assert sorted(client.fetch(range(1, 6), ["UID"])) == [1, 2, 5]
    client.rename_folder("Röstigraben", "Röschti")
    client.delete_folder("Röschti")
    client.idle()
    client.idle_done()
    client.logout()


async def test_imapclient_over_implicit_tls(tls_server: ImapServer) -> None:
    def run() -> None:
        client = IMAPClient(
            tls_server.host, port=tls_server.port, ssl=True, ssl_context=tls_server.client_tls
        )
        imapclient_session(client)

    await asyncio.to_thread(run)


async def test_imapclient_over_starttls(starttls_server: ImapServer) -> None:
    def run() -> None:
        client = IMAPClient(starttls_server.host, port=starttls_server.port, ssl=False)
        client.starttls(ssl_context=starttls_server.client_tls)
        imapclient_session(client)

    await asyncio.to_thread(run)


async def test_imapclient_idle_hears_other_connection(tls_server: ImapServer) -> None:
    context: ssl.SSLContext = tls_server.client_tls

    def watcher(ready: asyncio.Event, loop: asyncio.AbstractEventLoop) -> list[object]:
        client = IMAPClient(tls_server.host, port=tls_server.port, ssl=True, ssl_context=context)
        client.login("alice", PASSWORD)
        client.select_folder("INBOX")
        client.idle()
        loop.call_soon_threadsafe(ready.set)
        responses = client.idle_check(timeout=10)
        client.idle_done()
        client.logout()
        return responses

    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    task = asyncio.ensure_future(asyncio.to_thread(watcher, ready, loop))
    await ready.wait()
    writer = await tls_server.connect(tls=True)
    await writer.login("alice", PASSWORD)
    await writer.append("INBOX", message("pushed"))
    responses = await task
    assert (1, b"EXISTS") in responses

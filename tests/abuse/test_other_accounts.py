"""Nobody gets into another account's mail, whatever name they use for it.

Another account's mailbox is reachable only under "Other Users/<owner>/" and only once
its owner granted rights on it (ACL, RFC 4314; see tests/transcripts/
test_shared_folders.py); bob grants alice nothing here. Alice tries to reach bob's
mailboxes through path tricks, namespace prefixes, encodings and case, with every
command that takes a mailbox name; bob's mail must stay exactly as it was and none of
it may show in any reply to alice. Sign-in tricks (names with "..", SASL authzid) must
not open bob's account either.
"""

from __future__ import annotations

import base64

from tests.abuse.conftest import StartServer
from tests.conftest import PASSWORD, ImapServer
from tests.support.imap_client import ImapClient, message

BOB_SECRET = b"Subject: bob-only-secret\r\n\r\nbob's private words\r\n"


def _bob_names(account_dir: str) -> list[str]:
    names = [
        "../bob/INBOX",
        "../bob",
        "../../bob/INBOX",
        "..%2fbob%2fINBOX",
        "%2e%2e/bob/INBOX",
        "%2Fbob%2FINBOX",
        "~bob",
        "~bob/INBOX",
        "~bob/Secret",
        "~/bob/INBOX",
        "#users/bob",
        "#users/bob/INBOX",
        "#user/bob/Secret",
        "#shared/bob/INBOX",
        "#public/Secret",
        "/bob",
        "/bob/INBOX",
        "bob",
        "bob/INBOX",
        "BOB/Secret",
        "bob@example.org/INBOX",
        "Other Users/bob/INBOX",
        "Other Users/bob/Secret",
        "other users/BOB/Secret",
        "Other Users/alice/../bob/INBOX",
        "Other Users/bob",
        "Other Users",
        "user/bob/INBOX",
        "user.bob.INBOX",
        "user.bob",
        "Secret",
        "\\bob\\INBOX",
        "..\\bob\\INBOX",
        "&AC4ALgAv-bob/INBOX",  # "../" in modified UTF-7
        "&AH4-bob/INBOX",  # "~"
        "&ACM-users/bob/INBOX",  # "#"
        "INBOX/../../bob/INBOX",
        f"../{account_dir}/INBOX",
        f"../../accounts/{account_dir}/mail.db",
    ]
    return names


COMMANDS = [
    "SELECT {name}",
    "EXAMINE {name}",
    "STATUS {name} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)",
    "APPEND {name} {{16+}}\r\nSubject: planted",
    "COPY 1 {name}",
    "MOVE 1 {name}",
    "UID COPY 1:* {name}",
    "UID MOVE 1:* {name}",
    "DELETE {name}",
    "RENAME {name} Stolen",
    "SUBSCRIBE {name}",
    "UNSUBSCRIBE {name}",
    'LIST "" {name}',
    'LIST {name} "*"',
    "LSUB {name} *",
]


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _bob_state(handle: ImapServer) -> list[bytes]:
    """Everything of bob's a client can see: mailboxes, their status, every message."""
    bob = await handle.login("bob")
    lines = list((await bob.ok('LIST "" "*"')).untagged)
    for name in ("INBOX", "Secret", "Trash"):
        lines += (await bob.ok(f"STATUS {name} (MESSAGES UIDNEXT UIDVALIDITY)")).untagged
        await bob.ok(f"EXAMINE {name}")
        lines += (await bob.ok("FETCH 1:* (UID FLAGS BODY.PEEK[])")).untagged
    await bob.close()
    return lines


async def _alice_with_a_message(handle: ImapServer) -> ImapClient:
    alice = await handle.login()
    await alice.append("INBOX", message(subject="alice's own"))
    await alice.ok("SELECT INBOX")
    return alice


async def _setup_bob(handle: ImapServer) -> None:
    bob = await handle.login("bob")
    await bob.ok("CREATE Secret")
    await bob.append("INBOX", BOB_SECRET)
    await bob.append("Secret", BOB_SECRET)
    await bob.close()


def _account_dir(handle: ImapServer, name: str) -> str:
    found = [p.name for p in (handle.data_dir / "data" / "accounts").iterdir()]
    return next((d for d in found if d.startswith(name)), found[0])


async def test_other_accounts_mailboxes_cannot_be_named(start_server: StartServer) -> None:
    handle = await start_server()
    await _setup_bob(handle)
    bob_before = await _bob_state(handle)
    alice = await _alice_with_a_message(handle)
    leaked: list[tuple[str, bytes]] = []
    for name in _bob_names(_account_dir(handle, "bob")):
        for template in COMMANDS:
            if template.startswith(("COPY", "MOVE", "UID")):
                await alice.ok("SELECT INBOX")  # a failed SELECT deselects
            command = template.format(name=_quote(name))
            reply = await alice.command(command)
            # BAD only for a LIST pattern that is not valid modified UTF-7.
            allowed = ("OK", "NO", "BAD") if template.startswith("L") else ("OK", "NO")
            assert reply.status in allowed, (command, reply.line)
            # The tagged text may echo the name alice gave; untagged data never shows
            # a mailbox or message of bob's.
            leaked += [(command, line) for line in reply.untagged if b"Secret" in line]
            if b"bob-only-secret" in reply.line or b"private words" in reply.line:
                leaked.append((command, reply.line))
            if template.startswith(("SELECT", "EXAMINE")) and reply.status == "OK":
                # Only possible for a mailbox alice made herself: empty, none of bob's.
                assert b"* 0 EXISTS" in reply.untagged, (command, reply.untagged)
    assert leaked == []
    assert await _bob_state(handle) == bob_before
    # Alice's own message never left her INBOX for bob's.
    await alice.ok("SELECT INBOX")
    assert len((await alice.ok("FETCH 1:* (FLAGS)")).untagged) == 1


async def test_other_users_namespace_is_empty_without_grants(start_server: StartServer) -> None:
    """RFC 2342: the other-users namespace is offered; with nothing granted it holds
    nothing (RFC 4314 §4: a mailbox without "l" is not listed)."""
    handle = await start_server()
    await _setup_bob(handle)
    alice = await handle.login()
    reply = await alice.ok("NAMESPACE")
    assert reply.untagged[0].endswith(b' (("Other Users/" "/")) NIL'), reply.untagged
    assert (await alice.ok('LIST "" "Other Users*"')).untagged == []


async def test_sign_in_tricks_do_not_open_another_account(start_server: StartServer) -> None:
    handle = await start_server()
    await _setup_bob(handle)
    for user in ["../bob", "alice/../bob", "bob/../alice", "alice\x00bob", "bob ", "~bob"]:
        client = await handle.connect()
        reply = await client.command(f"LOGIN {_quote(user)} {_quote(PASSWORD + 'x')}")
        assert reply.status in ("NO", "BAD"), (user, reply.line)
        await client.close()
    # SASL PLAIN: alice's own credentials, asking to act as bob (RFC 4616 authzid).
    client = await handle.connect()
    plain = base64.b64encode(b"bob\x00alice\x00" + PASSWORD.encode()).decode()
    reply = await client.command(f"AUTHENTICATE PLAIN {plain}")
    assert reply.status == "NO", reply.line
    # Then alice, signed in properly, sees her own (empty) INBOX, not bob's.
    plain = base64.b64encode(b"alice\x00alice\x00" + PASSWORD.encode()).decode()
    await client.ok(f"AUTHENTICATE PLAIN {plain}")
    selected = await client.ok("SELECT INBOX")
    assert b"* 0 EXISTS" in selected.untagged

"""Real clients submitting through Roost: Debian's swaks and msmtp (STARTTLS on the
587-style listener, implicit TLS on the 465-style one, AUTH PLAIN and LOGIN), to the
suite's fake relay; and a private Postfix as the relay, which delivers the message back
into Roost over LMTP, where it is read (tests/support/postfix.py, as in test_postfix).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from roost.config.submission import RelayTarget
from tests.conftest import PASSWORD
from tests.submission.conftest import message, submission_server

MSMTP = shutil.which("msmtp")


def _swaks_with_tls() -> str | None:
    """swaks speaks TLS only with Perl's Net::SSLeay and IO::Socket::SSL."""
    path = shutil.which("swaks")
    if path is None:
        return None
    probe = subprocess.run(
        ["perl", "-MNet::SSLeay", "-MIO::Socket::SSL", "-e", "1"], capture_output=True
    )
    return path if probe.returncode == 0 else None


SWAKS = _swaks_with_tls()
NO_SWAKS = (
    "swaks with TLS is not installed "
    "(apt-get install swaks libnet-ssleay-perl libio-socket-ssl-perl)"
)


async def run(*command: str, stdin: bytes = b"") -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    text = out.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


def swaks_args(port: int, *extra: str, auth: str = "PLAIN") -> list[str]:
    assert SWAKS is not None
    return [
        SWAKS, "--server", "127.0.0.1", "--port", str(port),
        "--from", "alice@example.org", "--to", "carol@elsewhere.test",
        "--auth", auth, "--auth-user", "alice", "--auth-password", PASSWORD,
        "--header", "From: alice@example.org", "--helo", "client.test", *extra,
    ]  # fmt: skip


@pytest.mark.skipif(SWAKS is None, reason=NO_SWAKS)
@pytest.mark.parametrize("auth", ["PLAIN", "LOGIN"])
async def test_swaks_starttls(auth: str) -> None:
    async with submission_server(allow_plaintext_auth=False) as server:
        out = await run(*swaks_args(server.port, "--tls", auth=auth))
        assert "250 2.0.0 Sent" in out
        assert len(server.relay.messages) == 1
        assert len(await server.mailbox("alice", "Sent")) == 1


@pytest.mark.skipif(SWAKS is None, reason=NO_SWAKS)
async def test_swaks_implicit_tls_and_refusals() -> None:
    async with submission_server(allow_plaintext_auth=False) as server:
        out = await run(*swaks_args(server.tls_port, "--tlsc", "--pipeline"))
        assert "250 2.0.0 Sent" in out
        # Without TLS, swaks cannot sign in: AUTH is not offered on the plain listener.
        process = await asyncio.create_subprocess_exec(
            *swaks_args(server.port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out_bytes, _ = await process.communicate()
        assert process.returncode != 0
        assert "did not advertise authentication" in out_bytes.decode(errors="replace")
        assert len(server.relay.messages) == 1


@pytest.mark.skipif(MSMTP is None, reason="msmtp is not installed (apt-get install msmtp)")
@pytest.mark.parametrize("implicit", [False, True])
async def test_msmtp(implicit: bool, tmp_path: Path) -> None:
    assert MSMTP is not None
    async with submission_server(allow_plaintext_auth=False) as server:
        config = tmp_path / "msmtprc"
        config.write_text(
            "account roost\n"
            "host 127.0.0.1\n"
            f"port {server.tls_port if implicit else server.port}\n"
            "tls on\n"
            f"tls_starttls {'off' if implicit else 'on'}\n"
            "tls_certcheck off\n"
            "auth on\n"
            "user alice\n"
            f"password {PASSWORD}\n"
            "from alice@example.org\n"
            "domain client.test\n"
            f"logfile {tmp_path / 'log'}\n"
        )
        config.chmod(0o600)
        await run(
            MSMTP, "-C", str(config), "-a", "roost", "carol@elsewhere.test",
            stdin=message().replace(b"\r\n", b"\n"),
        )  # fmt: skip
        (relayed,) = server.relay.messages
        assert relayed.mail.startswith("MAIL FROM:<alice@example.org>")
        assert relayed.data.endswith(message())


# ---- a real Postfix as the relay -------------------------------------------------------


def _postfix_missing() -> str | None:
    from tests.support.postfix import missing

    return missing()


@pytest.mark.skipif(_postfix_missing() is not None, reason=_postfix_missing() or "")
async def test_postfix_relays_and_delivers_back_over_lmtp() -> None:
    from tests.e2e.test_postfix import free_port, make_root, until
    from tests.support.postfix import PrivatePostfix

    root = make_root()
    smtp_port, lmtp_port = free_port(), free_port()
    postfix = PrivatePostfix(root, smtp_port, lmtp_port)
    postfix.configure()
    postfix.start()
    try:
        async with submission_server(
            relay=RelayTarget("127.0.0.1", smtp_port),
            allow_plaintext_auth=False,
            lmtp_port=lmtp_port,
        ) as server:
            out = await run(
                *swaks_args(server.port, "--tls")[:8],
                "--to", "bob@example.org",
                "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD,
                "--header", "From: alice@example.org", "--header", "Subject: via Postfix",
                "--tls",
            )  # fmt: skip
            assert "250 2.0.0 Sent: Ok: " in out and "queued as" in out, out[-2000:]

            async def arrived() -> bool:
                return len(await server.mailbox("bob", "INBOX")) == 1

            await until(arrived, "the message back through Postfix")
            (stored,) = await server.mailbox("bob", "INBOX")
            assert b"Subject: via Postfix" in stored
            # Postfix's own Received: above Roost's, which names the signed-in session.
            assert b"by localhost with ESMTPSA" in stored
            assert len(await server.mailbox("alice", "Sent")) == 1
    finally:
        postfix.stop()
        shutil.rmtree(root, ignore_errors=True)

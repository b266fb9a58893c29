"""Trace header fields a delivering server prepends (RFC 5321 §4.4), as bytes.

``with`` protocol names are RFC 3848's (``LMTP``, ``ESMTPS``, ``ESMTPSA``...) and
RFC 6531 §3.7.3's ``UTF8`` variants. Long fields are folded before each clause.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

from roost.smtp.paths import Mailbox


def protocol_name(
    *, lmtp: bool, extended: bool, tls: bool, authenticated: bool, smtputf8: bool
) -> str:
    """RFC 3848 / RFC 6531 §3.7.3 "with" value."""
    base = "LMTP" if lmtp else "ESMTP" if extended else "SMTP"
    if smtputf8:
        base = "UTF8" + ("LMTP" if lmtp else "SMTP")
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def return_path(sender: Mailbox | None) -> bytes:
    return f"Return-Path: <{sender or ''}>\r\n".encode()


def delivered_to(recipient: Mailbox) -> bytes:
    return f"Delivered-To: {recipient}\r\n".encode()


def received(
    *,
    client_domain: str,
    client_address: str | None,
    server_name: str,
    protocol: str,
    queue_id: str | None,
    recipient: Mailbox | None,
    when: datetime,
) -> bytes:
    """``Received:`` with one clause per folded line; ``when`` must be aware."""
    source = f"from {client_domain}"
    if client_address:
        source += f" ([{client_address}])"
    lines = [f"Received: {source}", f"\tby {server_name} with {protocol}"]
    if queue_id:
        lines[-1] += f" id {queue_id}"
    tail = f"; {format_datetime(when)}"
    lines.append(f"\tfor <{recipient}>{tail}" if recipient else f"\t{tail[2:]}")
    return ("\r\n".join(lines) + "\r\n").encode()

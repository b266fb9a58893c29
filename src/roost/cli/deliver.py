"""``roost deliver``: the local delivery agent (as ``dovecot-lda``), for Postfix's
``mailbox_command``, Exim pipes, fetchmail's ``mda`` and procmail.

It reads one message on standard input, puts the same trace fields in front as LMTP
does (Return-Path from ``-f``, Delivered-To, Received), and delivers it through the
same path (``roost.delivery``): same recipient rules, detail folders, quota, durability.

Where the message is stored, and who tells the sessions: change events travel only
inside a running server (between its workers over the event bus), so a process that
wrote to the store itself would leave idling sessions unaware until their next command.
So when a server runs on this data directory, ``roost deliver`` hands the message to it
over the private socket ``data_dir/run/lmtp`` (``roost.lmtp.local``; mode 0600), and
the server stores it and tells every session at once. When no server answers there,
it opens the store itself (the store is safe for several processes, as workers use it)
and delivers directly: nobody is idling then.

The message goes to the server only once it is wholly read and spooled; if the server
goes away before it has all of it, the message is delivered directly instead. If it goes
away after that but before it answers, the outcome is unknown: exit 75, and the MTA
tries again (a duplicate is possible then, a loss is not).

Exit codes (sysexits.h): 0 delivered; 64 usage; 65 not a message; 67 no such user;
73 over quota (75 with ``[quota] over_quota_tempfail``); 75 try again later; 78
configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import click

from roost.cli.common import config_option, data_dir_option, main
from roost.config import DEV_DATA_DIR, ConfigError, Settings
from roost.delivery import (
    DeliveryStatus,
    Envelope,
    MessageSpool,
    Outcome,
    deliver,
    resolve,
    sieve_context,
    trace_fields,
)
from roost.lmtp.local import decode_status, encode_request
from roost.runtime.listeners import ServerError
from roost.runtime.opening import open_store
from roost.smtp.paths import Mailbox, parse_path
from roost.store.base import MessageSource

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_CANTCREAT = 73
EX_NOPERM = 77
EX_TEMPFAIL = 75
EX_CONFIG = 78

READ_SIZE = 256 * 1024
SPOOL_THRESHOLD = 1024 * 1024
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")

log = logging.getLogger("roost.deliver")


class NotAMessage(Exception):
    pass


@main.command("deliver")
@click.option("-d", "user", required=True, metavar="USER", help="Account (or address).")
@click.option("-m", "folder", metavar="FOLDER", help="Folder to deliver into (else INBOX).")
@click.option("-f", "sender", metavar="SENDER", help="Envelope sender, for Return-Path.")
@config_option
@data_dir_option
def deliver_command(
    user: str,
    folder: str | None,
    sender: str | None,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Deliver one message from standard input (exit codes as sysexits.h)."""
    logging.basicConfig(level=logging.WARNING, format="roost deliver: %(message)s")
    try:
        settings = Settings.load(config_path) if config_path is not None else Settings()
    except ConfigError as error:
        click.echo(f"roost deliver: {error}", err=True)
        raise click.exceptions.Exit(EX_CONFIG) from None
    if data_dir is not None or config_path is None:
        directory = (data_dir or DEV_DATA_DIR).absolute()
        settings = settings.replace(server=dataclasses.replace(settings.server, data_dir=directory))
    if not settings.server.data_dir.is_dir():
        click.echo(f"roost deliver: no data directory {settings.server.data_dir}", err=True)
        raise click.exceptions.Exit(EX_CONFIG)
    envelope_sender: Mailbox | None = None
    if sender is not None and sender != "":
        parsed = parse_path(f"<{sender}>", allow_null=True)
        if not isinstance(parsed, tuple) or parsed[1]:
            click.echo(f"roost deliver: -f {sender!r} is not an address", err=True)
            raise click.exceptions.Exit(EX_USAGE)
        envelope_sender = parsed[0]
    local, _, domain = user.rpartition("@") if "@" in user else (user, "", "")
    envelope = Envelope(
        sender=envelope_sender,
        recipients=(Mailbox(local, domain),),
        client_domain="localhost",
        client_address=None,
        server_name=settings.server.hostname,
        protocol="local",
        received=datetime.now(UTC),
    )
    trace = trace_fields(envelope)
    if sender is None:  # no envelope sender known: no Return-Path made up
        trace = trace.split(b"\r\n", 1)[1]
    spool_dir = settings.server.data_dir / "spool"
    spool_dir.mkdir(mode=0o700, exist_ok=True)
    spool = MessageSpool(spool_dir, SPOOL_THRESHOLD)
    try:
        try:
            _read_message(sys.stdin.buffer, spool, trace)
        except NotAMessage as error:
            click.echo(f"roost deliver: not a message: {error}", err=True)
            raise click.exceptions.Exit(EX_DATAERR) from None
        status = asyncio.run(_deliver(settings, user, folder, sender or "", spool))
    finally:
        spool.discard()
    code = exit_code(status, over_quota_tempfail=settings.quota.over_quota_tempfail)
    if code != EX_OK:
        click.echo(f"roost deliver: {status.outcome.value}: {status.text}", err=True)
    raise click.exceptions.Exit(code)


def exit_code(status: DeliveryStatus, *, over_quota_tempfail: bool) -> int:
    match status.outcome:
        case Outcome.OK:
            return EX_OK
        case Outcome.NO_SUCH_USER:
            return EX_NOUSER
        case Outcome.QUOTA:
            return EX_TEMPFAIL if over_quota_tempfail else EX_CANTCREAT
        case Outcome.PERMANENT:
            return EX_DATAERR
        case Outcome.TEMPORARY:
            return EX_TEMPFAIL
        case Outcome.REJECTED:  # a Sieve reject: the MTA bounces with our stderr line
            return EX_NOPERM


def _read_message(stream: BinaryIO, spool: MessageSpool, trace: bytes) -> None:
    """Spool ``trace`` then the message; an mbox "From " line in front is dropped."""
    first = stream.read(READ_SIZE)
    while first and b"\n" not in first:
        more = stream.read(READ_SIZE)
        if not more:
            break
        first += more
        if len(first) > 1024 * 1024:
            raise NotAMessage("no line break in the first megabyte")
    if first.startswith(b"From "):
        first = first.partition(b"\n")[2]
    if not first.strip():
        raise NotAMessage("standard input is empty")
    if not _HEADER_LINE.match(first):
        raise NotAMessage("it does not start with a header field")
    spool.write(trace)
    spool.write(first)
    while chunk := stream.read(READ_SIZE):
        spool.write(chunk)


async def _deliver(
    settings: Settings, user: str, folder: str | None, sender: str, spool: MessageSpool
) -> DeliveryStatus:
    source = spool.finish()
    try:
        status = await _hand_to_server(
            settings.private_lmtp_socket, user, folder, sender, source, spool.size
        )
    except _NoServer:
        return await _deliver_directly(settings, user, folder, sender, source, spool.size)
    return status


class _NoServer(Exception):
    """No server took the message: deliver it here."""


async def _hand_to_server(
    path: Path, user: str, folder: str | None, sender: str, source: MessageSource, size: int
) -> DeliveryStatus:
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        raise _NoServer from None
    try:
        try:
            writer.write(encode_request(user, folder, sender, user, size))
            if source.data is not None:
                writer.write(source.data)
            else:
                assert source.path is not None
                with source.path.open("rb") as file:
                    while chunk := file.read(READ_SIZE):
                        writer.write(chunk)
                        await writer.drain()
            await writer.drain()
        except OSError:
            raise _NoServer from None  # it cannot have stored a message it did not get
        try:
            line = await reader.readuntil(b"\r\n")
            return decode_status(line)
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            return DeliveryStatus(Outcome.TEMPORARY, "The server went away; try again")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _deliver_directly(
    settings: Settings, user: str, folder: str | None, sender: str, source: MessageSource, size: int
) -> DeliveryStatus:
    try:
        store = await open_store(
            settings.server.data_dir,
            quota=settings.quota.limits,
            url=settings.store.postgresql_url,
        )
    except ServerError as error:
        return DeliveryStatus(Outcome.TEMPORARY, str(error))
    try:
        target = await resolve(store, settings.delivery, user)
        if target is None:
            return DeliveryStatus(Outcome.NO_SUCH_USER, f"No such user: {user}")
        if folder is None and settings.delivery.detail_folders:
            folder = target.detail
        return await deliver(
            store,
            target.account,
            source,
            size,
            folder=folder,
            sender=sender,
            recipient=user,
            sieve=sieve_context(
                settings.sieve, settings.server.hostname, settings.delivery.domains
            ),
        )
    except Exception as error:
        log.exception("delivery to %s failed", user)
        return DeliveryStatus(Outcome.TEMPORARY, f"Temporary failure: {type(error).__name__}")
    finally:
        await store.close()

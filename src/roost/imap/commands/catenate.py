"""CATENATE (RFC 4469): build an APPENDed message from TEXT literals and URL parts.

A URL part names a message, or a section of one, of the signed-in user by IMAP URL
(RFC 5092), read exactly as ``BODY.PEEK[section]<partial>`` would send it (RFC 4469 §3),
from the stored bytes and the MIME model computed at delivery: nothing is re-parsed.
A URL naming another server or user, a URLAUTH URL (URLAUTH is not offered), a message
that does not exist, a wrong UIDVALIDITY or a section the message lacks is
``NO [BADURL url]``; a result over APPENDLIMIT is ``NO [TOOBIG]`` before a byte is
copied.

Every part is resolved first, so the size is known; the result is then joined in memory
when it is small (and the command's results so far leave room, see ``SpoolFiles``), and
otherwise copied chunk by chunk into a spool file in the connection's spool directory,
counted against the process's spool budget like a big literal. The store's append then
does for it what it does for any APPEND: line endings, quota, durability.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from roost import imapurl
from roost.imap.commands.fetch_parts import MessageReader
from roost.imap.handler_types import CommandError, no
from roost.imap.mailbox_names import InvalidMailboxName, decode_mailbox_name
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.grammar.fetch import read_section
from roost.imap.wire.responses import Code
from roost.imap.wire.tokenizer import ParseError, Tokenizer
from roost.store.base import CannotDoThat, MessageSource, NoSuchMailbox

_CHUNK = 1024 * 1024  # bytes copied per read from the store or a spooled literal


@dataclass(frozen=True, slots=True)
class _Text:
    data: c.MessageData

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.size


@dataclass(frozen=True, slots=True)
class _Range:
    """Bytes ``start``..``end`` of a stored message."""

    reader: MessageReader
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class _Selected:
    """A HEADER.FIELDS selection: small (a part of one header), so held as bytes."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


_Piece = _Text | _Range | _Selected


def contains_nul(data: c.MessageData) -> bool:
    """Whether a literal holds a NUL byte; the receiver noted it for a spooled one."""
    return b"\x00" in data if isinstance(data, bytes) else data.contains_nul


class SpoolFiles:
    """The spool files of catenated messages of one APPEND, deleted by ``close``, and
    how much of them may still be held in memory: as the receiver does for literals,
    4 x ``spool_threshold`` per command, so that a MULTIAPPEND of many small
    catenations (each a few URL bytes on the wire) cannot multiply into memory."""

    def __init__(self, session: Session) -> None:
        self._dir = session.context.spool_dir
        self._budget = session.context.spool_budget
        self._files: list[tuple[Path, int]] = []
        self.memory_left = 4 * session.context.limits.spool_threshold

    def create(self, size: int) -> tuple[int, Path]:
        if self._budget is not None and not self._budget.reserve(size):
            raise no("Too much is being uploaded at once; try again later", "LIMIT")
        try:
            fd, name = tempfile.mkstemp(prefix="roost-catenate-", dir=self._dir)
        except OSError:
            if self._budget is not None:
                self._budget.release(size)
            raise
        self._files.append((Path(name), size))
        return fd, Path(name)

    def close(self) -> None:
        for path, size in self._files:
            path.unlink(missing_ok=True)
            if self._budget is not None:
                self._budget.release(size)
        self._files.clear()


@contextmanager
def spool_files(session: Session) -> Iterator[SpoolFiles]:
    files = SpoolFiles(session)
    try:
        yield files
    finally:
        files.close()


async def build(
    session: Session, catenate: c.Catenate, spools: SpoolFiles
) -> tuple[MessageSource, int]:
    """The message the parts make, and its size; NO [BADURL], [TOOBIG] or [CANNOT]."""
    pieces: list[_Piece] = []
    # One reader per message, however many parts of it the URLs name: the model is
    # loaded once, and a long list of URLs holds one copy of it.
    readers: dict[tuple[int, int], MessageReader] = {}
    for part in catenate.parts:
        if isinstance(part, c.CatText):
            # RFC 9051 §4.3: a literal never carries NUL; refused as a plain APPEND is.
            if contains_nul(part.data):
                raise no("A NUL byte in a CATENATE TEXT literal", "CANNOT")
            pieces.append(_Text(part.data))
        else:
            pieces.append(await _resolve(session, part.url, readers))
    size = sum(piece.size for piece in pieces)
    limit = session.context.limits.max_literal_size
    if size > limit:
        raise no(f"Catenated message larger than {limit} bytes", "TOOBIG")
    if size == 0:
        raise no("An empty message cannot be stored", "CANNOT")
    if size <= session.context.limits.spool_threshold and size <= spools.memory_left:
        spools.memory_left -= size
        return MessageSource(data=b"".join([data async for data in _chunks(pieces)])), size
    fd, path = spools.create(size)
    try:
        async for data in _chunks(pieces):
            _write_all(fd, data)
    finally:
        os.close(fd)
    return MessageSource(path=path), size


async def _chunks(pieces: list[_Piece]) -> AsyncIterator[bytes]:
    """The bytes of every piece in order, at most ``_CHUNK`` at a time."""
    for piece in pieces:
        if isinstance(piece, _Selected):
            yield piece.data
        elif isinstance(piece, _Text):
            if isinstance(piece.data, bytes):
                yield piece.data
            else:
                for chunk in _file_chunks(piece.data.path):
                    yield chunk
        else:
            position = piece.start
            while position < piece.end:
                chunk = await piece.reader.read(position, min(_CHUNK, piece.end - position))
                if not chunk:
                    raise no("Message changed while it was being copied", "SERVERBUG")
                position += len(chunk)
                # As BODY.PEEK would send it: a NUL cannot travel in a literal (fetch_parts).
                yield chunk.replace(b"\x00", b"\x80") if b"\x00" in chunk else chunk


def _file_chunks(path: Path) -> Iterator[bytes]:
    """A spooled literal, a chunk at a time (local file reads, as the receiver writes)."""
    with path.open("rb") as spooled:
        while chunk := spooled.read(_CHUNK):
            yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _bad_url(raw: bytes, why: str) -> CommandError:
    # RFC 4469 §6: BADURL carries the URL that failed (the serializer keeps it TEXT-CHAR).
    return no(f"Bad URL: {why}", Code("BADURL", raw.decode("utf-8", "replace")))


async def _resolve(
    session: Session, raw: bytes, readers: dict[tuple[int, int], MessageReader]
) -> _Piece:
    """The piece a URL part stands for, checked against this user's store only."""
    account = session.require_account()
    try:
        url = imapurl.parse(raw).resolve(_base_url(session))
    except imapurl.UrlError as error:
        raise _bad_url(raw, str(error)) from None
    if url.host is not None and url.host != session.context.server_name.lower():
        raise _bad_url(raw, "not this server")
    if url.user is not None and url.user != session.counted_account:
        raise _bad_url(raw, "another user's message")
    if url.access is not None:
        raise _bad_url(raw, "URLAUTH is not supported here")
    if not url.names_message or url.mailbox is None or url.uid is None:
        raise _bad_url(raw, "not a message")
    limits = session.context.limits
    try:
        name = decode_mailbox_name(
            url.mailbox.encode("utf-8"),
            utf8=True,
            max_bytes=limits.max_mailbox_name_bytes,
            max_depth=limits.max_mailbox_levels,
        )
        mailbox = await account.get_mailbox(name)
        if url.uidvalidity is not None and url.uidvalidity != mailbox.uidvalidity:
            raise _bad_url(raw, "UIDVALIDITY has changed")
    except (InvalidMailboxName, NoSuchMailbox, CannotDoThat):
        raise _bad_url(raw, "no such mailbox") from None
    reader = readers.get((mailbox.id, url.uid))
    if reader is None:
        metas = await account.fetch_meta(mailbox.id, [url.uid])
        if not metas:
            raise _bad_url(raw, "no such message")
        reader = readers[(mailbox.id, url.uid)] = MessageReader(account, metas[0])
    section = c.Section()
    if url.section is not None:
        try:
            tokens = Tokenizer([b"[" + url.section.encode("utf-8") + b"]"])
            section = read_section(tokens)
            tokens.end()
        except ParseError:
            raise _bad_url(raw, "invalid section") from None
    if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        data = await reader.body_section(c.BodySection(section, peek=True))
        if url.partial is not None:
            start, length = url.partial
            data = data[start:] if length is None else data[start : start + length]
        return _Selected(data)
    span = await reader.section_span(section)
    if span is None:
        raise _bad_url(raw, "no such part")
    start, end = span
    if url.partial is not None:
        offset, length = url.partial
        start = min(end, start + offset)
        if length is not None:
            end = min(end, start + length)
    return _Range(reader, start, end)


def _base_url(session: Session) -> imapurl.ImapUrl:
    """What a relative URL is read against: this server and user, and the selected
    mailbox if any (RFC 5092 §7.2; RFC 4469 §3 sends relative URLs)."""
    selected = session.selected
    return imapurl.ImapUrl(
        imapurl.Form.ABSOLUTE,
        host=session.context.server_name.lower(),
        user=session.counted_account,
        mailbox=None if selected is None else selected.info.name,
        uidvalidity=None if selected is None else selected.info.uidvalidity,
    )

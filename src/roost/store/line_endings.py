"""Bare LF to CRLF, on the way into the store (ARCHITECTURE.md decision 9).

IMAP messages are CRLF (RFC 9051 §2.3.1, §6.3.12): a message stored with bare LF would
be served with them, and RFC822.SIZE, BODY[TEXT] and HEADER.FIELDS would disagree with
what a client expects. Every delivery (APPEND, LMTP, import) stores through the store's
append, which calls ``normalized_batch``, so sizes and section offsets are computed
once, on the normalised bytes. Only a LF not preceded by CR changes; a lone CR is left.

A message sent as binary (APPEND literal8, RFC 3516 §4.4; BINARYMIME) is stored exactly
as sent: a 0x0A in a binary body part is data, and changing it would corrupt the part
that BINARY[n] must return. Dovecot 2.3 keeps such a part byte-exact too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from roost.store.values import MessageSource, NewMessage

CHUNK = 1 << 20
_BARE_LF = re.compile(rb"(?<!\r)\n")
_Target = TypeVar("_Target")


def has_bare_lf(data: bytes | bytearray) -> bool:
    return data.count(b"\n") != data.count(b"\r\n")


def to_crlf(data: bytes) -> bytes:
    """``data`` with every LF not preceded by CR made CRLF."""
    return _BARE_LF.sub(b"\r\n", data) if has_bare_lf(data) else data


def _chunks(path: Path) -> Iterator[tuple[bytes, bool]]:
    """The file's chunks, each with whether the byte before it was a CR."""
    after_cr = False
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk, after_cr
            after_cr = chunk.endswith(b"\r")


def _convert_chunk(chunk: bytes, after_cr: bool) -> bytes:
    if after_cr and chunk.startswith(b"\n"):
        return b"\n" + to_crlf(chunk[1:])
    return to_crlf(chunk)


def file_has_bare_lf(path: Path) -> bool:
    return any(_convert_chunk(chunk, after_cr) != chunk for chunk, after_cr in _chunks(path))


def file_to_crlf(path: Path, tmp_dir: Path) -> Path:
    """A normalised copy of ``path`` in ``tmp_dir`` (the caller removes it; a crash
    leaves it to the blob store's sweep of its temporary directory)."""
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="crlf-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk, after_cr in _chunks(path):
                out.write(_convert_chunk(chunk, after_cr))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return Path(name)


def _normalized(message: NewMessage, tmp_dir: Path, made: list[Path]) -> NewMessage:
    if message.binary:
        return message
    source = message.source
    if source.data is not None:
        if not has_bare_lf(source.data):
            return message
        return dataclasses.replace(message, source=MessageSource(data=to_crlf(source.data)))
    assert source.path is not None
    if not file_has_bare_lf(source.path):
        return message
    copy = file_to_crlf(source.path, tmp_dir)
    made.append(copy)
    return dataclasses.replace(message, source=MessageSource(path=copy))


@contextlib.contextmanager
def normalized_batch(
    batch: Sequence[tuple[_Target, Sequence[NewMessage]]], tmp_dir: Path
) -> Iterator[list[tuple[_Target, list[NewMessage]]]]:
    """``batch`` with every non-binary message CRLF; normalised copies of spooled files
    live in ``tmp_dir`` until the block ends."""
    made: list[Path] = []
    try:
        yield [
            (target, [_normalized(message, tmp_dir, made) for message in group])
            for target, group in batch
        ]
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

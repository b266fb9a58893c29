"""A message being received: in memory up to a threshold, then in a temporary file.

RAM stays bounded whatever the message size (ARCHITECTURE decision 6): at most
``threshold`` bytes are held before everything moves to a file in ``spool_dir``, which
the store then copies (content-addressed) and ``discard`` removes.

Line endings become CRLF here (a bare LF is read as CRLF, RFC 5321 §2.3.8), so a
message from ``roost deliver``'s Unix-style stdin or from BDAT is stored CRLF
throughout, like one from DATA (which the SMTP core already normalised).

A write that fails (a full disk) does not raise at once: the spool swallows the rest
and ``finish`` raises ``SpoolFull``, so the protocol can read the whole message and
then answer 451 for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from roost.store.base import MessageSource

_BARE_LF = re.compile(rb"(?<!\r)\n")


class SpoolFull(Exception):
    """The message could not be written to the spool (disk full, I/O error)."""


class MessageSpool:
    def __init__(self, spool_dir: Path, threshold: int, *, normalize: bool = True) -> None:
        self.spool_dir = spool_dir
        self.threshold = threshold
        self.normalize = normalize
        self.size = 0
        self._memory = bytearray()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._error: OSError | None = None
        self._pending_cr = False  # the last chunk ended with CR: its LF may follow

    def write(self, data: bytes) -> None:
        if self.normalize and data:
            if self._pending_cr and data.startswith(b"\n"):
                self._emit(b"\n")
                data = data[1:]
            data = _BARE_LF.sub(b"\r\n", data)
            self._pending_cr = data.endswith(b"\r")
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if self._error is not None or not data:
            return
        self.size += len(data)
        if self._file is None:
            self._memory += data
            if len(self._memory) <= self.threshold:
                return
            data, self._memory = bytes(self._memory), bytearray()
            try:
                fd, name = tempfile.mkstemp(prefix="lmtp-", dir=self.spool_dir)
                self._path = Path(name)
                self._file = os.fdopen(fd, "wb")
            except OSError as error:
                self._error = error
                return
        try:
            self._file.write(data)
        except OSError as error:
            self._error = error

    def finish(self) -> MessageSource:
        """The message as a store source; raises ``SpoolFull`` if any write failed."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError as error:
                self._error = self._error or error
        if self._error is not None:
            self.discard()
            raise SpoolFull(str(self._error))
        if self._path is not None:
            return MessageSource(path=self._path)
        return MessageSource(data=bytes(self._memory))

    def discard(self) -> None:
        """Forget the message and remove its file, if any (idempotent)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._path = None
        self._memory = bytearray()

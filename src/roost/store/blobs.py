"""Content-addressed message files of one account.

A message's bytes live in ``root/ab/cdef…``, named by the SHA-256 of the content, so
identical content is stored once per account and COPY only adds a reference. (Small
messages are kept in the account's database instead, under the same name: sqlite/db.py.)

Invariants:

* A file under ``root`` is complete and never changes: it is written to ``tmp`` first,
  fsynced, renamed into place, and its directory fsynced (fsyncs skipped when not
  durable). A crash leaves at most a stale temporary file or an unreferenced blob.
* This module knows nothing of references: the caller deletes a blob only once no
  message refers to it, and decides which blobs are orphans.
* Not thread-safe: one account's worker thread is its only user.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from roost.mime.layout import HeaderScanner, header_length
from roost.store.errors import StorageFull
from roost.store.values import MessageSource

COPY_CHUNK = 1 << 20
_BLOB_ID = re.compile(r"[0-9a-f]{64}")
# Errors that mean "no space": the caller gets StorageFull and nothing is left behind.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class StoredBlob:
    blob_id: str
    size: int
    header_size: int


def describe(data: bytes) -> StoredBlob:
    """The blob ``data`` would be: named by its SHA-256, with its size and header size."""
    return StoredBlob(hashlib.sha256(data).hexdigest(), len(data), header_length(data))


class BlobStore:
    def __init__(self, root: Path, tmp: Path, *, durable: bool) -> None:
        self.root = root
        self.tmp = tmp
        self._root = str(root)
        self.durable = durable

    def path(self, blob_id: str) -> Path:
        return Path(self._path(blob_id))

    def exists(self, blob_id: str) -> bool:
        return os.path.isfile(self._path(blob_id))

    def put(self, source: MessageSource) -> StoredBlob:
        """Store ``source`` durably (unless already present) and describe it."""
        return self.put_many([source])[0]

    def put_many(self, sources: Sequence[MessageSource]) -> list[StoredBlob]:
        """Store every source durably; one directory fsync per directory touched."""
        written: dict[str, Path] = {}  # blob id -> temporary file, not yet installed
        try:
            blobs = []
            for source in sources:
                blob, tmp_path = self._write_tmp(source, skip=written.keys())
                if tmp_path is not None:
                    written[blob.blob_id] = tmp_path
                blobs.append(blob)
            self._install(written)
            return blobs
        except OSError as exc:
            if exc.errno in NO_SPACE_ERRNOS:
                raise StorageFull(str(exc)) from exc
            raise
        finally:
            for tmp_path in written.values():
                _remove_quietly(tmp_path)

    def open(self, blob_id: str) -> BinaryIO:
        return open(self._path(blob_id), "rb")

    def read_range(self, blob_id: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError("negative offset or length")
        with self.open(blob_id) as f:
            f.seek(start)
            return f.read(length)

    def delete(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(blob_id))

    def _path(self, blob_id: str) -> str:
        # Plain strings: pathlib costs more than the unlink when expunging 100,000.
        if not _BLOB_ID.fullmatch(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return f"{self._root}/{blob_id[:2]}/{blob_id[2:]}"

    def blob_ids(self) -> Iterator[str]:
        """Every blob file present (in no particular order)."""
        if not self.root.is_dir():
            return
        with os.scandir(self.root) as fans:
            for fan in fans:
                if len(fan.name) != 2 or not fan.is_dir():
                    continue
                with os.scandir(fan.path) as entries:
                    for entry in entries:
                        blob_id = fan.name + entry.name
                        if _BLOB_ID.fullmatch(blob_id):
                            yield blob_id

    def sweep_tmp(self, max_age: float) -> int:
        """Remove temporary files older than ``max_age`` seconds; return how many.

        Younger ones may belong to a write in progress in another process.
        """
        removed = 0
        cutoff = time.time() - max_age
        with contextlib.suppress(FileNotFoundError), os.scandir(self.tmp) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    # ---- writing -------------------------------------------------------------------

    def _write_tmp(
        self, source: MessageSource, skip: Collection[str]
    ) -> tuple[StoredBlob, Path | None]:
        """Describe ``source`` and, unless stored already, write it to a synced
        temporary file."""
        if source.data is not None:
            data = source.data
            blob = describe(data)
            if blob.blob_id in skip or self.exists(blob.blob_id):
                return blob, None
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    self._sync_file(out)
            except BaseException:
                _remove_quietly(Path(name))
                raise
            return blob, Path(name)
        assert source.path is not None
        return self._copy_to_tmp(source.path, skip)

    def _copy_to_tmp(self, path: Path, skip: Collection[str]) -> tuple[StoredBlob, Path | None]:
        digest = hashlib.sha256()
        scanner = HeaderScanner()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        tmp_path: Path | None = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while chunk := src.read(COPY_CHUNK):
                    digest.update(chunk)
                    scanner.feed(chunk)
                    out.write(chunk)
                    size += len(chunk)
                blob_id = digest.hexdigest()
                if blob_id in skip or self.exists(blob_id):
                    _remove_quietly(Path(name))
                    tmp_path = None
                else:
                    self._sync_file(out)
        except BaseException:
            _remove_quietly(Path(name))
            raise
        header_size = size if scanner.end is None else scanner.end
        return StoredBlob(blob_id, size, header_size), tmp_path

    def _sync_file(self, f: BinaryIO) -> None:
        f.flush()
        if self.durable:
            os.fsync(f.fileno())

    def _install(self, written: dict[str, Path]) -> None:
        """Rename synced temporary files into place, then sync their directories.
        Each one installed leaves ``written``."""
        directories: set[str] = set()  # plain strings: pathlib cost more than the rename
        new_fan = False
        for blob_id in list(written):
            final = self._path(blob_id)
            fan = os.path.dirname(final)
            if fan not in directories and not os.path.isdir(fan):
                os.makedirs(fan, mode=0o700, exist_ok=True)
                new_fan = True
            os.replace(written[blob_id], final)
            del written[blob_id]
            directories.add(fan)
        if new_fan:
            directories.add(self._root)
        for directory in directories:
            self._sync_dir(directory)

    def _sync_dir(self, directory: str) -> None:
        if not self.durable:
            return
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

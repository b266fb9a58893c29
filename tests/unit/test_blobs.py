"""Content-addressed message files (store/blobs.py) and header lengths (mime/layout.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.mime.layout import HeaderScanner, header_length
from roost.store.base import MessageSource, StorageFull
from roost.store.blobs import BlobStore


@pytest.fixture(params=[True, False], ids=["durable", "fast"])
def blobs(tmp_path: Path, request: pytest.FixtureRequest) -> BlobStore:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "tmp").mkdir()
    return BlobStore(tmp_path / "blobs", tmp_path / "tmp", durable=request.param)


DATA = b"Subject: hi\r\n\r\nbody\r\n"


def test_put_names_the_file_by_its_sha256(blobs: BlobStore) -> None:
    stored = blobs.put(MessageSource(data=DATA))
    digest = hashlib.sha256(DATA).hexdigest()
    assert stored.blob_id == digest
    assert (stored.size, stored.header_size) == (len(DATA), 15)
    assert blobs.path(digest) == blobs.root / digest[:2] / digest[2:]
    assert blobs.path(digest).read_bytes() == DATA
    assert list(blobs.blob_ids()) == [digest]
    assert list(blobs.tmp.iterdir()) == []


def test_put_from_a_file(blobs: BlobStore, tmp_path: Path) -> None:
    data = b"A: b\n" * 300_000 + b"\nbody"  # header spans several copy chunks
    source = tmp_path / "spool"
    source.write_bytes(data)
    stored = blobs.put(MessageSource(path=source))
    assert stored.blob_id == hashlib.sha256(data).hexdigest()
    assert (stored.size, stored.header_size) == (len(data), len(data) - 4)
    assert blobs.path(stored.blob_id).read_bytes() == data
    assert source.exists()  # the caller's file is copied, not taken


def test_identical_content_is_stored_once(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "spool"
    source.write_bytes(DATA)
    first = blobs.put(MessageSource(data=DATA))
    again = blobs.put_many([MessageSource(data=DATA), MessageSource(path=source)])
    assert {b.blob_id for b in again} == {first.blob_id}
    assert list(blobs.blob_ids()) == [first.blob_id]
    assert list(blobs.tmp.iterdir()) == []


def test_put_many_keeps_order_and_dedupes_within_the_batch(blobs: BlobStore) -> None:
    sources = [MessageSource(data=d) for d in (b"one", b"two", b"one")]
    stored = blobs.put_many(sources)
    assert [b.size for b in stored] == [3, 3, 3]
    assert stored[0].blob_id == stored[2].blob_id != stored[1].blob_id
    assert len(set(blobs.blob_ids())) == 2


def test_read_range(blobs: BlobStore) -> None:
    blob_id = blobs.put(MessageSource(data=DATA)).blob_id
    assert blobs.read_range(blob_id, 9, 2) == b"hi"
    assert blobs.read_range(blob_id, len(DATA) - 2, 10) == b"\r\n"
    assert blobs.read_range(blob_id, 1000, 10) == b""
    with pytest.raises(ValueError):
        blobs.read_range(blob_id, -1, 10)


def test_delete(blobs: BlobStore) -> None:
    blob_id = blobs.put(MessageSource(data=DATA)).blob_id
    blobs.delete(blob_id)
    blobs.delete(blob_id)  # already gone: fine
    assert not blobs.exists(blob_id)


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "AB" * 32, "a" * 63, "g" * 64])
def test_blob_ids_are_checked(blobs: BlobStore, bad: str) -> None:
    with pytest.raises(ValueError):
        blobs.path(bad)


def test_sweep_tmp_removes_only_stale_files(blobs: BlobStore) -> None:
    stale = blobs.tmp / "blob-old"
    fresh = blobs.tmp / "blob-new"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert blobs.sweep_tmp(3600) == 1
    assert not stale.exists()
    assert fresh.exists()


def test_no_space_raises_storage_full_and_leaves_nothing(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: BlobStore, f: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BlobStore, "_sync_file", full)
    with pytest.raises(StorageFull):
        blobs.put_many([MessageSource(data=b"a"), MessageSource(data=b"b")])
    assert list(blobs.tmp.iterdir()) == []
    assert list(blobs.blob_ids()) == []


# ---- header_length ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody", 14),
        (b"A: 1\nB: 2\n\nbody", 11),
        (b"A: 1\r\n\r\nbody\n\nmore", 8),
        (b"A: 1\n\r\nbody", 7),  # mixed: the LF line end, then an empty CRLF line
        (b"A: 1\r\nB: 2\n\nbody\r\n\r\n", 12),  # the first empty line wins
        (b"A: 1\r\n", 6),  # header only, no empty line: all header
        (b"A: 1", 4),
        (b"\r\nbody", 2),  # starts with an empty line
        (b"\nbody", 1),
        (b"", 0),
        (b"\r\n\r\n", 2),
    ],
)
def test_header_length(data: bytes, expected: int) -> None:
    assert header_length(data) == expected


@given(st.binary(max_size=60).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")), st.data())
def test_scanner_split_anywhere_agrees(data: bytes, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=5)))
    scanner = HeaderScanner()
    start = 0
    for cut in [*cuts, len(data)]:
        scanner.feed(data[start:cut])
        start = cut
    expected = _reference_header_length(data)
    assert header_length(data) == expected
    assert (len(data) if scanner.end is None else scanner.end) == expected


def _reference_header_length(data: bytes) -> int:
    """Line by line: the header ends after the first line that is empty or a lone CR."""
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        if data[start:end] in (b"", b"\r"):
            return end + 1
        start = end + 1
    return len(data)


def test_scanner_one_byte_at_a_time() -> None:
    data = b"Subject: x\r\nTo: y\r\n\r\nbody"
    scanner = HeaderScanner()
    for i in range(len(data)):
        scanner.feed(data[i : i + 1])
    assert scanner.end == header_length(data) == 21

"""Bare LF to CRLF on the way into the store (store/line_endings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.store import line_endings
from roost.store.values import MessageSource, NewMessage


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\r\nb\nc\r\n", b"a\r\nb\r\nc\r\n"),
        (b"\n\n", b"\r\n\r\n"),
        (b"a\rb\r\n", b"a\rb\r\n"),  # a lone CR is left alone
        (b"a\r\r\n", b"a\r\r\n"),
    ],
)
def test_to_crlf(sent: bytes, stored: bytes) -> None:
    assert line_endings.to_crlf(sent) == stored


def test_file_conversion_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CR that ends one chunk and the LF that starts the next are one CRLF."""
    monkeypatch.setattr(line_endings, "CHUNK", 3)
    data = b"ab\r\ncd\nef\r\n\ng\n"
    source = tmp_path / "msg"
    for cut in range(len(data)):
        source.write_bytes(data[cut:] + data[:cut])
        expected = line_endings.to_crlf(source.read_bytes())
        assert line_endings.file_has_bare_lf(source) == (expected != source.read_bytes())
        copy = line_endings.file_to_crlf(source, tmp_path)
        assert copy.read_bytes() == expected
        copy.unlink()


def test_normalized_batch_keeps_binary_and_removes_its_copies(tmp_path: Path) -> None:
    spooled = tmp_path / "spooled"
    spooled.write_bytes(b"Subject: x\n\nbody\n")
    batch = [
        (
            "INBOX",
            [
                NewMessage(MessageSource(data=b"a\nb\n")),
                NewMessage(MessageSource(data=b"a\nb\n"), binary=True),
                NewMessage(MessageSource(path=spooled)),
            ],
        )
    ]
    with line_endings.normalized_batch(batch, tmp_path) as normalized:
        [(target, (text, binary, file))] = normalized
        assert target == "INBOX"
        assert text.source.data == b"a\r\nb\r\n"
        assert binary.source.data == b"a\nb\n"
        assert file.source.path is not None and file.source.path != spooled
        assert file.source.path.read_bytes() == b"Subject: x\r\n\r\nbody\r\n"
        copy = file.source.path
    assert not copy.exists()
    assert spooled.read_bytes() == b"Subject: x\n\nbody\n"

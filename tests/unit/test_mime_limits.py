"""Analysis keeps what its limits allow, not what the message holds (issue 13, item 8;
roost.mime.limits): a 30 MB header line or encoded word, a header of 100,000+ lines or
a 40 MB text part cost a bounded amount of traced memory, the values are cut where the
limits say, and the stored byte ranges still describe the whole message."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from roost.mime import limits
from roost.mime.analyze import analyze
from roost.mime.decode import decode_quoted_printable
from roost.mime.envelope import cut
from roost.mime.model import MessageModel
from roost.mime.parse import parse_message
from roost.mime.text import strip_html
from roost.store.sqlite.analyses import compute_file, row_of
from tests.corpus.sexp import parse

MB = 1 << 20
T = TypeVar("T")


def traced(work: Callable[[], T]) -> tuple[T, int]:
    """``work()`` and the peak of memory traced while it ran."""
    tracemalloc.start()
    try:
        result = work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


# What one header field may cost: its value, a few copies of it while decoding, and
# the ENVELOPE made of it (not the 30 MB the message holds).
FIELD_BOUND = 16 * limits.MAX_FIELD_VALUE


@pytest.fixture(scope="module")
def long_subject() -> bytes:
    return b"From: Ann <a@example.com>\r\nSubject: " + b"s" * (30 * MB) + b"\r\n\r\nbody\r\n"


def test_a_30_mb_header_line_costs_its_limits(long_subject: bytes) -> None:
    analysis, peak = traced(lambda: analyze(long_subject))
    assert peak < FIELD_BOUND, peak
    assert len(analysis.subject) == limits.MAX_FIELD_VALUE
    model = MessageModel.from_blob(analysis.model)
    envelope = parse(model.envelope)
    assert envelope[1] == b"s" * limits.MAX_ENVELOPE_STRING
    assert envelope[2] == [[b"Ann", None, b"a", b"example.com"]]
    # the stored ranges still cover the whole message
    assert model.section((), "TEXT") == (len(long_subject) - 6, len(long_subject))
    assert len(analysis.model) < 2 * limits.MAX_ENVELOPE_STRING


def test_a_mapped_message_file_is_not_copied(long_subject: bytes, tmp_path: Path) -> None:
    path = tmp_path / "message"
    path.write_bytes(long_subject)
    row, peak = traced(lambda: compute_file(path))
    assert peak < FIELD_BOUND, peak
    assert row.columns[0] is not None


def test_a_30_mb_encoded_word_is_cut_before_decoding() -> None:
    word = base64.b64encode("é".encode() * (30 * MB * 3 // 8))
    message = b"Subject: =?utf-8?b?" + word + b"?=\r\nTo: b@example.com\r\n\r\n"
    analysis, peak = traced(lambda: analyze(message))
    assert peak < FIELD_BOUND, peak
    # cut in the middle, the word is no longer one (RFC 2047 §2) and stays as written
    assert analysis.subject.startswith("=?utf-8?b?w6nD")
    assert len(analysis.subject) <= limits.MAX_FIELD_VALUE
    assert len(analysis.header_text) <= limits.MAX_HEADER_TEXT
    assert analysis.to_addresses == "b@example.com"


def test_envelope_strings_are_cut_at_a_character_boundary() -> None:
    subject = "é".encode() * limits.MAX_ENVELOPE_STRING  # two bytes each
    envelope = parse(MessageModel.from_message(b"Subject: x" + subject + b"\r\n\r\n").envelope)
    assert len(envelope[1]) == limits.MAX_ENVELOPE_STRING - 1
    assert envelope[1].decode("utf-8") == "x" + "é" * (limits.MAX_ENVELOPE_STRING // 2 - 1)
    assert cut(b"abc", 2) == b"ab"
    assert cut("aé".encode(), 2) == b"a"
    assert cut("€".encode() * 2, 4) == "€".encode()


def test_header_lines_beyond_the_limit_are_not_read() -> None:
    """The Content-Type past the line limit is not seen: the part is text/plain. The
    header still ends where it does, so BODY[TEXT] is the real body."""
    lines = b"X-A: 1\r\n" * limits.MAX_HEADER_LINES
    message = lines + b"Content-Type: image/png\r\nMIME-Version: 1.0\r\n\r\n" + b"x" * 100 + b"\r\n"
    root = parse_message(message)
    assert len(root.fields) == limits.MAX_HEADER_LINES
    assert root.body_start == len(message) - 102
    model, peak = traced(lambda: MessageModel.from_message(message))
    assert model.bodystructure.startswith(b'("text" "plain"')
    assert model.section((), "TEXT") == (len(message) - 102, len(message))
    assert peak < 400 * limits.MAX_HEADER_LINES  # a few hundred bytes a field


def test_header_bytes_are_one_budget_for_the_whole_message() -> None:
    """Ten thousand parts with a 64 KiB Content-Description each keep 4 MiB in all."""
    part = (
        b"--b\r\nContent-Type: text/plain\r\nContent-Description: "
        + b"d" * limits.MAX_FIELD_VALUE
        + b"\r\n\r\nx\r\n"
    )
    message = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + part * 200
        + b"--b--\r\n"
    )
    root = parse_message(message)
    kept = sum(len(f.name) + len(f.value) for child in root.children for f in child.fields)
    assert kept <= limits.MAX_HEADER_BYTES
    assert len(root.children) == 200  # the parts are all there, later ones without fields
    assert root.children[-1].fields == []


def test_a_huge_text_part_is_decoded_only_as_far_as_the_index_reaches() -> None:
    message = b"Content-Type: text/plain\r\nMIME-Version: 1.0\r\n\r\n" + b"word " * (8 * MB)
    analysis, peak = traced(lambda: analyze(message))
    assert len(analysis.body_text) == limits.MAX_BODY_TEXT
    assert peak < 3 * limits.PART_SCAN_FACTOR * limits.MAX_BODY_TEXT, peak


def test_html_stripping_is_linear() -> None:
    """Each of these took minutes with the former regular expressions (quadratic); a
    linear scan takes milliseconds, so the test's own timeout is the bound."""
    for markup in ("<head" * 200_000, "<" * 1_000_000, "<!--" * 200_000, "<style>" * 100_000):
        strip_html(markup)
    assert decode_quoted_printable(b" " * 1_000_000 + b"x") == b" " * 1_000_000 + b"x"
    assert decode_quoted_printable(b"a \t \r\nb  \nc=41 ") == b"a\r\nb\ncA "


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hello <b>World</b></p>x", "Hello  World \nx"),
        ("a<br/>b<HEAD><title>t</title></HEAD>c", "a\nb c"),
        ("<Script type=x>var a = '<p>';</script >z&amp;y", "z&y"),
        ("x<!-- hidden --> y <!-- open", "x  y <!-- open"),
        ("<head>unclosed", "unclosed"),
        ("1 < 2", "1 < 2"),
    ],
)
def test_html_is_stripped_as_before(markup: str, text: str) -> None:
    assert strip_html(markup) == text


CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages"


def test_a_mapped_file_is_analysed_as_its_bytes_are(tmp_path: Path) -> None:
    """Every corpus message: the same analysis through a mapping as from memory (the
    parser reads a mapping with slices and finds only, and counts a slice at a time)."""
    messages = sorted(CORPUS.glob("*.eml"))
    assert messages
    for path in messages:
        data = path.read_bytes()
        assert compute_file(path) == row_of(analyze(data)), path.name
    big = tmp_path / "big"
    big.write_bytes(b"Content-Type: text/plain\r\n\r\n" + b"line\n" * (1 << 19) + b"x\r\n" * 9)
    assert compute_file(big) == row_of(analyze(big.read_bytes()))


def test_a_line_without_a_colon_keeps_its_continuation_lines() -> None:
    """As before the limits: the continuation belongs to the colon-less field."""
    [field] = parse_message(b"--c cont\r\n\tMIME-Version: 1.0").fields
    assert (field.name, field.value) == (b"--c cont", b"\tMIME-Version: 1.0")

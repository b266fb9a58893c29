"""The message model's own rules: blob round trip, sections (RFC 9051 §6.4.5), transfer
decoding (RFC 2045 §6), RFC 2047 words, base subject (RFC 5256 §2.1), analyze()."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from roost.mime.analyze import analyze
from roost.mime.decode import decode_transfer, decode_words
from roost.mime.model import MessageModel
from roost.mime.subject import base_subject
from tests.corpus.sexp import parse

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages"

NESTED = (
    b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
    b"--i\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--i\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--i--\r\n"
    b"--o--\r\n"
)


def text_of(data: bytes, model: MessageModel, path: tuple[int, ...], text: str | None) -> bytes:
    section = model.section(path, text)
    assert section is not None
    return data[section[0] : section[1]]


def test_blob_round_trip() -> None:
    model = MessageModel.from_message(NESTED)
    again = MessageModel.from_blob(model.to_blob())
    assert again.envelope == model.envelope
    assert again.bodystructure == model.bodystructure
    assert again.body == model.body
    assert again.section((2, 2), None) == model.section((2, 2), None)


def test_sections_of_nested_message() -> None:
    model = MessageModel.from_message(NESTED)
    assert text_of(NESTED, model, (1,), None) == b"first"
    assert text_of(NESTED, model, (1,), "MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert text_of(NESTED, model, (2,), "HEADER").startswith(b"Subject: inner\r\n")
    assert text_of(NESTED, model, (2, 1), None) == b"plain"
    assert text_of(NESTED, model, (2, 2), None) == b"<p>html</p>"
    assert model.section((1,), "HEADER") is None  # not a message/rfc822 part
    assert model.section((3,), None) is None
    assert model.section((1, 1), None) == model.section((1,), None)  # as Dovecot
    assert model.section((1, 1, 1), None) is None
    assert model.part_encoding((2, 1)) == "7bit"
    assert model.part_encoding((2,)) is None


def test_single_part_message_part_one_is_the_body() -> None:
    data = b"Subject: x\r\n\r\nhello\r\n"
    model = MessageModel.from_message(data)
    assert text_of(data, model, (1,), None) == b"hello\r\n"
    assert text_of(data, model, (1,), "MIME") == b"Subject: x\r\n\r\n"
    assert model.section((2,), None) is None


@pytest.mark.parametrize(
    ("encoded", "encoding", "decoded"),
    [
        (b"aGVsbG8=", "base64", b"hello"),
        (b"aGVs\r\nbG8", "BASE64", b"hello"),  # missing padding
        (b"aGVs!!bG8=", "base64", b"hello"),  # garbage skipped
        (b"caf=E9 =\r\nok", "quoted-printable", b"caf\xe9 ok"),
        (b"=XY stays", "quoted-printable", b"=XY stays"),
        (b"raw\x00", "binary", b"raw\x00"),
    ],
)
def test_decode_transfer(encoded: bytes, encoding: str, decoded: bytes) -> None:
    assert decode_transfer(encoded, encoding) == decoded


def test_decode_transfer_unknown() -> None:
    assert decode_transfer(b"begin 644", "x-uuencode") is None


def test_encoded_words() -> None:
    assert decode_words(b"=?iso-8859-1?Q?caf=E9?= =?utf-8?B?w6k=?=") == "caféé"
    assert decode_words(b"=?x-unknown?Q?a?=") == "a"
    assert decode_words(b"=?utf-8?B?not-base64!!?= plain") == "=?utf-8?B?not-base64!!?= plain"


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: Fwd: Hello", "hello"),
        ("RE : re[3]:Fwd:  [fwd: Hello   world] (fwd)  (FWD)", "hello world"),
        ("[list] Re: topic", "topic"),
        ("[tag]", "[tag]"),
        ("  spaced \t out ", "spaced out"),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_analyze() -> None:
    data = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.com>\r\n"
        b"To: Team: a@example.com, b@example.com;\r\n"
        b"Subject: Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        b"Message-ID: <m1@example.com>\r\nReferences: <r1@x> <r2@x>\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHA+Q2Fmw6kgJmFtcDsgY3LDqG1lPC9wPg==\r\n"
    )
    result = analyze(data)
    assert result.subject == "Re: Grüße"
    assert result.sort_subject == "grüße"
    assert result.from_addresses == "Jörg <joerg@example.com>"
    # A group's name is To text, and its first address for SORT (RFC 5256, RFC 5957).
    assert result.to_addresses == "Team\na@example.com\nb@example.com"
    assert (result.sort_to, result.display_to) == ("team", "Team")
    assert result.sort_from == "joerg"
    assert result.display_from == "Jörg"
    assert result.sent_date == datetime(1994, 2, 8, 5, 52, 25, tzinfo=UTC)
    assert result.message_id == "<m1@example.com>"
    assert result.references == ("<r1@x>", "<r2@x>")
    assert result.body_text == "Café & crème"
    assert "Subject: Re: Grüße" in result.header_text
    assert MessageModel.from_blob(result.model).envelope.startswith(b'("Mon, 7 Feb 1994')


def test_every_corpus_message_gives_valid_imap() -> None:
    for path in sorted(CORPUS.glob("*.eml")):
        result = analyze(path.read_bytes())
        model = MessageModel.from_blob(result.model)
        for value in (model.envelope, model.bodystructure, model.body):
            parse(value)  # strict: valid in IMAP4rev1 and with UTF8=ACCEPT


def test_messy_input_never_fails() -> None:
    huge_line = b"Subject: big\r\n\r\n" + b"x" * 5_000_000
    deep = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(500)) + b"x"
    many = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\n" * 20_000
    for data in (huge_line, deep, many, b"", b"\x00\xff\r\n\r\n", b"--b\n" * 1000):
        result = analyze(data)
        model = MessageModel.from_blob(result.model)
        parse(model.bodystructure)
        parse(model.envelope)

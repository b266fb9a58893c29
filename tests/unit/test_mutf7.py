"""Modified UTF-7 (RFC 3501 §5.1.3): vectors, strictness, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.imap.wire.mutf7 import decode_mutf7, encode_mutf7

VECTORS = [
    # RFC 3501 §5.1.3's own example.
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("", b""),
    ("INBOX", b"INBOX"),
    ("Sent Items", b"Sent Items"),
    ("&", b"&-"),
    ("A&B", b"A&-B"),
    ("ä&", b"&AOQ-&-"),
    ("&ä", b"&-&AOQ-"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("Gelöschte Elemente", b"Gel&APY-schte Elemente"),
    ("äöü", b"&AOQA9gD8-"),
    ("😀", b"&2D3eAA-"),  # outside the BMP: a surrogate pair
    ("a\tb", b"a&AAk-b"),  # controls are encoded, never sent raw
    ("~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}", b"~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}"),
]


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_encode(text: str, wire: bytes) -> None:
    assert encode_mutf7(text) == wire


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_decode(text: str, wire: bytes) -> None:
    assert decode_mutf7(wire) == text


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"&", "not terminated"),
        (b"&U,BTFw", "not terminated"),
        (b"a&ZeVnLIqe", "not terminated"),
        (b"&AGE-", "printable US-ASCII"),  # "a" must be written as itself
        (b"&ACY-", "printable US-ASCII"),  # "&" must be written "&-"
        (b"&AOQAYQ-", "printable US-ASCII"),  # "äa": the "a" hides in the shift
        (b"&AOQ-&APY-", "adjacent"),  # must be "&AOQA9g-"
        (b"&AOR-", "trailing bits"),
        (b"&AO-", "whole UTF-16 units"),
        (b"&A-", "length"),
        (b"&AOQ=-", "invalid character"),  # no padding
        (b"&AOQ/-", "invalid character"),  # "," replaces "/"
        (b"&Jjo!-", "invalid character"),
        (b"&2D0-", "surrogate"),  # high surrogate alone
        (b"&3gA-", "surrogate"),  # low surrogate alone
        (b"Entw\xc3\xbcrfe", "printable US-ASCII"),  # raw 8-bit
        (b"a\tb", "printable US-ASCII"),
        (b"a\x7f", "printable US-ASCII"),
        (b"&AOQ-\x00", "printable US-ASCII"),
    ],
)
def test_decode_rejects(wire: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_mutf7(wire)


def test_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        encode_mutf7("a\ud800")


@given(st.text())
def test_round_trip(text: str) -> None:
    wire = encode_mutf7(text)
    assert all(0x20 <= byte <= 0x7E for byte in wire)
    assert decode_mutf7(wire) == text


@given(st.binary(max_size=30) | st.text("&-AOQ9gD8a,+/ U", max_size=20).map(str.encode))
def test_only_canonical_input_decodes(wire: bytes) -> None:
    """Whatever decodes is the one spelling of its name: no two wires, one mailbox."""
    try:
        text = decode_mutf7(wire)
    except ValueError:
        return
    assert encode_mutf7(text) == wire

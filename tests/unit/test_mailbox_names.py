"""Mailbox names: decoding, INBOX, validation, and LIST pattern matching."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.imap.mailbox_names import (
    InvalidMailboxName,
    compile_list_pattern,
    decode_mailbox_name,
    encode_mailbox_name,
    is_inbox,
    parent_names,
)

DOTLESS_I = "\u0131"

# ---- decoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "utf8", "name"),
    [
        (b"Sent", False, "Sent"),
        (b"Sent", True, "Sent"),
        (b"~peter/mail/&U,BTFw-/&ZeVnLIqe-", False, "~peter/mail/台北/日本語"),
        ("~peter/mail/台北/日本語".encode(), True, "~peter/mail/台北/日本語"),
        (b"Entw&APw-rfe", False, "Entwürfe"),
        # RFC 9051 §5.1 / RFC 6855 §3: after UTF8=ACCEPT "&" is itself (Thunderbird).
        (b"A&B", True, "A&B"),
        (b"&ZeVnLIqe-", True, "&ZeVnLIqe-"),
        (b"A&-B", False, "A&B"),
        (b"a b/c.d/..e/.f", False, "a b/c.d/..e/.f"),
    ],
)
def test_decode(raw: bytes, utf8: bool, name: str) -> None:
    assert decode_mailbox_name(raw, utf8=utf8) == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"INBOX", "INBOX"),
        (b"inbox", "INBOX"),
        (b"InBoX", "INBOX"),
        (b"inbox/Child", "INBOX/Child"),
        (b"Inbox/inbox", "INBOX/inbox"),  # only the first level is INBOX
        (b"INBOXes", "INBOXes"),
        (b"My/inbox", "My/inbox"),
        (f"{DOTLESS_I}nbox".encode(), f"{DOTLESS_I}nbox"),  # not INBOX
    ],
)
def test_inbox_is_normalised_in_any_case(raw: bytes, name: str) -> None:
    assert decode_mailbox_name(raw, utf8=True) == name


@pytest.mark.parametrize(
    ("raw", "utf8", "message"),
    [
        (b"", False, "empty"),
        (b"A&B", False, "modified UTF-7"),
        (b"Entw\xc3\xbcrfe", False, "modified UTF-7"),
        (b"\xff", True, "UTF-8"),
        (b"/a", True, "starts or ends"),
        (b"a/", True, "starts or ends"),
        (b"/", True, "starts or ends"),
        (b"a//b", True, "empty level"),
        (b"a/./b", True, '"." level'),
        (b"..", True, '".." level'),
        (b"a/..", True, '".." level'),
        (b"a\x00b", True, "control"),
        (b"&AAA-", False, "control"),  # NUL hidden in modified UTF-7
        (b"a\tb", True, "control"),
        (b"a\x7f", True, "control"),
        ("a\u0085".encode(), True, "control"),  # C1 (RFC 6855 §3)
        ("a\u2028".encode(), True, "control"),
        (b"a" * 1025, True, "longer than 1024 bytes"),
        ("é".encode() * 513, True, "longer than 1024 bytes"),
        (b"/".join([b"a"] * 33), True, "deeper than 32"),
    ],
)
def test_decode_rejects(raw: bytes, utf8: bool, message: str) -> None:
    with pytest.raises(InvalidMailboxName, match=re.escape(message)):
        decode_mailbox_name(raw, utf8=utf8)


def test_limits_are_inclusive_and_configurable() -> None:
    assert decode_mailbox_name(b"a" * 1024, utf8=True) == "a" * 1024
    assert decode_mailbox_name("é".encode() * 512, utf8=True) == "é" * 512
    assert decode_mailbox_name(b"/".join([b"a"] * 32), utf8=True).count("/") == 31
    with pytest.raises(InvalidMailboxName):
        decode_mailbox_name(b"abcd", utf8=True, max_bytes=3)
    with pytest.raises(InvalidMailboxName):
        decode_mailbox_name(b"a/b", utf8=True, max_depth=1)


def test_invalid_mailbox_name_is_a_value_error() -> None:
    assert issubclass(InvalidMailboxName, ValueError)


@pytest.mark.parametrize(
    ("name", "utf8", "raw"),
    [
        ("日本語", False, b"&ZeVnLIqe-"),
        ("日本語", True, "日本語".encode()),
        ("A&B", False, b"A&-B"),
        ("A&B", True, b"A&B"),
    ],
)
def test_encode(name: str, utf8: bool, raw: bytes) -> None:
    assert encode_mailbox_name(name, utf8=utf8) == raw
    assert decode_mailbox_name(raw, utf8=utf8) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("INBOX", True),
        ("inbox", True),
        ("Inbox", True),
        ("INBOX/a", False),
        ("INBOXX", False),
        ("", False),
        (f"{DOTLESS_I}nbox", False),
        ("\u017fnbox", False),  # no case mapping of a non-ASCII letter makes INBOX
    ],
)
def test_is_inbox(name: str, expected: bool) -> None:
    assert is_inbox(name) is expected


@pytest.mark.parametrize(
    ("name", "parents"),
    [("a", []), ("a/b", ["a"]), ("a/b/c", ["a", "a/b"]), ("INBOX/x y/z", ["INBOX", "INBOX/x y"])],
)
def test_parent_names(name: str, parents: list[str]) -> None:
    assert parent_names(name) == parents


# ---- LIST patterns --------------------------------------------------------------------

NAMES = ["INBOX", "INBOX/Sub", "INBOX/Sub/Deep", "Sent", "a", "ab", "a/b", "a/b/c", "b/a"]


@pytest.mark.parametrize(
    ("reference", "pattern", "matched"),
    [
        ("", "*", NAMES),
        ("", "%", ["INBOX", "Sent", "a", "ab"]),
        ("", "a", ["a"]),
        ("", "a%", ["a", "ab"]),
        ("", "a*", ["a", "ab", "a/b", "a/b/c"]),
        ("", "a/%", ["a/b"]),
        ("", "a/*", ["a/b", "a/b/c"]),
        ("", "%/%", ["INBOX/Sub", "a/b", "b/a"]),
        ("", "*/b*", ["a/b", "a/b/c"]),
        ("", "%a", ["a"]),
        ("", "*a", ["a", "b/a"]),
        ("", "sent", []),  # case-sensitive beyond INBOX
        ("", "", []),
        # The reference and pattern are concatenated as they are (as Dovecot does).
        ("a/", "%", ["a/b"]),
        ("a/", "*", ["a/b", "a/b/c"]),
        ("a", "%", ["a", "ab"]),
        ("a", "/%", ["a/b"]),
        ("INBOX/", "%", ["INBOX/Sub"]),
        # INBOX's own level matches in any case (RFC 9051 §6.3.9, CLIENTS.md).
        ("", "inbox", ["INBOX"]),
        ("", "Inbox/%", ["INBOX/Sub"]),
        ("inbox/", "*", ["INBOX/Sub", "INBOX/Sub/Deep"]),
        ("", "inb*", ["INBOX", "INBOX/Sub", "INBOX/Sub/Deep"]),
        ("", "I%B%X", ["INBOX"]),
        ("", "inbox/sub", []),  # below INBOX, case matters again
        ("", f"{DOTLESS_I}nbox", []),
    ],
)
def test_list_pattern(reference: str, pattern: str, matched: list[str]) -> None:
    matches = compile_list_pattern(reference, pattern)
    assert [name for name in NAMES if matches(name)] == matched


def test_inbox_case_applies_only_to_an_inbox_level() -> None:
    assert compile_list_pattern("", "inboxes")("INBOXes") is False
    assert compile_list_pattern("", "INBOXes")("INBOXes") is True
    assert compile_list_pattern("", "")("") is True


def test_wildcard_characters_in_names_match_literally_only_as_wildcards() -> None:
    assert compile_list_pattern("", "a*b")("a*b")
    assert compile_list_pattern("", "a%b")("a%b")
    assert not compile_list_pattern("", "a%b")("a/b")


@pytest.mark.timeout(10)
def test_pathological_patterns_do_not_backtrack() -> None:
    """A backtracking matcher takes exponential time here; this one is linear."""
    name = "x" * 1000 + "/" + "x" * 20
    for pattern in ["*%*%*%*%*%*%*%*%*a", "%*" * 500 + "a", "*x" * 300 + "a", "%x" * 300 + "y"]:
        assert not compile_list_pattern("", pattern)(name)
    assert compile_list_pattern("", "*x" * 300)(name)


def _reference_matcher(pattern: str) -> re.Pattern[str]:
    translated = "".join(
        ".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern
    )
    return re.compile(translated, re.DOTALL)


@given(
    st.text("ab/*%", max_size=8),
    st.text("ab/*%", max_size=8),
    st.text("ab/*%", max_size=10),
)
def test_list_pattern_agrees_with_a_regex(reference: str, pattern: str, name: str) -> None:
    expected = _reference_matcher(reference + pattern).fullmatch(name) is not None
    assert compile_list_pattern(reference, pattern)(name) is expected

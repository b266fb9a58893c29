"""GETQUOTA, GETQUOTAROOT, SETQUOTA parsed every way (RFC 9208 §9), and the QUOTA and
QUOTAROOT responses serialized."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import Command, GetQuota, GetQuotaRoot, SetQuota, Status
from roost.imap.wire.responses import QuotaResource, QuotaResponse, QuotaRootResponse
from roost.imap.wire.serializer import serialize
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

VALID: list[tuple[bytes, Command]] = [
    (b'a GETQUOTA ""\r\n', GetQuota("a", "")),
    (b'a getquota "!partition/sda4"\r\n', GetQuota("a", "!partition/sda4")),
    (b"a GETQUOTA {0}\r\n\r\n", GetQuota("a", "")),
    (b"a GETQUOTAROOT INBOX\r\n", GetQuotaRoot("a", b"INBOX")),
    (b'a GETQUOTAROOT "My Box"\r\n', GetQuotaRoot("a", b"My Box")),
    (b'a SETQUOTA "" (STORAGE 512)\r\n', SetQuota("a", "", (("STORAGE", 512),))),
    (
        b"a SETQUOTA #user/alice (storage 510 MESSAGE 1000)\r\n",
        SetQuota("a", "#user/alice", (("STORAGE", 510), ("MESSAGE", 1000))),
    ),
    (b'a SETQUOTA "" ()\r\n', SetQuota("a", "", ())),
    (
        b'a SETQUOTA "" (STORAGE 9223372036854775807)\r\n',
        SetQuota("a", "", (("STORAGE", 9223372036854775807),)),
    ),
    (
        b"a STATUS INBOX (DELETED DELETED-STORAGE)\r\n",
        Status("a", b"INBOX", ("DELETED", "DELETED-STORAGE")),
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"a GETQUOTA\r\n",
        b'a GETQUOTA "" x\r\n',
        b"a GETQUOTAROOT\r\n",
        b'a SETQUOTA ""\r\n',
        b'a SETQUOTA "" STORAGE 1\r\n',
        b'a SETQUOTA "" (STORAGE)\r\n',
        b'a SETQUOTA "" (STORAGE -1)\r\n',
        b'a SETQUOTA "" (STORAGE 99999999999999999999)\r\n',
    ],
)
def test_invalid_keeps_the_tag(data: bytes) -> None:
    assert bad(data).tag == "a"


def test_responses() -> None:
    quota = QuotaResponse("", (QuotaResource("STORAGE", 10, 512),))
    assert serialize(quota) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    both = QuotaResponse(
        "#user/alice", (QuotaResource("STORAGE", 54, 111), QuotaResource("MESSAGE", 42, 1000))
    )
    assert serialize(both) == b"* QUOTA #user/alice (STORAGE 54 111 MESSAGE 42 1000)\r\n"
    assert serialize(QuotaRootResponse("INBOX", ("",))) == b'* QUOTAROOT INBOX ""\r\n'
    assert serialize(QuotaRootResponse("INBOX", ())) == b"* QUOTAROOT INBOX\r\n"
    assert serialize(QuotaRootResponse("Entwürfe", ("",))) == b'* QUOTAROOT Entw&APw-rfe ""\r\n'
    assert (
        serialize(QuotaRootResponse("Entwürfe", ("",)), utf8=True)
        == '* QUOTAROOT "Entwürfe" ""\r\n'.encode()
    )
    with pytest.raises(ValueError):
        serialize(QuotaResponse("", ()))  # RFC 9208 §9: at least one resource

"""``* SORT`` and ``* THREAD`` responses (RFC 5256 §4, §5; RFC 7162 §3.1.5)."""

from __future__ import annotations

import pytest

from roost.imap.wire.responses import SortResponse, ThreadNode, ThreadResponse
from roost.imap.wire.serializer import serialize

N = ThreadNode


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (SortResponse((2, 3, 6)), b"* SORT 2 3 6\r\n"),
        (SortResponse(()), b"* SORT\r\n"),
        (SortResponse((5, 2), modseq=917162500), b"* SORT 5 2 (MODSEQ 917162500)\r\n"),
        (SortResponse((), modseq=917162500), b"* SORT\r\n"),
        (ThreadResponse(()), b"* THREAD\r\n"),
        (ThreadResponse((N(2), N(3))), b"* THREAD (2)(3)\r\n"),
        # The example of RFC 5256 §4.
        (
            ThreadResponse(
                (
                    N(2),
                    N(3, (N(6, (N(4, (N(23),)), N(44, (N(7, (N(96),)),)))),)),
                )
            ),
            b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
        ),
        # A placeholder parent (RFC 5256 §4: "((3)(5))").
        (ThreadResponse((N(None, (N(3), N(5))),)), b"* THREAD ((3)(5))\r\n"),
        (ThreadResponse((N(None, (N(3, (N(4),)), N(5))), N(9))), b"* THREAD ((3 4)(5))(9)\r\n"),
    ],
)
def test_serialized(response: SortResponse | ThreadResponse, wire: bytes) -> None:
    assert serialize(response) == wire


def test_a_deep_thread_serializes_without_recursion() -> None:
    node = N(1)
    for number in range(2, 20_001):
        node = N(number, (node, N(number + 100_000)))
    line = serialize(ThreadResponse((node,)))
    assert line.startswith(b"* THREAD (20000 (19999 (19998 ")
    assert line.endswith(b"(120000))\r\n")

"""Section specifiers to byte ranges (RFC 9051 §6.4.5, RFC 3501 §6.4.5).

A part path is resolved over the MIME tree as RFC 9051 numbers parts, matching Dovecot
where the RFC is silent:

- In a multipart, ``n`` is its n-th part. A non-multipart part has only part 1, itself
  (so ``BODY[1]`` of a single-part message is its body, ``BODY[1.MIME]`` its header).
- After a message/rfc822 part, further numbers address the parts of the encapsulated
  message (``2.1`` is the first part of the message attached as part 2, or its body if
  it is not multipart); a path may continue below a non-multipart part only through
  such a message.
- ``MIME`` is the part's own header; ``HEADER`` and ``TEXT`` (and ``HEADER.FIELDS``) exist
  for the whole message (empty path) and for message/rfc822 parts, where they are the
  encapsulated message's header and body; elsewhere they do not exist.

Ranges are ``(start, end)`` offsets into the stored message; ``None`` means the section
does not exist (Dovecot answers an empty string).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

KIND_LEAF = 0
KIND_MULTIPART = 1
KIND_RFC822 = 2

HEADER_SECTIONS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"})


@dataclass(slots=True)
class PartRange:
    """Where one part lies: header ``[start, body_start)``, body ``[body_start, end)``."""

    start: int
    body_start: int
    end: int
    kind: int
    encoding: str  # Content-Transfer-Encoding, lower-case; "7bit" when absent
    children: list[PartRange] = field(default_factory=list)


def resolve(root: PartRange, path: Sequence[int]) -> PartRange | None:
    part = root
    count = len(path)
    for index, number in enumerate(path):
        more = index + 1 < count
        if part.kind == KIND_MULTIPART:
            if not 1 <= number <= len(part.children):
                return None
            part = part.children[number - 1]
        elif number != 1 or (more and part.kind != KIND_RFC822):
            return None
        if part.kind == KIND_RFC822 and more:
            if not part.children:
                return None
            part = part.children[0]
    return part


def section_range(root: PartRange, path: Sequence[int], text: str | None) -> tuple[int, int] | None:
    if not path:
        if text is None:
            return root.start, root.end
        if text in HEADER_SECTIONS:
            return root.start, root.body_start
        if text == "TEXT":
            return root.body_start, root.end
        return None
    part = resolve(root, path)
    if part is None:
        return None
    if text is None:
        return part.body_start, part.end
    if text == "MIME":
        return part.start, part.body_start
    if part.kind != KIND_RFC822 or not part.children:
        return None
    inner = part.children[0]
    if text in HEADER_SECTIONS:
        return inner.start, inner.body_start
    if text == "TEXT":
        return inner.body_start, inner.end
    return None

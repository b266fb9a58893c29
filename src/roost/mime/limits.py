"""What analysis keeps of one message, bounded (issue 13, item 8).

Analysis (``roost.mime.analyze``) runs on whatever arrives, so what it keeps must be
bounded by these limits, not by the message: a 50 MB header line or a 30 MB encoded
word once cost seven times its size in memory. Beyond a limit the analysis is cut, the
stored bytes never are: FETCH BODY[...], RETR and TOP still send the message exactly as
received; only ENVELOPE, BODYSTRUCTURE and SEARCH see the shortened values.
"""

from __future__ import annotations

import mmap
from typing import TypeAlias

MessageBytes: TypeAlias = bytes | mmap.mmap
"""A message as analysis reads it: in memory, or a read-only mapping of its file
(never copied whole)."""

MAX_FIELD_NAME = 998
"""Bytes of a header field's name kept (RFC 5322 §2.1.1 line limit); the rest is cut."""

MAX_FIELD_VALUE = 64 * 1024
"""Bytes of one header field's unfolded value kept for ENVELOPE, BODYSTRUCTURE and
SEARCH. A longer field is cut here (an encoded word cut in two stays as written). It
also bounds decoding: RFC 2047 words never decode to more characters than they have
bytes, so a field's decoded text is at most this long."""

MAX_HEADER_LINES = 50_000
"""Header lines (fields and their continuation lines) examined in the whole message,
all parts together. Lines beyond are not read: their fields do not exist for the
model or SEARCH (a part whose Content-Type lies beyond is text/plain)."""

MAX_HEADER_BYTES = 4 * 1024 * 1024
"""Bytes of field names and values kept for the whole message, all parts together;
once spent, the fields that follow are dropped as beyond ``MAX_HEADER_LINES``."""

MAX_ENVELOPE_STRING = 32 * 1024
"""Bytes of each ENVELOPE string (date, subject, message-id, in-reply-to, and each
address's name, route, mailbox and host); a longer one is cut at a character
boundary."""

MAX_SORT_SUBJECT = 2048
"""Characters of the decoded subject that SORT's base subject (RFC 5256 §2.1) is made
from: its steps repeat per leader and trailer, so their cost grows with the square of
the length."""

MAX_BODY_TEXT = 1 << 20
"""Characters of decoded body text per message for SEARCH BODY/TEXT; beyond, words
are not found."""

MAX_HEADER_TEXT = 256 * 1024
"""Characters of decoded header text per message (SEARCH HEADER/TEXT); the fields
past it are left out."""

PART_SCAN_FACTOR = 8
"""A text part is decoded from at most this many bytes per character still wanted
(base64 of 4-byte UTF-8 needs 16/3): bytes past that could not reach the index."""

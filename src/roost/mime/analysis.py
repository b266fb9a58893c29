"""What the store keeps about a message besides its bytes, computed once at delivery
(ARCHITECTURE.md, decision 1): the MIME model for FETCH, and the decoded text and keys
for SEARCH, SORT and THREAD.

``analyze`` is pure: bytes in, an ``Analysis`` out. It never fails on messy mail; what
cannot be parsed is described as well as it can be (RFC 2045 defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Analysis:
    # The MIME model (roost.mime.model.MessageModel) in its compact stored form;
    # MessageModel.from_blob(model) restores it without re-parsing.
    model: bytes
    # Every header field, RFC 2047 words decoded, one "Name: value" per line.
    header_text: str
    # Decoded text of every text/* part (transfer encoding and charset undone; HTML
    # with its tags stripped), for SEARCH BODY and TEXT.
    body_text: str
    subject: str  # decoded Subject
    from_addresses: str  # decoded address lists as text, for SEARCH FROM/TO/CC/BCC
    to_addresses: str
    cc_addresses: str
    bcc_addresses: str
    sent_date: datetime | None  # Date: header (aware), None when absent or unparsable
    message_id: str  # "<...>" or ""
    in_reply_to: str
    references: tuple[str, ...]
    # SORT keys (RFC 5256 §3, RFC 5957): base subject; first mailbox's addr-mailbox,
    # lower-cased; display names for DISPLAYFROM/DISPLAYTO.
    sort_subject: str
    sort_from: str
    sort_to: str
    sort_cc: str
    display_from: str
    display_to: str
    # RFC 8970 PREVIEW: the first readable text, whitespace collapsed (mime/preview.py).
    preview: str = ""

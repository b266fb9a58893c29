"""A message on its way in or out of the store, and the flag letters of the file formats.

Both formats keep the five IMAP system flags as letters: Maildir in the ``:2,`` info of a
file name (https://cr.yp.to/proto/maildir.html: D draft, F flagged, R replied, S seen,
T trashed), mbox in the ``Status:`` (R read) and ``X-Status:`` (A answered, F flagged,
T draft, D deleted) headers, as mutt and Dovecot write them. ``\\Recent`` is never kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from roost.store.values import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

MAILDIR_LETTERS: dict[str, str] = {"D": DRAFT, "F": FLAGGED, "R": ANSWERED, "S": SEEN, "T": DELETED}
MAILDIR_FLAGS: dict[str, str] = {flag: letter for letter, flag in MAILDIR_LETTERS.items()}
X_STATUS_LETTERS: dict[str, str] = {"A": ANSWERED, "F": FLAGGED, "T": DRAFT, "D": DELETED}
X_STATUS_FLAGS: dict[str, str] = {flag: letter for letter, flag in X_STATUS_LETTERS.items()}


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message: the folder it belongs in ("/"-separated, "INBOX" for the inbox),
    its bytes as found, its flags and keywords, and its internal date (aware)."""

    folder: str
    data: bytes
    flags: frozenset[str]
    internaldate: datetime

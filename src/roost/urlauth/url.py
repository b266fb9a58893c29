"""IMAP URLs (RFC 5092) of one message or part, with URLAUTH (RFC 4467 §2).

Only what URLAUTH needs is accepted: an absolute ``imap://user@host[:port]/mailbox
[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]][;EXPIRE=t];URLAUTH=access
[:mechanism:token]``. Keywords are case-insensitive; the mailbox name and section are
percent-encoded UTF-8 (RFC 5092 §3.2). The *rump* is the URL up to and including the
access identifier: what the token signs (RFC 4467 §2.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote

MECHANISM_INTERNAL = "INTERNAL"

# RFC 4467 §2.3 access identifiers; the user of submit+/user+ is an enc-user.
_ACCESS = re.compile(r"^(?:(?:submit|user)\+[^:;/?#\s]+|authuser|anonymous)$", re.IGNORECASE)
_URL = re.compile(
    r"^imap://(?P<user>[^@/;:]+)(?:;AUTH=[^@]+)?@(?P<host>[^/]+)"
    r"/(?P<mailbox>[^;]+)(?:;UIDVALIDITY=(?P<uidvalidity>[1-9][0-9]{0,9}))?"
    r"/;UID=(?P<uid>[1-9][0-9]{0,9})"
    r"(?:/;SECTION=(?P<section>[^;/]+))?"
    r"(?:/;PARTIAL=(?P<offset>[0-9]{1,10})(?:\.(?P<length>[1-9][0-9]{0,9}))?)?"
    r"(?:;EXPIRE=(?P<expire>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})))?"
    r";URLAUTH=(?P<access>[^:]+)"
    r"(?::(?P<mechanism>[A-Za-z0-9-.]+):(?P<token>[0-9A-Fa-f]{32,}))?$",
    re.IGNORECASE,
)
_SECTION = re.compile(r"^(?:[1-9][0-9]*(?:\.[1-9][0-9]*)*(?:\.(?:HEADER|TEXT|MIME))?|HEADER|TEXT)$")


class UrlError(ValueError):
    """Not an IMAP URL that URLAUTH can sign or use."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    user: str
    host: str
    mailbox: str
    uidvalidity: int | None
    uid: int
    section: str | None  # "1.2", "1.2.MIME", "HEADER", "TEXT"; None: the whole message
    partial: tuple[int, int | None] | None
    expire: datetime | None
    access: str
    rump: str  # as the client wrote it, up to and including the access identifier
    mechanism: str | None = None  # upper-cased
    token: str | None = None  # lower-cased hex

    @property
    def full(self) -> str:
        if self.mechanism is None or self.token is None:
            return self.rump
        return f"{self.rump}:{self.mechanism}:{self.token}"

    def with_token(self, mechanism: str, token: str) -> ImapUrl:
        return ImapUrl(
            self.user, self.host, self.mailbox, self.uidvalidity, self.uid, self.section,
            self.partial, self.expire, self.access, self.rump, mechanism.upper(), token.lower(),
        )  # fmt: skip

    @property
    def part(self) -> tuple[int, ...]:
        numbers = []
        for piece in (self.section or "").split("."):
            if not piece.isdigit():
                break
            numbers.append(int(piece))
        return tuple(numbers)

    @property
    def text(self) -> str | None:
        """The section's HEADER/TEXT/MIME suffix, if any."""
        last = (self.section or "").rsplit(".", 1)[-1].upper()
        return last if last in ("HEADER", "TEXT", "MIME") else None


def parse_url(text: str) -> ImapUrl:
    """Raise UrlError naming the problem."""
    match = _URL.match(text)
    if match is None:
        raise UrlError("not an IMAP URL with ;UID= and ;URLAUTH=")
    access = unquote(match["access"])
    if not _ACCESS.match(access):
        raise UrlError(f"unknown access identifier {access!r}")
    section = unquote(match["section"]) if match["section"] else None
    if section is not None and not _SECTION.match(section.upper()):
        raise UrlError(f"unsupported section {section!r}")
    expire = None
    if match["expire"]:
        try:
            expire = datetime.fromisoformat(match["expire"].upper().replace("Z", "+00:00"))
        except ValueError:
            raise UrlError("bad ;EXPIRE= date-time") from None
    partial = None
    if match["offset"] is not None:
        length = int(match["length"]) if match["length"] else None
        partial = (int(match["offset"]), length)
    tail = f":{match['mechanism']}:{match['token']}" if match["mechanism"] else ""
    rump = text[: len(text) - len(tail)]
    return ImapUrl(
        user=unquote(match["user"]),
        host=match["host"],
        mailbox=unquote(match["mailbox"]),
        uidvalidity=int(match["uidvalidity"]) if match["uidvalidity"] else None,
        uid=int(match["uid"]),
        section=section,
        partial=partial,
        expire=expire,
        access=access,
        rump=rump,
        mechanism=match["mechanism"].upper() if match["mechanism"] else None,
        token=match["token"].lower() if match["token"] else None,
    )


def encode_mailbox(name: str) -> str:
    """A mailbox name as RFC 5092 enc-mailbox (for building URLs in tests and docs)."""
    return quote(name, safe="/&")

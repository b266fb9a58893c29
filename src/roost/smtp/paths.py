"""Reverse-path and forward-path syntax (RFC 5321 §4.1.2, RFC 6531 §3.3).

``parse_path`` reads a ``<...>`` path at the start of a string and returns the mailbox
and the rest of the string, or a ``Reply`` saying why it could not. Source routes
(``<@a,@b:user@c>``) are accepted and dropped (RFC 5321 §4.1.1.3, Appendix C).
UTF-8 local parts and domains are parsed here always; whether they are allowed
(SMTPUTF8 given on MAIL) is the caller's decision, via ``Mailbox.is_ascii``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from roost.smtp import replies
from roost.smtp.replies import Reply

_UTF8 = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_UTF8}]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"'
_LET_DIG = rf"[A-Za-z0-9{_UTF8}]"
_SUB_DOMAIN = rf"{_LET_DIG}(?:[A-Za-z0-9\-{_UTF8}]*{_LET_DIG})?"
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_PATH = re.compile(
    rf"<(?:@{_DOMAIN}(?:,@{_DOMAIN})*:)?"
    rf"(?P<local>{_DOT_STRING}|{_QUOTED})"
    rf"(?:@(?P<domain>{_DOMAIN}|{_LITERAL}))?>"
)
_NEEDS_QUOTES = re.compile(rf"^(?!{_DOT_STRING}$)")
_UNQUOTE = re.compile(r"\\(.)")

# RFC 5321 §4.5.3.1.1-3, in octets.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256


@dataclass(frozen=True, slots=True)
class Mailbox:
    """``local_part`` is unquoted (quoted-pairs resolved); ``domain`` keeps an address
    literal's brackets, and is empty only for the bare ``<Postmaster>`` of RFC 5321
    §4.1.1.3."""

    local_part: str
    domain: str

    @property
    def is_ascii(self) -> bool:
        return self.local_part.isascii() and self.domain.isascii()

    def __str__(self) -> str:
        local = self.local_part
        if _NEEDS_QUOTES.match(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{local}@{self.domain}" if self.domain else local


def parse_path(text: str, *, allow_null: bool) -> tuple[Mailbox | None, str] | Reply:
    """Parse a path at the start of ``text``; ``None`` is the null path ``<>``."""
    if text.startswith("<>"):
        return (None, text[2:]) if allow_null else replies.BAD_PATH
    match = _PATH.match(text)
    if match is None:
        return replies.BAD_PATH
    local, domain = match["local"], match["domain"] or ""
    if not domain and local.lower() != "postmaster":
        return replies.BAD_PATH
    if domain.startswith("[") and not _valid_literal(domain[1:-1]):
        return replies.BAD_PATH
    if local.startswith('"'):
        local = _UNQUOTE.sub(r"\1", local[1:-1])
    if (
        len(match[0].encode()) > MAX_PATH
        or len(local.encode()) > MAX_LOCAL_PART
        or len(domain.encode()) > MAX_DOMAIN
    ):
        return replies.PATH_TOO_LONG
    return Mailbox(local, domain), text[match.end() :]


def _valid_literal(literal: str) -> bool:
    """RFC 5321 §4.1.3: IPv4, ``IPv6:`` address, or ``tag:content`` (general)."""
    tag, colon, content = literal.partition(":")
    try:
        if not colon:
            return isinstance(ipaddress.ip_address(literal), ipaddress.IPv4Address)
        if tag.lower() == "ipv6":
            return isinstance(ipaddress.ip_address(content), ipaddress.IPv6Address)
    except ValueError:
        return False
    return bool(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", tag)) and bool(content)

"""IMAP URLs (RFC 5092): parsed into their fields, protocol-neutral.

CATENATE (RFC 4469) names message parts by these URLs, and URLAUTH (RFC 4467) and BURL
(RFC 4468) add an authorization to them; this module only takes a URL apart, and leaves
it to the caller to decide what the URL may reach. The URLAUTH components (EXPIRE,
access identifier, mechanism, token) are kept as opaque text, plus the "rump" the
token is computed over (RFC 4467 §2: the URL up to and including the access identifier).

Accepted forms (RFC 5092 §7 and §11): an absolute ``imap://[user[;AUTH=x]@]host[:port]/…``,
a network path ``//host/…``, an absolute path ``/mailbox…`` (the server comes from the base
URL) and the relative forms that start with ``;UID=``, ``;SECTION=`` or ``;PARTIAL=``
(mailbox, and UID or section, come from the base). ``resolve`` fills them in.

Mailbox names are UTF-8 before percent-encoding (RFC 5092 §9), so ``mailbox`` is text;
``section`` is the decoded section text as in FETCH (``1.2.MIME``,
``HEADER.FIELDS (To From)``), left to the protocol to interpret.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote_to_bytes


class UrlError(ValueError):
    """Not an IMAP URL this module understands (the text says what is wrong)."""


class Form(enum.Enum):
    """How much of the URL was written out (RFC 3986 §4.2 reference kinds)."""

    ABSOLUTE = "absolute"  # imap://server/...
    NETWORK_PATH = "network-path"  # //server/...
    ABSOLUTE_PATH = "absolute-path"  # /mailbox...: the base's server
    RELATIVE = "relative"  # ;UID=... / ;SECTION=... / ;PARTIAL=...: more of the base


_MAX_NUMBER = 2**32 - 1  # nz-number: a UID or UIDVALIDITY
_MAX_NUMBER64 = 2**63 - 1  # PARTIAL offsets and lengths
# What may stand in a URL at all (RFC 3986 unreserved, sub-delims, ":@/?%", and "[]" of an
# IP literal); anything else (space, controls, 8-bit) must be percent-encoded.
_URL_CHARS = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]]*")
_PCT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_SERVER = re.compile(
    r"(?:(?P<userinfo>[^@/]*)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]*)(?::(?P<port>[0-9]*))?"
)
_PARAM = re.compile(r";([A-Za-z]+)=([^;]*)")
_NUMBER = re.compile(r"[0-9]+")
_PARTIAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_URLAUTH = re.compile(r"(?P<access>[^:]+)(?::(?P<mechanism>[^:]+):(?P<token>[^:]+))?")


@dataclass(frozen=True, slots=True)
class ImapUrl:
    form: Form
    host: str | None = None  # None unless written (ABSOLUTE, NETWORK_PATH)
    port: int | None = None
    user: str | None = None
    auth_type: str | None = None  # ;AUTH=<type>, "*" for any
    mailbox: str | None = None
    uidvalidity: int | None = None
    search: str | None = None  # the decoded query of a message list URL
    uid: int | None = None
    section: str | None = None
    partial: tuple[int, int | None] | None = None  # (offset, length or None: to the end)
    expire: str | None = None  # ;EXPIRE=<date-time> as written (RFC 4467)
    access: str | None = None  # ;URLAUTH=<access>, e.g. "submit+fred", "authuser"
    mechanism: str | None = None  # e.g. "INTERNAL"
    token: str | None = None  # the verifier's hex text
    rump: str | None = None  # the URL up to and including ";URLAUTH=<access>"

    @property
    def names_message(self) -> bool:
        """Whether the URL points at a message or a part of one (``imessagepart``)."""
        return self.mailbox is not None and self.uid is not None

    def resolve(self, base: ImapUrl) -> ImapUrl:
        """This URL read relative to ``base`` (RFC 3986 §5.2 for the IMAP forms)."""
        if self.form in (Form.ABSOLUTE, Form.NETWORK_PATH):
            return self
        server = replace(
            self,
            form=base.form,
            host=base.host,
            port=base.port,
            user=base.user,
            auth_type=base.auth_type,
        )
        if self.form is Form.ABSOLUTE_PATH:
            return server
        # Relative: ";UID=" keeps the base's mailbox; ";SECTION=" its UID too; a bare
        # ";PARTIAL=" its section as well.
        merged = replace(
            server,
            mailbox=base.mailbox,
            uidvalidity=base.uidvalidity,
            uid=self.uid if self.uid is not None else base.uid,
        )
        if self.uid is None and self.section is None:
            merged = replace(merged, section=base.section)
        if merged.mailbox is None or merged.uid is None:
            raise UrlError("Relative URL without a mailbox and UID to resolve against")
        return merged


def parse(text: str | bytes) -> ImapUrl:
    """Parse an IMAP URL or IMAP relative reference; raise UrlError if it is not one."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if _URL_CHARS.fullmatch(raw) is None:
        raise UrlError("Invalid character in URL")
    if _PCT.search(raw):
        raise UrlError("Invalid percent-encoding in URL")
    url = raw.decode("ascii")
    head = url[:7].lower()
    fields: dict[str, object] = {}
    if head == "imap://" or url.startswith("//"):
        form = Form.ABSOLUTE if head == "imap://" else Form.NETWORK_PATH
        rest = url[7:] if form is Form.ABSOLUTE else url[2:]
        slash = rest.find("/")
        server, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
        fields.update(_parse_server(server))
        if slash < 0:
            return ImapUrl(form, **fields)  # type: ignore[arg-type]
    elif url.startswith("/"):
        form, path = Form.ABSOLUTE_PATH, url[1:]
    elif url.startswith(";"):
        form, path = Form.RELATIVE, url
    else:
        raise UrlError("Not an IMAP URL")
    if path:
        fields.update(_parse_path(path, url, relative=form is Form.RELATIVE))
    return ImapUrl(form, **fields)  # type: ignore[arg-type]


def _decode(text: str) -> str:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise UrlError("URL text is not UTF-8") from None


def _number(text: str, what: str, limit: int, *, nonzero: bool = True) -> int:
    if _NUMBER.fullmatch(text) is None or len(text) > 20:
        raise UrlError(f"Invalid {what}")
    value = int(text)
    if value > limit or (nonzero and value == 0):
        raise UrlError(f"Invalid {what}")
    return value


def _parse_server(server: str) -> dict[str, object]:
    match = _SERVER.fullmatch(server)
    if match is None or not match.group("host"):
        raise UrlError("Invalid server in URL")
    fields: dict[str, object] = {"host": _decode(match.group("host")).lower()}
    if match.group("port"):
        fields["port"] = _number(match.group("port"), "port", 65535)
    userinfo = match.group("userinfo")
    if userinfo is not None:
        user, sep, auth = userinfo.partition(";")
        if sep:
            key, equals, value = auth.partition("=")
            if key.upper() != "AUTH" or not equals or not value:
                raise UrlError("Invalid ;AUTH= in URL")
            fields["auth_type"] = value if value == "*" else _decode(value)
        if user:
            fields["user"] = _decode(user)
        elif not sep:
            raise UrlError("Empty user in URL")
    return fields


def _parse_path(path: str, url: str, *, relative: bool) -> dict[str, object]:
    """``icommand``: ``mailbox[;UIDVALIDITY=n]`` then ``?search`` or ``/;UID=n`` with
    ``/;SECTION=``, ``/;PARTIAL=`` and ``[;EXPIRE=…];URLAUTH=…``, in that order."""
    fields: dict[str, object] = {}
    path, question, search = path.partition("?")
    semicolon = path.find(";")
    mailbox, params = (path, "") if semicolon < 0 else (path[:semicolon], path[semicolon:])
    # The "/" before ";UID=" ends the mailbox part; it is not part of the name.
    slash_before = bool(params) and mailbox.endswith("/")
    if slash_before:
        mailbox = mailbox[:-1]
    if mailbox:
        if relative:
            raise UrlError("Invalid relative URL")
        fields["mailbox"] = _decode(mailbox)
    elif not relative:
        raise UrlError("URL without a mailbox name")
    order = ("UIDVALIDITY", "UID", "SECTION", "PARTIAL", "EXPIRE", "URLAUTH")
    # Which parameters are written after a "/" (the rest follow the previous one directly).
    after_slash = {"UID", "SECTION", "PARTIAL"}
    position = 0
    consumed = 0
    for match in _PARAM.finditer(params):
        if match.start() != consumed:
            raise UrlError("Invalid URL parameters")
        consumed = match.end()
        name, value = match.group(1).upper(), match.group(2)
        if name not in order or order.index(name) < position:
            raise UrlError(f"Unexpected ;{name}= in URL")
        if relative and position == 0 and name not in after_slash:
            raise UrlError("Invalid relative URL")
        wants_slash = name in after_slash and not (relative and position == 0)
        if wants_slash != slash_before:
            raise UrlError(f"Misplaced / before ;{name}= in URL")
        position = order.index(name) + 1
        slash_before = value.endswith("/")
        if slash_before:
            value = value[:-1]
        fields.update(_param(name, value, url))
    if consumed != len(params) or slash_before:
        raise UrlError("Invalid URL parameters")
    if question:
        if "mailbox" not in fields or set(fields) - {"mailbox", "uidvalidity"}:
            raise UrlError("A search only follows a mailbox name")
        fields["search"] = _decode(search)
    if ("expire" in fields or "access" in fields) and "uid" not in fields:
        raise UrlError("URLAUTH only follows a message part")
    if "expire" in fields and "access" not in fields:
        raise UrlError(";EXPIRE= without ;URLAUTH=")
    return fields


def _param(name: str, value: str, url: str) -> dict[str, object]:
    match name:
        case "UIDVALIDITY":
            return {"uidvalidity": _number(value, "UIDVALIDITY", _MAX_NUMBER)}
        case "UID":
            return {"uid": _number(value, "UID", _MAX_NUMBER)}
        case "SECTION":
            if not value:
                raise UrlError("Empty section in URL")
            return {"section": _decode(value)}
        case "PARTIAL":
            partial = _PARTIAL.fullmatch(value)
            if partial is None:
                raise UrlError("Invalid ;PARTIAL= in URL")
            start = _number(partial.group(1), "partial offset", _MAX_NUMBER64, nonzero=False)
            length = partial.group(2)
            count = None if length is None else _number(length, "partial length", _MAX_NUMBER64)
            return {"partial": (start, count)}
        case "EXPIRE":
            if not value:
                raise UrlError("Empty ;EXPIRE= in URL")
            return {"expire": _decode(value)}
        case _:  # URLAUTH
            urlauth = _URLAUTH.fullmatch(value)
            if urlauth is None:
                raise UrlError("Invalid ;URLAUTH= in URL")
            access = urlauth.group("access")
            rump_end = url.upper().rindex(";URLAUTH=") + len(";URLAUTH=") + len(access)
            return {
                "access": _decode(access),
                "mechanism": urlauth.group("mechanism"),
                "token": urlauth.group("token"),
                "rump": url[:rump_end],
            }

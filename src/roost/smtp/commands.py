"""SMTP/LMTP command lines parsed into frozen dataclasses (RFC 5321 §4.1, RFC 2033 §4.1).

``parse_command(line)`` takes one line without its CRLF and returns a command or the
``Reply`` for its syntax error; it never raises for any input. Verbs are
case-insensitive. Whether a command is allowed now (dialect, sequence, advertised
extensions) is the connection's decision, not the parser's.

ESMTP parameters (RFC 5321 §4.1.2 ``esmtp-param``) are checked here for syntax and for
the values each known keyword allows; unknown keywords are kept so the connection can
answer 555 for what was not advertised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from roost.smtp import replies
from roost.smtp.paths import Mailbox, parse_path
from roost.smtp.replies import Reply


class Body(Enum):
    """RFC 6152 (8BITMIME), RFC 3030 (BINARYMIME)."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


@dataclass(frozen=True, slots=True)
class MailParams:
    size: int | None = None  # RFC 1870 declared size
    body: Body | None = None
    smtputf8: bool = False  # RFC 6531
    ret: str | None = None  # RFC 3461 §4.3: FULL or HDRS
    envid: str | None = None  # RFC 3461 §4.4, still xtext-encoded
    auth: str | None = None  # RFC 4954 §5, still xtext-encoded
    unknown: tuple[str, ...] = ()  # keywords nobody here knows


@dataclass(frozen=True, slots=True)
class RcptParams:
    notify: tuple[str, ...] = ()  # RFC 3461 §4.1: NEVER, or SUCCESS/FAILURE/DELAY
    orcpt: str | None = None  # RFC 3461 §4.2: "addr-type;xtext"
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hello:
    verb: str  # "LHLO", "EHLO" or "HELO"
    domain: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    sender: Mailbox | None  # None: the null reverse-path <>
    params: MailParams = field(default_factory=MailParams)


@dataclass(frozen=True, slots=True)
class RcptTo:
    recipient: Mailbox
    params: RcptParams = field(default_factory=RcptParams)


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Bdat:
    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Burl:
    """RFC 4468 §3: append the content ``url`` names; ``last`` ends the message."""

    url: str
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    argument: str


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    mechanism: str  # upper-cased
    initial_response: bytes | None  # base64 text as sent; "=" is an empty response


Command = (
    Hello
    | MailFrom
    | RcptTo
    | Data
    | Bdat
    | Burl
    | Rset
    | Noop
    | Quit
    | Vrfy
    | Help
    | StartTls
    | Auth
)

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+")
_DIGITS = re.compile(r"[0-9]{1,20}")
_NOTIFY = {"SUCCESS", "FAILURE", "DELAY"}


def parse_command(line: bytes) -> Command | Reply:
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return replies.SYNTAX_ERROR
    verb, _, argument = text.partition(" ")
    parser = _PARSERS.get(verb.upper())
    if parser is None:
        return replies.UNKNOWN_COMMAND
    return parser(verb.upper(), argument)


def _hello(verb: str, argument: str) -> Command | Reply:
    # Lenient on purpose: real clients send underscores and bare names.
    domain = argument.strip()
    if not domain or " " in domain or not domain.isprintable():
        return replies.SYNTAX_ERROR
    return Hello(verb, domain)


def _mail(verb: str, argument: str) -> Command | Reply:
    if argument[:5].upper() != "FROM:":
        return replies.SYNTAX_ERROR
    parsed = parse_path(argument[5:].lstrip(" "), allow_null=True)
    if isinstance(parsed, Reply):
        return parsed
    sender, rest = parsed
    params = _params(rest)
    if isinstance(params, Reply):
        return params
    fields: dict[str, object] = {}
    unknown: list[str] = []
    for keyword, value in params:
        match keyword, value:
            case "SIZE", str() if _DIGITS.fullmatch(value):
                fields["size"] = int(value)
            case "BODY", str() if value.upper() in Body._value2member_map_:
                fields["body"] = Body(value.upper())
            case "SMTPUTF8", None:
                fields["smtputf8"] = True
            case "RET", str() if value.upper() in ("FULL", "HDRS"):
                fields["ret"] = value.upper()
            case ("ENVID" | "AUTH") as name, str() if _XTEXT.fullmatch(value):
                fields[name.lower()] = value
            case (("SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "AUTH"), _):
                return replies.BAD_PARAMETER
            case _:
                unknown.append(keyword)
    return MailFrom(sender, MailParams(**fields, unknown=tuple(unknown)))  # type: ignore[arg-type]


def _rcpt(verb: str, argument: str) -> Command | Reply:
    if argument[:3].upper() != "TO:":
        return replies.SYNTAX_ERROR
    parsed = parse_path(argument[3:].lstrip(" "), allow_null=False)
    if isinstance(parsed, Reply):
        return parsed
    recipient, rest = parsed
    assert recipient is not None  # allow_null=False
    params = _params(rest)
    if isinstance(params, Reply):
        return params
    notify: tuple[str, ...] = ()
    orcpt: str | None = None
    unknown: list[str] = []
    for keyword, value in params:
        if keyword == "NOTIFY" and value is not None:
            notify = tuple(value.upper().split(","))
            if notify != ("NEVER",) and not set(notify) <= _NOTIFY:
                return replies.BAD_PARAMETER
        elif keyword == "ORCPT" and value is not None:
            addr_type, semicolon, address = value.partition(";")
            if not semicolon or not _KEYWORD.fullmatch(addr_type):
                return replies.BAD_PARAMETER
            if not _XTEXT.fullmatch(address):
                return replies.BAD_PARAMETER
            orcpt = value
        elif keyword in ("NOTIFY", "ORCPT"):
            return replies.BAD_PARAMETER
        else:
            unknown.append(keyword)
    return RcptTo(recipient, RcptParams(notify, orcpt, tuple(unknown)))


def _params(rest: str) -> list[tuple[str, str | None]] | Reply:
    """RFC 5321 §4.1.2 Mail-parameters: SP-separated ``keyword[=value]``; keywords
    upper-cased; a repeated keyword is an error."""
    if not rest:
        return []
    if not rest.startswith(" "):
        return replies.SYNTAX_ERROR
    params: list[tuple[str, str | None]] = []
    for word in rest.split():
        keyword, equals, value = word.partition("=")
        if not _KEYWORD.fullmatch(keyword) or (equals and not _VALUE.fullmatch(value)):
            return replies.BAD_PARAMETER
        keyword = keyword.upper()
        if any(keyword == seen for seen, _ in params):
            return replies.BAD_PARAMETER
        params.append((keyword, value if equals else None))
    return params


def _bdat(verb: str, argument: str) -> Command | Reply:
    words = argument.split(" ")
    if not 1 <= len(words) <= 2 or not _DIGITS.fullmatch(words[0]):
        return replies.SYNTAX_ERROR
    if len(words) == 2 and words[1].upper() != "LAST":
        return replies.SYNTAX_ERROR
    return Bdat(int(words[0]), len(words) == 2)


def _burl(verb: str, argument: str) -> Command | Reply:
    """``BURL absolute-URI [SP "LAST"]`` (RFC 4468 §3); the URL is the host's to judge."""
    words = argument.split(" ")
    if not 1 <= len(words) <= 2 or not words[0] or not words[0].isascii():
        return replies.SYNTAX_ERROR
    if len(words) == 2 and words[1].upper() != "LAST":
        return replies.SYNTAX_ERROR
    return Burl(words[0], len(words) == 2)


def _auth(verb: str, argument: str) -> Command | Reply:
    words = argument.split(" ")
    if not 1 <= len(words) <= 2 or not _KEYWORD.fullmatch(words[0]):
        return replies.SYNTAX_ERROR
    initial = words[1].encode() if len(words) == 2 else None
    return Auth(words[0].upper(), initial)


def _no_argument(command: Command) -> Callable[[str, str], Command | Reply]:
    def parse(verb: str, argument: str) -> Command | Reply:
        return replies.SYNTAX_ERROR if argument.strip() else command

    return parse


def _noop(verb: str, argument: str) -> Command | Reply:
    return Noop()  # RFC 5321 §4.1.1.9: a parameter may be given and is ignored


_PARSERS: dict[str, Callable[[str, str], Command | Reply]] = {
    "LHLO": _hello,
    "EHLO": _hello,
    "HELO": _hello,
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _no_argument(Data()),
    "BDAT": _bdat,
    "BURL": _burl,
    "RSET": _no_argument(Rset()),
    "NOOP": _noop,
    "QUIT": _no_argument(Quit()),
    "VRFY": lambda verb, argument: Vrfy(argument) if argument else replies.SYNTAX_ERROR,
    "HELP": lambda verb, argument: Help(argument),
    "STARTTLS": _no_argument(StartTls()),
    "AUTH": _auth,
}

"""The POP3 command grammar: one client line in, one typed command out.

RFC 1939 §3: a keyword of three or four characters, case-insensitive, then arguments
separated by single spaces. Parsing is lenient where real clients differ (runs of
spaces between numeric arguments, a trailing space) and exact where meaning depends
on it: PASS takes the rest of the line, spaces included (RFC 1939 §7 allows a server
to treat them as part of the password).

Bad syntax is a value (``BadCommand``) that names the keyword, so every error reply
can say which command was wrong. Message numbers are checked for form here and for
range by the session, which alone knows how many messages there are.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

# A message number or line count has at most this many digits; more cannot be in
# range, and the limit keeps int() of a hostile argument cheap.
MAX_DIGITS = 10


@dataclass(frozen=True, slots=True)
class User:
    name: bytes


@dataclass(frozen=True, slots=True)
class Pass:
    password: bytes

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return "Pass(...)"


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH (RFC 5034 §4). Without a mechanism it asks for the list (as RFC 1734
    servers answered; some clients still send it)."""

    mechanism: str | None
    initial_response: bytes | None = None  # decoded; b"" for "="

    def __repr__(self) -> str:
        initial = "None" if self.initial_response is None else "..."
        return f"Auth(mechanism={self.mechanism!r}, initial_response={initial})"


@dataclass(frozen=True, slots=True)
class Stls:
    pass


@dataclass(frozen=True, slots=True)
class Capa:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Stat:
    pass


@dataclass(frozen=True, slots=True)
class List:
    number: int | None


@dataclass(frozen=True, slots=True)
class Retr:
    number: int


@dataclass(frozen=True, slots=True)
class Dele:
    number: int


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Top:
    number: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    number: int | None


@dataclass(frozen=True, slots=True)
class BadCommand:
    """A line that is not a valid command; ``keyword`` is "" when unrecognised."""

    keyword: str
    message: str


Command = (
    User | Pass | Auth | Stls | Capa | Quit | Stat | List | Retr | Dele | Noop | Rset | Top | Uidl
)


class _SyntaxError(Exception):
    pass


def parse_command(line: bytes) -> Command | BadCommand:
    """Parse one line (without its line end)."""
    keyword_bytes, _, rest = line.partition(b" ")
    try:
        keyword = keyword_bytes.decode("ascii").upper()
    except UnicodeDecodeError:
        return BadCommand("", "Unknown command")
    parser = _PARSERS.get(keyword)
    if parser is None:
        return BadCommand("", "Unknown command")
    try:
        return parser(rest)
    except _SyntaxError as error:
        return BadCommand(keyword, f"{keyword}: {error}")


def _no_arguments(rest: bytes) -> None:
    if rest.strip(b" "):
        raise _SyntaxError("takes no arguments")


def _numbers(rest: bytes, minimum: int, maximum: int) -> list[int]:
    words = rest.split()
    if not minimum <= len(words) <= maximum:
        if maximum == 0:
            raise _SyntaxError("takes no arguments")
        raise _SyntaxError("wrong number of arguments")
    numbers = []
    for word in words:
        if not word.isdigit() or len(word) > MAX_DIGITS:
            raise _SyntaxError("invalid number")
        numbers.append(int(word))
    return numbers


def _user(rest: bytes) -> Command:
    name = rest.strip(b" ")
    if not name:
        raise _SyntaxError("a user name is required")
    return User(name)


def _pass(rest: bytes) -> Command:
    if not rest:
        raise _SyntaxError("a password is required")
    return Pass(rest)


def _auth(rest: bytes) -> Command:
    words = rest.split()
    if not words:
        return Auth(None)
    if len(words) > 2:
        raise _SyntaxError("wrong number of arguments")
    try:
        mechanism = words[0].decode("ascii").upper()
    except UnicodeDecodeError:
        raise _SyntaxError("invalid mechanism name") from None
    if len(words) == 1:
        return Auth(mechanism)
    if words[1] == b"=":  # RFC 5034 §4: an empty initial response
        return Auth(mechanism, b"")
    try:
        return Auth(mechanism, base64.b64decode(words[1], validate=True))
    except (binascii.Error, ValueError):
        raise _SyntaxError("the initial response is not valid base64") from None


def _list(rest: bytes) -> Command:
    numbers = _numbers(rest, 0, 1)
    return List(numbers[0] if numbers else None)


def _uidl(rest: bytes) -> Command:
    numbers = _numbers(rest, 0, 1)
    return Uidl(numbers[0] if numbers else None)


def _retr(rest: bytes) -> Command:
    return Retr(_numbers(rest, 1, 1)[0])


def _dele(rest: bytes) -> Command:
    return Dele(_numbers(rest, 1, 1)[0])


def _top(rest: bytes) -> Command:
    number, lines = _numbers(rest, 2, 2)
    return Top(number, lines)


def _fixed(command: Command) -> Callable[[bytes], Command]:
    def parse(rest: bytes) -> Command:
        _no_arguments(rest)
        return command

    return parse


_PARSERS: dict[str, Callable[[bytes], Command]] = {
    "USER": _user,
    "PASS": _pass,
    "AUTH": _auth,
    "STLS": _fixed(Stls()),
    "CAPA": _fixed(Capa()),
    "QUIT": _fixed(Quit()),
    "STAT": _fixed(Stat()),
    "LIST": _list,
    "RETR": _retr,
    "DELE": _dele,
    "NOOP": _fixed(Noop()),
    "RSET": _fixed(Rset()),
    "TOP": _top,
    "UIDL": _uidl,
}

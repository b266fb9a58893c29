"""Mailbox names: wire bytes to store names and back, validation, LIST patterns.

A store name is a ``str`` with "/" as the hierarchy separator and INBOX always spelled
"INBOX" (RFC 9051 §5.1: INBOX is case-insensitive; CLIENTS.md: "INBOX in any case means
INBOX"). Every name this module returns has passed ``decode_mailbox_name``'s checks, so
the store and the serializer can trust it.

INBOX comparisons are ASCII-only on purpose: in Python ``"\u0131nbox".upper()`` (dotless
i) is "INBOX", and that must not name the INBOX.
"""

from __future__ import annotations

from roost.imap.wire.mutf7 import decode_mutf7, encode_mutf7

__all__ = [
    "DELIMITER",
    "MAX_NAME_BYTES",
    "MAX_NAME_DEPTH",
    "InvalidMailboxName",
    "ListPattern",
    "check_new_name",
    "compile_list_pattern",
    "decode_mailbox_name",
    "encode_mailbox_name",
    "is_inbox",
    "parent_names",
]

DELIMITER = "/"
MAX_NAME_BYTES = 1024
MAX_NAME_DEPTH = 32

# RFC 6855 §3: no C0 or C1 controls, DEL, LINE SEPARATOR or PARAGRAPH SEPARATOR.
_FORBIDDEN = frozenset(
    [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + ["\u2028", "\u2029"]
)


class InvalidMailboxName(ValueError):
    """A mailbox name the client sent cannot be used; the message says why, for a human."""


def is_inbox(name: str) -> bool:
    """Whether ``name`` is INBOX, in any ASCII case."""
    return len(name) == 5 and name.isascii() and name.upper() == "INBOX"


def _normalize_inbox(name: str) -> str:
    head, sep, rest = name.partition(DELIMITER)
    if is_inbox(head) and head != "INBOX":
        return "INBOX" + sep + rest
    return name


def decode_mailbox_name(
    raw: bytes,
    *,
    utf8: bool,
    max_bytes: int = MAX_NAME_BYTES,
    max_depth: int = MAX_NAME_DEPTH,
) -> str:
    """The store name for a mailbox argument, INBOX normalised and validated.

    Without UTF8=ACCEPT the name is modified UTF-7; with it, the name is UTF-8 as sent
    and "&" is just "&" (RFC 9051 §5.1, RFC 6855 §3; Thunderbird relies on this).
    A trailing "/" is an error here: CREATE strips it first (RFC 9051 §6.3.4).
    """
    if utf8:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMailboxName("not valid UTF-8") from None
    else:
        try:
            name = decode_mutf7(raw)
        except ValueError as error:
            raise InvalidMailboxName(f"not valid modified UTF-7 ({error})") from None
    _validate(name, max_bytes=max_bytes, max_depth=max_depth)
    return _normalize_inbox(name)


def _validate(name: str, *, max_bytes: int, max_depth: int) -> None:
    if not name:
        raise InvalidMailboxName("the name is empty")
    if not _FORBIDDEN.isdisjoint(name):
        raise InvalidMailboxName("the name contains a control character")
    if len(name.encode("utf-8")) > max_bytes:
        raise InvalidMailboxName(f"the name is longer than {max_bytes} bytes")
    if name.startswith(DELIMITER) or name.endswith(DELIMITER):
        raise InvalidMailboxName(f'the name starts or ends with "{DELIMITER}"')
    components = name.split(DELIMITER)
    if len(components) > max_depth:
        raise InvalidMailboxName(f"the name is nested deeper than {max_depth} levels")
    for component in components:
        if not component:
            raise InvalidMailboxName(f'the name contains an empty level ("{DELIMITER * 2}")')
        if component in (".", ".."):
            raise InvalidMailboxName(f'the name contains a "{component}" level')


def check_new_name(name: str) -> None:
    """Refuse a name for a new mailbox (CREATE, RENAME's target) that holds a LIST
    wildcard: "*" and "%" in a name make LIST patterns ambiguous (RFC 9051 §6.3.9 has
    no escape), so a client could not list exactly that mailbox. Existing mailboxes
    with such names stay usable."""
    if "*" in name or "%" in name:
        raise InvalidMailboxName('the name contains a LIST wildcard ("*" or "%")')


def encode_mailbox_name(name: str, *, utf8: bool) -> bytes:
    """A store name as wire bytes (before quoting): UTF-8 after UTF8=ACCEPT, else
    modified UTF-7."""
    return name.encode("utf-8") if utf8 else encode_mutf7(name)


def parent_names(name: str) -> list[str]:
    """Every superior of ``name``, outermost first: "a/b/c" → ["a", "a/b"]."""
    parents: list[str] = []
    position = name.find(DELIMITER)
    while position >= 0:
        parents.append(name[:position])
        position = name.find(DELIMITER, position + 1)
    return parents


# ---- LIST patterns ---------------------------------------------------------------------


class ListPattern:
    """A compiled LIST/LSUB pattern; call it with a store name.

    RFC 9051 §6.3.9: "*" matches any characters, "%" any except the separator; the rest
    matches itself, case-sensitively, except that a name whose first level is INBOX
    matches that level case-insensitively ("inbox/%" lists INBOX's children).

    Matching simulates the pattern as an automaton with one bit per pattern position,
    held in an ``int``; the cost is linear in the name whatever the wildcards, so a
    pattern like "*%*%*%*a" cannot backtrack catastrophically as a regex would.
    """

    __slots__ = ("_accept", "_literals", "_pattern", "_percent", "_star", "_start", "_wild")

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        literals: dict[str, int] = {}
        star = percent = 0
        tokens: list[str] = []
        for char in pattern:
            if char in "*%" and tokens and tokens[-1] in "*%":
                # "**", "*%" and "%*" mean "*"; "%%" means "%".
                if char == "*":
                    tokens[-1] = "*"
                continue
            tokens.append(char)
        for position, token in enumerate(tokens):
            bit = 1 << position
            if token == "*":
                star |= bit
            elif token == "%":
                percent |= bit
            else:
                literals[token] = literals.get(token, 0) | bit
        self._literals = literals
        self._star = star
        self._percent = percent
        self._wild = star | percent
        self._accept = 1 << len(tokens)
        self._start = self._close(1)

    def _close(self, state: int) -> int:
        # A wildcard may match nothing; wildcards never follow each other, so one step.
        return state | ((state & self._wild) << 1)

    def __call__(self, name: str) -> bool:
        literals = self._literals
        star = self._star
        any_but_delimiter = self._star | self._percent
        wild = self._wild
        state = self._start
        inbox_rooted = is_inbox(name[:5]) and (len(name) == 5 or name[5] == DELIMITER)
        for index, char in enumerate(name):
            matched = literals.get(char, 0)
            if index < 5 and inbox_rooted:
                matched |= literals.get(char.lower(), 0) | literals.get(char.upper(), 0)
            state = ((state & matched) << 1) | (
                state & (star if char == DELIMITER else any_but_delimiter)
            )
            if not state:
                return False
            state |= (state & wild) << 1
        return bool(state & self._accept)

    def __repr__(self) -> str:
        return f"ListPattern({self._pattern!r})"


def compile_list_pattern(reference: str, pattern: str) -> ListPattern:
    """A matcher for LIST/LSUB ``reference`` and ``pattern`` (decoded text).

    The canonical pattern is the plain concatenation of the two, as Dovecot does
    (RFC 9051 §6.3.9 leaves the joining to the server).
    """
    return ListPattern(reference + pattern)

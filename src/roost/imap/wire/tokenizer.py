"""The lexical layer of the IMAP command grammar (RFC 9051 §9), pulled by the grammar.

A command arrives from the receiver as text ``pieces`` with the ``literals`` between
them: ``pieces[i]`` ends with the literal marker (``{n}``, ``{n+}``, ``~{n}``, ``~{n+}``)
whose value is ``literals[i]``, and ``pieces[i + 1]`` is the text after that literal.
Nothing is re-assembled or re-scanned: the tokenizer walks the pieces once with a cursor.

IMAP's lexical classes depend on the position (a mailbox is an astring, a LIST pattern
may hold ``%``/``*``, a sequence set holds ``*``/``:``/``,``), so the grammar asks for the
class it expects instead of receiving a pre-cut token stream. Every method either
consumes what it reads or raises ``ParseError``; ``parse_command`` turns that into a
``BadCommand`` keeping the tag. Parenthesised lists go through ``open_list`` and
``read_value``, which enforce the nesting limit, so no input can recurse deeply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from roost.imap.wire.commands import Literal
from roost.imap.wire.sequence import STAR, SequenceSet

LiteralValue = bytes | Literal
T = TypeVar("T")

MAX_NUMBER = 4_294_967_295  # RFC 9051 §9 number: unsigned 32-bit
MAX_NUMBER64 = 9_223_372_036_854_775_807  # number64, mod-sequence-value (RFC 7162)

# Character classes as negated sets: CTL, SP and 8-bit bytes are never part of a bare word.
_BARE = rb"\x00-\x20\x7f-\xff"
_TAG = re.compile(rb"[^" + _BARE + rb'(){%*"\\+]+')  # astring-char except "+"
_ATOM = re.compile(rb"[^" + _BARE + rb'(){%*"\\\]]+')  # ATOM-CHAR
_ASTRING = re.compile(rb"[^" + _BARE + rb'(){%*"\\]+')  # ASTRING-CHAR: atom + "]"
_LIST_CHARS = re.compile(rb"[^" + _BARE + rb'(){"\\]+')  # list-char: astring + "%" "*"
_WORD = re.compile(rb"[^" + _BARE + rb'(){"]+')  # generic extension value / flag body
_DIGITS = re.compile(rb"[0-9]+")
# Unrolled loop: fast on long strings. RFC 9051 §9 QUOTED-CHAR; 8-bit is allowed
# (UTF-8 after UTF8=ACCEPT, RFC 9051 §6.3.1); CR, LF and NUL are not.
_QUOTED = re.compile(rb'"([^"\\\r\n\x00]*(?:\\["\\][^"\\\r\n\x00]*)*)"')
_UNESCAPE = re.compile(rb'\\(["\\])')
_LITERAL = re.compile(rb"(~?)\{([0-9]+)(\+?)\}")
_SEQUENCE_CHARS = re.compile(rb"[0-9*:,$]+")
_SEQ_NUMBER = rb"(?:[1-9][0-9]{0,9}|\*)"
_SEQUENCE = re.compile(_SEQ_NUMBER + rb"(?::" + _SEQ_NUMBER + rb")?")
_SEQUENCE_SET = re.compile(
    _SEQUENCE.pattern + rb"(?:," + _SEQUENCE.pattern + rb")*",
)


class ParseError(Exception):
    """A syntax error; the message becomes the text of the tagged BAD reply."""

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Atom:
    """A bare word inside a generic value (as opposed to a quoted or literal string)."""

    value: bytes


Value = Atom | bytes | tuple["Value", ...]
"""A generic extension value (RFC 4466 ``tagged-ext-val``): atom, string or list."""


def read_tag_prefix(data: bytes) -> str:
    """The tag at the start of ``data`` if it is a valid tag followed by SP, else "*".

    Used to keep the tag in errors found before the grammar runs (line too long)."""
    match = _TAG.match(data)
    if match is None or match.end() >= len(data) or data[match.end()] != 0x20:
        return "*"
    return match.group().decode("ascii")


def literal_marker(line: bytes) -> tuple[int, bool, bool] | None:
    """``(size, synchronizing, binary)`` if ``line`` ends with a literal marker.

    Absurdly long sizes saturate instead of being converted (int() of thousands of
    digits is slow and raises past 4300); they are over any limit anyway."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    digits = line[start + 1 : -1]
    synchronizing = not digits.endswith(b"+")
    if not synchronizing:
        digits = digits[:-1]
    if not digits or not digits.isdigit():
        return None
    size = int(digits) if len(digits) <= 30 else 10**30
    return size, synchronizing, line[start - 1 : start] == b"~"


def parse_number(digits: bytes, limit: int) -> int:
    """Digits to int, refusing values above ``limit`` without converting huge strings."""
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise ParseError("Number out of range")
    return int(digits)


class Tokenizer:
    """A cursor over one command's pieces and literals."""

    __slots__ = ("_depth", "_index", "_line", "_literals", "_max_depth", "_pieces", "_pos")

    def __init__(
        self,
        pieces: Sequence[bytes],
        literals: Sequence[LiteralValue] = (),
        *,
        max_depth: int = 32,
    ) -> None:
        if len(pieces) != len(literals) + 1:
            raise ValueError("need exactly one more text piece than literals")
        self._pieces = pieces
        self._literals = literals
        self._index = 0
        self._line = pieces[0]
        self._pos = 0
        self._depth = 0
        self._max_depth = max_depth

    # ---- position ---------------------------------------------------------------------

    def peek(self) -> int:
        """The next byte, or -1 at the end of the current piece."""
        return self._line[self._pos] if self._pos < len(self._line) else -1

    def peek_bytes(self, count: int) -> bytes:
        return self._line[self._pos : self._pos + count]

    def at_end(self) -> bool:
        return self._pos >= len(self._line) and self._index == len(self._pieces) - 1

    def rest(self) -> bytes | None:
        """The rest of the command when no literal comes in it, else None (for a
        grammar's cache of parsed tails, keyed with ``max_depth``, which may refuse
        what another tokenizer accepts); ``skip_rest`` then consumes it."""
        if self._index != len(self._pieces) - 1:
            return None
        return self._line[self._pos :]

    @property
    def max_depth(self) -> int:
        return self._max_depth

    def skip_rest(self) -> None:
        self._pos = len(self._line)

    def accept(self, char: bytes) -> bool:
        """Consume ``char`` (one byte) if it is next."""
        if self._line[self._pos : self._pos + 1] == char:
            self._pos += 1
            return True
        return False

    def expect(self, char: bytes, what: str) -> None:
        if not self.accept(char):
            raise ParseError(f"Expected {what}")

    def sp(self) -> None:
        # ``expect`` inlined: every command has a few of these.
        if self._line[self._pos : self._pos + 1] != b" ":
            raise ParseError("Expected space")
        self._pos += 1

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("Unexpected extra arguments")

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        match = pattern.match(self._line, self._pos)
        if match is None:
            raise ParseError(f"Expected {what}")
        self._pos = match.end()
        return match.group()

    # ---- words ------------------------------------------------------------------------

    def read_tag(self) -> str:
        """RFC 9051 §9 ``tag``: astring-chars except "+"."""
        return self._match(_TAG, "tag").decode("ascii")

    def read_atom(self) -> bytes:
        return self._match(_ATOM, "atom")

    def read_keyword(self) -> str:
        """An atom upper-cased: command names, options, capabilities (case-insensitive)."""
        return self._match(_ATOM, "atom").decode("ascii").upper()

    def read_word(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        """A run of bytes matching ``pattern`` (for grammar-specific shapes)."""
        return self._match(pattern, what)

    def read_number(self, limit: int = MAX_NUMBER, *, nonzero: bool = False) -> int:
        value = parse_number(self._match(_DIGITS, "number"), limit)
        if nonzero and value == 0:
            raise ParseError("Expected a non-zero number")
        return value

    def read_flag(self) -> str:
        r"""RFC 9051 §9 ``flag``: ``\`` atom (system flag or extension) or keyword atom,
        kept as written. ``\*`` is only in responses (``flag-perm``), never here."""
        if self.accept(b"\\"):
            return "\\" + self._match(_ATOM, "flag").decode("ascii")
        return self._match(_ATOM, "flag").decode("ascii")

    def read_flag_list(self) -> tuple[str, ...]:
        """``"(" [flag *(SP flag)] ")"``."""
        return tuple(self.read_list(self.read_flag))

    # ---- strings ----------------------------------------------------------------------

    def read_quoted(self) -> bytes:
        match = _QUOTED.match(self._line, self._pos)
        if match is None:
            raise ParseError("Invalid quoted string")
        self._pos = match.end()
        body = match.group(1)
        return _UNESCAPE.sub(rb"\1", body) if b"\\" in body else body

    def read_literal(self) -> tuple[LiteralValue, bool]:
        """A literal's value and whether it was literal8 (``~{n}``, RFC 3516)."""
        match = _LITERAL.match(self._line, self._pos)
        if match is None:
            raise ParseError("Expected literal")
        if match.end() != len(self._line) or self._index >= len(self._literals):
            raise ParseError("Literal must end the line")
        value = self._literals[self._index]
        self._index += 1
        self._line = self._pieces[self._index]
        self._pos = 0
        return value, match.group(1) == b"~"

    def at_literal(self) -> bool:
        return self.peek() in (0x7B, 0x7E)  # "{" or "~"

    def read_string(self) -> bytes:
        """RFC 9051 §9 ``string``: quoted or literal, held in memory (not literal8)."""
        if self.peek() == 0x22:
            return self.read_quoted()
        if self.peek() != 0x7B:
            raise ParseError("Expected string")
        value, _ = self.read_literal()
        if isinstance(value, Literal):
            raise ParseError("Literal too large for this argument")
        return value

    def read_astring(self) -> bytes:
        if self.peek() in (0x22, 0x7B):
            return self.read_string()
        return self._match(_ASTRING, "string")

    def read_nstring(self) -> bytes | None:
        if self.peek() in (0x22, 0x7B):
            return self.read_string()
        if self.peek_bytes(3).upper() == b"NIL":
            self.read_nil()
            return None
        raise ParseError("Expected string or NIL")

    def read_nil(self) -> None:
        word = self._match(_ATOM, "NIL")
        if word.upper() != b"NIL":
            raise ParseError("Expected NIL")

    def read_list_mailbox(self) -> bytes:
        """RFC 9051 §9 ``list-mailbox``: a string, or bare chars including ``%``/``*``."""
        if self.peek() in (0x22, 0x7B):
            return self.read_string()
        return self._match(_LIST_CHARS, "mailbox pattern")

    # ---- structures -------------------------------------------------------------------

    def open_list(self) -> None:
        self.expect(b"(", '"("')
        self._depth += 1
        if self._depth > self._max_depth:
            raise ParseError("Too deeply nested")

    def close_list(self) -> None:
        """The ")" that ends a list opened with ``open_list``."""
        self.expect(b")", '")"')
        self._depth -= 1

    def read_list(self, read_item: Callable[[], T], *, allow_empty: bool = True) -> list[T]:
        """``"(" [item *(SP item)] ")"``, items read by ``read_item``."""
        self.open_list()
        items: list[T] = []
        if self.accept(b")"):
            if not allow_empty:
                raise ParseError("Empty list")
        else:
            items.append(read_item())
            while not self.accept(b")"):
                if not self.accept(b" "):
                    raise ParseError('Expected space or ")"')
                items.append(read_item())
        self._depth -= 1
        return items

    def read_value(self) -> Value:
        """A generic extension value: list, string or bare word (which may be NIL)."""
        if self.peek() == 0x28:
            return tuple(self.read_list(self.read_value))
        if self.peek() in (0x22, 0x7B):
            return self.read_string()
        return Atom(self._match(_WORD, "value"))

    def read_sequence_set(self) -> SequenceSet:
        """RFC 9051 §9 ``sequence-set`` kept as written, or ``$`` (RFC 5182 §2.1).

        The whole set is validated by one regex and split in C; only the numbers are
        converted in Python, so a 64 KiB set costs milliseconds."""
        text = self._match(_SEQUENCE_CHARS, "sequence set")
        if text.isdigit() and len(text) <= 10 and text[0] != 0x30:
            # One number (mbsync's "UID FETCH n ..."): what the regex and split would
            # make of it, without them.
            return SequenceSet(((number := _seq_number(text), number),))
        if text == b"$":
            return SequenceSet.saved()
        if _SEQUENCE_SET.fullmatch(text) is None:
            raise ParseError("Invalid sequence set")
        ranges: list[tuple[int, int]] = []
        for item in text.split(b","):
            low, _, high = item.partition(b":")
            first = _seq_number(low)
            ranges.append((first, _seq_number(high) if high else first))
        return SequenceSet(tuple(ranges))

    def read_partial(self) -> tuple[int, int]:
        """``"<" number64 "." nz-number64 ">"`` (RFC 9051 §9 ``partial``)."""
        self.expect(b"<", '"<"')
        origin = self.read_number(MAX_NUMBER64)
        self.expect(b".", '"."')
        count = self.read_number(MAX_NUMBER64, nonzero=True)
        self.expect(b">", '">"')
        return origin, count


def _seq_number(digits: bytes) -> int:
    if digits == b"*":
        return STAR
    value = int(digits)  # at most 10 digits: checked by the regex
    if value > MAX_NUMBER:
        raise ParseError("Number out of range")
    return value

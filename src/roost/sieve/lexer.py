"""Tokens of the Sieve language (RFC 5228 §8.1), with the line and column of each.

The lexer works on text (a script is UTF-8, RFC 5228 §2.2) and accepts CRLF or bare LF line
ends.  Quoted strings lose their escaping here (``\\"`` and ``\\\\``; any other backslash is
dropped, as Pigeonhole does); ``text:`` strings are dot-unstuffed.  Encoded characters
(RFC 5228 §2.4.2.4) are decoded later, since they are allowed only once ``require`` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class SieveSyntaxError(Exception):
    """A script that cannot be read, located for the person who wrote it."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class Kind(Enum):
    IDENTIFIER = "identifier"
    TAG = "tag"
    NUMBER = "number"
    STRING = "string"
    PUNCT = "punctuation"
    END = "end of script"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str | int
    line: int
    column: int


_QUANTIFIERS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_PUNCT = frozenset(";,()[]{}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+([KMGkmg]?)")
_TEXT_START = re.compile(r"text:[ \t]*(#[^\n]*)?\r?\n")
# RFC 5228 §8.1: numbers are at most 2^63-ish; Roost refuses anything beyond 2^53 to keep the
# compiled form JSON-exact.
_MAX_NUMBER = (1 << 53) - 1


def tokenize(source: str) -> list[Token]:
    """Every token of ``source``, ending with one ``END`` token."""
    tokens: list[Token] = []
    pos = 0
    line = 1
    line_start = 0
    length = len(source)

    def fail(message: str, at: int) -> SieveSyntaxError:
        return SieveSyntaxError(message, line, at - line_start + 1)

    while True:
        # Whitespace and comments.
        while pos < length:
            char = source[pos]
            if char == "\n":
                line += 1
                pos += 1
                line_start = pos
            elif char in " \t\r":
                pos += 1
            elif char == "#":
                end = source.find("\n", pos)
                pos = length if end < 0 else end
            elif source.startswith("/*", pos):
                end = source.find("*/", pos + 2)
                if end < 0:
                    raise fail("unterminated bracket comment", pos)
                newlines = source.count("\n", pos, end)
                if newlines:
                    line += newlines
                    line_start = source.rfind("\n", pos, end) + 1
                pos = end + 2
            else:
                break
        column = pos - line_start + 1
        if pos >= length:
            tokens.append(Token(Kind.END, "", line, column))
            return tokens
        char = source[pos]
        if char in _PUNCT:
            tokens.append(Token(Kind.PUNCT, char, line, column))
            pos += 1
        elif char == '"':
            start_line = line
            text, pos, line, line_start = _quoted(source, pos + 1, line, line_start)
            tokens.append(Token(Kind.STRING, text, start_line, column))
        elif char == ":":
            match = _IDENT.match(source, pos + 1)
            if match is None:
                raise fail("a tag needs a name after ':'", pos)
            tokens.append(Token(Kind.TAG, match.group().lower(), line, column))
            pos = match.end()
        elif "0" <= char <= "9":
            match = _NUMBER.match(source, pos)
            assert match is not None
            digits = match.group()
            suffix = match.group(1).upper()
            value = int(digits[: len(digits) - len(suffix)]) * _QUANTIFIERS.get(suffix, 1)
            if value > _MAX_NUMBER:
                raise fail("number too large", pos)
            pos = match.end()
            if pos < length and (source[pos].isalnum() or source[pos] == "_"):
                raise fail("a number must not run into a word", pos)
            tokens.append(Token(Kind.NUMBER, value, line, column))
        elif (text_start := _TEXT_START.match(source, pos)) is not None:
            start_line = line
            text, pos = _multiline(source, text_start.end())
            if pos < 0:
                raise fail("multi-line string has no terminating '.' line", text_start.start())
            newlines = source.count("\n", text_start.start(), pos)
            line += newlines
            line_start = source.rfind("\n", 0, pos) + 1
            tokens.append(Token(Kind.STRING, text, start_line, column))
        elif (match := _IDENT.match(source, pos)) is not None:
            if source.startswith("text:", pos):
                raise fail("'text:' must be followed by a line end", pos)
            tokens.append(Token(Kind.IDENTIFIER, match.group().lower(), line, column))
            pos = match.end()
        else:
            raise fail(f"unexpected character {char!r}", pos)


def _quoted(source: str, pos: int, line: int, line_start: int) -> tuple[str, int, int, int]:
    """The body of a quoted string starting after its opening quote."""
    parts: list[str] = []
    start = pos
    length = len(source)
    while True:
        if pos >= length:
            raise SieveSyntaxError("unterminated quoted string", line, max(start - line_start, 1))
        char = source[pos]
        if char == '"':
            return "".join(parts), pos + 1, line, line_start
        if char == "\\" and pos + 1 < length:
            # RFC 5228 §2.4.2: "\\" and "\"" are the escapes; any other "\x" reads as "x".
            pos += 1
            char = source[pos]
        if char == "\n":
            line += 1
            line_start = pos + 1
        parts.append(char)
        pos += 1


def _multiline(source: str, pos: int) -> tuple[str, int]:
    """The body of a ``text:`` string from its first line; (text, end) or (…, -1)."""
    lines: list[str] = []
    while True:
        end = source.find("\n", pos)
        if end < 0:
            # The final "." may end the script without a line break.
            if source[pos:].rstrip("\r") == ".":
                return "".join(lines), len(source)
            return "", -1
        raw = source[pos:end]
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw == ".":
            return "".join(lines), end + 1
        # RFC 5228 §2.4.2: a line starting with "." has it doubled (dot-stuffing).
        if raw.startswith(".."):
            raw = raw[1:]
        lines.append(raw + "\r\n")
        pos = end + 1

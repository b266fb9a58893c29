"""Comparators (RFC 4790) and match types (RFC 5228 §2.7.1, RFC 5231 relational).

``matches`` returns whether any value matches any key and, for ``:matches``, the match
variables of the first successful match (RFC 5229 §3.2: ``${0}`` is the whole value,
``${1}``… one per wildcard, each ``*`` as short as possible from the left).
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_LEADING_DIGITS = re.compile(r"[0-9]+")
_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}
_GLOBS: dict[tuple[str, bool], re.Pattern[str]] = {}
_FOLDED: dict[tuple[str, ...], tuple[str, ...]] = {}
_PATTERNS: dict[tuple[str, bool], tuple[list[object], list[str]]] = {}


def fold(text: str) -> str:
    """i;ascii-casemap: only ASCII letters fold (RFC 4790 §9.2)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def numeric(text: str) -> float:
    """i;ascii-numeric: the leading digits, or +infinity without any (RFC 4790 §9.1)."""
    digits = _LEADING_DIGITS.match(text)
    return float("inf") if digits is None else int(digits.group())


def glob(pattern: str, casefold: bool) -> re.Pattern[str]:
    """The regex of a ``:matches`` pattern: ``*`` and ``?`` capture, ``\\`` escapes."""
    cached = _GLOBS.get((pattern, casefold))
    if cached is not None:
        return cached
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            parts.append("(.*?)")
        elif char == "?":
            parts.append("(.)")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if casefold else 0)
    compiled = re.compile("".join(parts), flags)
    if len(_GLOBS) > 4096:
        _GLOBS.clear()
    _GLOBS[(pattern, casefold)] = compiled
    return compiled


_STAR = object()
_ANY = object()


def _tokens(pattern: str, casefold: bool) -> list[object]:
    """A ``:matches`` pattern as wildcards and literal characters (escapes resolved)."""
    tokens: list[object] = []
    escaped = False
    for char in pattern:
        if escaped:
            tokens.append(fold(char) if casefold else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            tokens.append(_STAR)
        elif char == "?":
            tokens.append(_ANY)
        else:
            tokens.append(fold(char) if casefold else char)
    return tokens


def _compiled_pattern(pattern: str, casefold: bool) -> tuple[list[object], list[str]]:
    """Tokens and literal runs of a pattern, cached like the regexes."""
    cached = _PATTERNS.get((pattern, casefold))
    if cached is None:
        tokens = _tokens(pattern, casefold)
        literals: list[str] = []
        run: list[str] = []
        for token in [*tokens, _STAR]:
            if isinstance(token, str):
                run.append(token)
            elif run:
                literals.append("".join(run))
                run = []
        if len(_PATTERNS) > 4096:
            _PATTERNS.clear()
        cached = _PATTERNS[(pattern, casefold)] = (tokens, literals)
    return cached


def _glob_match(tokens: list[object], text: str, original: str) -> list[str] | None:
    """Wildcard match in O(len(text) x len(tokens)), with the wildcards' captures.

    A regex with several lazy ``.*?`` backtracks exponentially on hostile input; here only
    the most recent ``*`` is ever extended, which finds a match whenever one exists and
    the same captures as the regex: each ``*`` as short as possible from the left.
    """
    wildcards = [index for index, token in enumerate(tokens) if token is _STAR or token is _ANY]
    number = {index: position for position, index in enumerate(wildcards)}
    spans: list[tuple[int, int]] = [(0, 0)] * len(wildcards)
    p = t = 0
    star = -1
    star_text = 0
    length = len(text)
    while t < length:
        token = tokens[p] if p < len(tokens) else None
        if token is _ANY:
            spans[number[p]] = (t, t + 1)
            p += 1
            t += 1
        elif token is _STAR:
            star, star_text = p, t
            spans[number[p]] = (t, t)
            p += 1
        elif token is not None and token == text[t]:
            p += 1
            t += 1
        elif star >= 0:
            star_text += 1
            spans[number[star]] = (spans[number[star]][0], star_text)
            p, t = star + 1, star_text
        else:
            return None
    while p < len(tokens) and tokens[p] is _STAR:
        spans[number[p]] = (t, t)
        p += 1
    if p != len(tokens):
        return None
    return [original[start:end] for start, end in spans]


def matches(
    values: Sequence[str],
    keys: Sequence[str],
    match: str,
    comparator: str,
    relation: str | None = None,
) -> tuple[bool, list[str] | None]:
    """Whether a value matches a key; with ``:matches``, the match variables too."""
    if match == "count":
        assert relation is not None
        count = str(len(values))
        compare = _RELATIONS[relation]
        return any(_relate(count, key, comparator, compare) for key in keys), None
    if match == "value":
        assert relation is not None
        compare = _RELATIONS[relation]
        for value in values:
            for key in keys:
                if _relate(value, key, comparator, compare):
                    return True, None
        return False, None
    if match == "matches":
        casefold = comparator == "i;ascii-casemap"
        for key in keys:
            if key.count("*") < 2:
                regex = glob(key, casefold)
                for value in values:
                    found = regex.fullmatch(value)
                    if found is not None:
                        return True, [value, *found.groups()]
                continue
            tokens, literals = _compiled_pattern(key, casefold)
            for value in values:
                text = fold(value) if casefold else value
                # Cheap rejection first: every literal run of the pattern must occur.
                if not all(literal in text for literal in literals):
                    continue
                groups = _glob_match(tokens, text, value)
                if groups is not None:
                    return True, [value, *groups]
        return False, None
    if comparator == "i;ascii-numeric":
        # RFC 4790 §9.1: only equality; the validator refuses :contains with it.
        for value in values:
            number = numeric(value)
            if any(numeric(key) == number for key in keys):
                return True, None
        return False, None
    if comparator == "i;ascii-casemap":
        values = [fold(value) for value in values]
        keys = _folded_keys(keys)
    if match == "is":
        key_set = set(keys)
        return any(value in key_set for value in values), None
    # :contains
    return any(key in value for value in values for key in keys), None


def _folded_keys(keys: Sequence[str]) -> Sequence[str]:
    """Keys folded once per script, not once per message: compiled keys are tuples."""
    if not isinstance(keys, tuple):
        return [fold(key) for key in keys]
    cached = _FOLDED.get(keys)
    if cached is None:
        if len(_FOLDED) > 4096:
            _FOLDED.clear()
        cached = _FOLDED[keys] = tuple(fold(key) for key in keys)
    return cached


def _relate(value: str, key: str, comparator: str, compare: Callable[[Any, Any], bool]) -> bool:
    if comparator == "i;ascii-numeric":
        return compare(numeric(value), numeric(key))
    if comparator == "i;ascii-casemap":
        return compare(fold(value), fold(key))
    return compare(value, key)


def quote_wildcards(text: str) -> str:
    """RFC 5229 §4.1.3 ``:quotewildcard``: escape ``*``, ``?`` and ``\\``."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")

"""The compiled form of a script: checked once at upload, kept, reloaded without parsing.

A ``CompiledScript`` is a tree of ``Node`` values whose tags and arguments are already
checked and normalised (match type, comparator and address part under fixed keys).  It is
picklable and has a JSON form (``to_json``/``from_json``) carrying ``FORMAT_VERSION``; a
stored form whose version differs is refused with ``CompiledVersionError`` so the host
compiles the source again — Pigeonhole's sieve-binary versioning, in miniature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 1

# Values kept in a node: a string, a number, a string list (tuple), a flag (True) or absent.
Value = str | int | bool | tuple[str, ...] | None


class CompiledVersionError(ValueError):
    """A stored compiled script from another version of the compiler; compile it again."""


@dataclass(frozen=True, slots=True)
class Node:
    """A command or a test: its name, normalised tags, positional arguments and children."""

    name: str
    tags: dict[str, Value]
    args: tuple[Value, ...]
    tests: tuple[Node, ...]
    block: tuple[Node, ...] | None
    line: int


@dataclass(frozen=True, slots=True)
class CompiledScript:
    requires: frozenset[str]
    commands: tuple[Node, ...]
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "requires": sorted(self.requires),
                "commands": [_dump(node) for node in self.commands],
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> CompiledScript:
        """The stored form; anything unreadable is a ``CompiledVersionError`` too."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise CompiledVersionError(f"unreadable compiled form: {error}") from None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise CompiledVersionError(f"compiled format {found!r}, expected {FORMAT_VERSION}")
        try:
            return cls(
                frozenset(data["requires"]),
                tuple(_load(node) for node in data["commands"]),
            )
        except (KeyError, TypeError, ValueError, AssertionError) as error:
            raise CompiledVersionError(f"unreadable compiled form: {error!r}") from None


def _dump_value(value: Value) -> Any:
    if isinstance(value, tuple):
        return {"l": list(value)}
    return value


def _load_value(value: Any) -> Value:
    if isinstance(value, dict):
        return tuple(value["l"])
    assert value is None or isinstance(value, str | int | bool)
    return value


def _dump(node: Node) -> Any:
    return [
        node.name,
        {key: _dump_value(value) for key, value in node.tags.items()},
        [_dump_value(value) for value in node.args],
        [_dump(test) for test in node.tests],
        None if node.block is None else [_dump(command) for command in node.block],
        node.line,
    ]


def _load(data: Any) -> Node:
    name, tags, args, tests, block, line = data
    return Node(
        name,
        {key: _load_value(value) for key, value in tags.items()},
        tuple(_load_value(value) for value in args),
        tuple(_load(test) for test in tests),
        None if block is None else tuple(_load(command) for command in block),
        line,
    )

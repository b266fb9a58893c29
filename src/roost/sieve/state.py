"""The state of one run: variables, flags, the (possibly edited) header, the budget.

Shared by the command interpreter and the tests.  Variable expansion (RFC 5229 §3) happens
here: ``${name}``, ``${global.name}`` (RFC 6609 §3.5) and match variables ``${0}``…``${9}``;
an unknown variable expands to the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses

from roost.sieve.actions import HeaderEdit, ResultBuilder, SieveRuntimeError
from roost.sieve.addresses import parts
from roost.sieve.compiled import CompiledScript, Node
from roost.sieve.host import Host, Limits
from roost.sieve.matching import matches
from roost.sieve.message import Envelope, MessageView, decode_words

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[0-9]+)\}")
FLAGS_VARIABLE = ""  # the internal variable of imap4flags (RFC 5232 §3)


@dataclass(slots=True)
class Frame:
    """One script being run (the main one or an included one) and its local variables."""

    script: CompiledScript
    variables: dict[str, str] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    uses_variables: bool = False

    def __post_init__(self) -> None:
        self.uses_variables = "variables" in self.script.requires


@dataclass(slots=True)
class State:
    message: MessageView
    envelope: Envelope
    host: Host
    limits: Limits
    builder: ResultBuilder
    globals: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    match_variables: list[str] = field(default_factory=list)
    edits: list[HeaderEdit] = field(default_factory=list)
    fields: list[tuple[str, str]] | None = None
    warnings: list[str] = field(default_factory=list)
    instructions: int = 0
    _decoded: dict[str, list[str]] = field(default_factory=dict)
    _addresses: dict[str, list[str]] = field(default_factory=dict)
    _address_parts: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def tick(self, node: Node) -> None:
        self.instructions += 1
        if self.instructions > self.limits.max_instructions:
            raise SieveRuntimeError(
                f"more than {self.limits.max_instructions} instructions", node.line
            )

    # Header access ---------------------------------------------------------------------------

    def header_fields(self) -> Sequence[tuple[str, str]]:
        return self.message.header_fields() if self.fields is None else self.fields

    def edit_fields(self) -> list[tuple[str, str]]:
        """The header for editing (RFC 5293 §4: later tests see the edits)."""
        if self.fields is None:
            self.fields = list(self.message.header_fields())
        self._decoded.clear()
        self._addresses.clear()
        self._address_parts.clear()
        return self.fields

    def headers(self, name: str) -> list[str]:
        """Decoded values of the fields called ``name``, in order."""
        key = name.lower()
        cached = self._decoded.get(key)
        if cached is None:
            cached = [
                decode_words(value)
                for field_name, value in self.header_fields()
                if field_name.lower() == key
            ]
            self._decoded[key] = cached
        return cached

    def raw_headers(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field_name, value in self.header_fields() if field_name.lower() == key]

    def addresses(self, value: str) -> list[str]:
        """The addresses of one header value (groups flattened, display names dropped)."""
        cached = self._addresses.get(value)
        if cached is None:
            cached = [address for _, address in getaddresses([value]) if address]
            self._addresses[value] = cached
        return cached

    def address_parts(self, name: str, part: str) -> list[str]:
        """The ``part`` of every address in the fields called ``name``."""
        key = (name.lower(), part)
        cached = self._address_parts.get(key)
        if cached is None:
            addresses = [
                address for value in self.headers(name) for address in self.addresses(value)
            ]
            cached = parts(addresses, part)
            self._address_parts[key] = cached
        return cached

    # Variables -------------------------------------------------------------------------------

    def expand(self, text: str, frame: Frame) -> str:
        if "${" not in text or not frame.uses_variables:
            return text
        return _REFERENCE.sub(lambda found: self.lookup(found.group(1), frame), text)

    def expand_all(self, texts: Sequence[str], frame: Frame) -> Sequence[str]:
        if frame.uses_variables:
            for text in texts:
                if "${" in text:
                    return [self.expand(text, frame) for text in texts]
        return texts

    def lookup(self, name: str, frame: Frame) -> str:
        if name.isdigit():
            index = int(name)
            return self.match_variables[index] if index < len(self.match_variables) else ""
        key = name.lower()
        if key.startswith("global."):
            return self.globals.get(key[7:], "")
        if "." in key:
            return ""
        if key in frame.global_names:
            return self.globals.get(key, "")
        return frame.variables.get(key, "")

    def assign(self, name: str, value: str, frame: Frame, line: int) -> None:
        if len(value) > self.limits.max_variable_size:
            value = value[: self.limits.max_variable_size]
        key = name.lower()
        if key.startswith("global."):
            target, key = self.globals, key[7:]
        elif key in frame.global_names:
            target = self.globals
        else:
            target = frame.variables
        if key not in target and len(target) >= self.limits.max_variables:
            raise SieveRuntimeError(f"more than {self.limits.max_variables} variables", line)
        target[key] = value

    # Matching --------------------------------------------------------------------------------

    def match(self, node: Node, values: Sequence[str], keys: Sequence[str], frame: Frame) -> bool:
        """The match of a test, per its tags, setting match variables on a ``:matches`` hit."""
        tags = node.tags
        match = tags.get("match", "is")
        comparator = tags.get("comparator", "i;ascii-casemap")
        relation = tags.get(match) if match == "value" or match == "count" else None
        if frame.uses_variables:
            keys = self.expand_all(keys, frame)
        assert isinstance(match, str) and isinstance(comparator, str)
        found, captured = matches(
            values, keys, match, comparator, relation if isinstance(relation, str) else None
        )
        # RFC 5229 §3.2: match variables change only when a :matches test succeeds.
        if captured is not None and frame.uses_variables:
            self.match_variables = captured
        return found


def select_index(values: list[str], node: Node) -> list[str]:
    """RFC 5260 §6: ``:index n`` picks the nth field, counting from the end with ``:last``."""
    index = node.tags.get("index")
    if not isinstance(index, int):
        return values
    if index < 1 or index > len(values):
        return []
    return [values[-index] if node.tags.get("last") else values[index - 1]]

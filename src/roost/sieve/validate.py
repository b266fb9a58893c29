"""Check a parsed script against ``spec`` and turn it into the compiled form.

Errors carry the line and column of the offending command, test or argument.  Checks that
depend on literal values (a comparator name, a relation, a date part, a zone, a variable
name, a redirect address) are made here when the value is a constant; values built from
variables are checked again at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from roost.sieve.compiled import CompiledScript, Node, Value
from roost.sieve.lexer import SieveSyntaxError
from roost.sieve.parser import CommandNode, Number, Strings, Tag, TestNode, parse
from roost.sieve.spec import (
    ADDRESS_FIELDS,
    COMMANDS,
    COMPARATORS,
    DATE_PARTS,
    EXTENSIONS,
    IMPLIED,
    RELATIONS,
    TESTS,
    Signature,
)

_ENCODED = re.compile(r"\$\{(hex|unicode):([^}]*)\}", re.IGNORECASE)
_HEX_UNITS = re.compile(r"[0-9a-fA-F]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ZONE = re.compile(r"[+-][0-9]{4}\Z")
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")


def compile_script(
    source: str, extensions: Iterable[str] = EXTENSIONS, max_nesting: int = 32
) -> CompiledScript:
    """Parse and check ``source``; raises ``SieveSyntaxError`` with a line and a column."""
    tree = parse(source, max_nesting)
    return _Validator(frozenset(extensions)).script(tree)


def decode_encoded(text: str, line: int, column: int) -> str:
    """RFC 5228 §2.4.2.4: ``${hex:..}`` and ``${unicode:..}``; a malformed one stays as is."""

    def replace(match: re.Match[str]) -> str:
        units = match.group(2).split()
        if not units or not all(_HEX_UNITS.fullmatch(unit) for unit in units):
            return match.group()
        if match.group(1).lower() == "hex":
            try:
                return bytes(int(unit, 16) for unit in units).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise SieveSyntaxError("encoded characters are not UTF-8", line, column) from None
        points = [int(unit, 16) for unit in units]
        # RFC 5228 §2.4.2.4: surrogates and values beyond U+10FFFF are errors.
        if any(point > 0x10FFFF or 0xD800 <= point <= 0xDFFF for point in points):
            raise SieveSyntaxError("invalid Unicode code point", line, column)
        return "".join(chr(point) for point in points)

    return _ENCODED.sub(replace, text) if "${" in text else text


class _Validator:
    def __init__(self, supported: frozenset[str]) -> None:
        self.supported = supported
        self.requires: set[str] = set()

    def fail(self, message: str, line: int, column: int) -> SieveSyntaxError:
        return SieveSyntaxError(message, line, column)

    def script(self, tree: list[CommandNode]) -> CompiledScript:
        commands = self.commands(tree, top=True)
        return CompiledScript(frozenset(self.requires), tuple(commands))

    def need(self, extension: str | None, what: str, line: int, column: int) -> None:
        if extension is not None and extension not in self.requires:
            raise self.fail(f"{what} needs 'require \"{extension}\"'", line, column)

    def commands(self, nodes: list[CommandNode], top: bool = False) -> list[Node]:
        compiled: list[Node] = []
        previous = ""
        leading = top
        for node in nodes:
            if node.name == "require":
                if not leading:
                    raise self.fail(
                        "'require' must come before other commands", node.line, node.column
                    )
                self.require(node)
                previous = "require"
                continue
            leading = False
            if node.name in ("elsif", "else") and previous not in ("if", "elsif"):
                raise self.fail(f"'{node.name}' without a preceding 'if'", node.line, node.column)
            compiled.append(self.command(node))
            previous = node.name
        return compiled

    def require(self, node: CommandNode) -> None:
        _tags, args = self.arguments(
            node.name, COMMANDS["require"], node.arguments, node.line, node.column
        )
        names = args[0]
        assert isinstance(names, tuple)
        for name in names:
            if name not in self.supported:
                raise self.fail(f"unsupported extension {name!r}", node.line, node.column)
            self.requires.add(name)
            self.requires.update(IMPLIED.get(name, ()))

    def command(self, node: CommandNode) -> Node:
        signature = COMMANDS.get(node.name)
        if signature is None:
            raise self.fail(f"unknown command {node.name!r}", node.line, node.column)
        self.need(signature.extension, f"command '{node.name}'", node.line, node.column)
        tags, args = self.arguments(node.name, signature, node.arguments, node.line, node.column)
        tests = self.test_arguments(node.name, signature, node.tests, node.line, node.column)
        if signature.block and node.block is None:
            raise self.fail(f"'{node.name}' needs a block", node.line, node.column)
        if not signature.block and node.block is not None:
            raise self.fail(f"'{node.name}' takes no block", node.line, node.column)
        block = None if node.block is None else tuple(self.commands(node.block))
        self.check_command(node, tags, args)
        return Node(node.name, tags, args, tests, block, node.line)

    def test(self, node: TestNode) -> Node:
        signature = TESTS.get(node.name)
        if signature is None:
            raise self.fail(f"unknown test {node.name!r}", node.line, node.column)
        self.need(signature.extension, f"test '{node.name}'", node.line, node.column)
        tags, args = self.arguments(node.name, signature, node.arguments, node.line, node.column)
        tests = self.test_arguments(node.name, signature, node.tests, node.line, node.column)
        self.check_test(node, tags, args)
        return Node(node.name, tags, args, tests, None, node.line)

    def test_arguments(
        self, name: str, signature: Signature, tests: list[TestNode], line: int, column: int
    ) -> tuple[Node, ...]:
        if signature.tests == "none" and tests:
            raise self.fail(f"'{name}' takes no test", line, column)
        if signature.tests == "one" and len(tests) != 1:
            raise self.fail(f"'{name}' needs exactly one test", line, column)
        if signature.tests == "list" and not tests:
            raise self.fail(f"'{name}' needs a test list", line, column)
        return tuple(self.test(test) for test in tests)

    def arguments(
        self,
        name: str,
        signature: Signature,
        arguments: list[Tag | Number | Strings],
        line: int,
        column: int,
    ) -> tuple[dict[str, Value], tuple[Value, ...]]:
        tags: dict[str, Value] = {}
        positional: list[Tag | Number | Strings] = []
        items = iter(arguments)
        for argument in items:
            if not isinstance(argument, Tag):
                positional.append(argument)
                continue
            if positional:
                raise self.fail(
                    f"tag ':{argument.name}' after positional arguments",
                    argument.line,
                    argument.column,
                )
            spec = signature.tags.get(argument.name)
            if spec is None:
                raise self.fail(
                    f"'{name}' has no tag ':{argument.name}'", argument.line, argument.column
                )
            self.need(spec.extension, f"tag ':{argument.name}'", argument.line, argument.column)
            if spec.key in tags:
                raise self.fail(
                    f"tag ':{argument.name}' conflicts with an earlier tag",
                    argument.line,
                    argument.column,
                )
            if spec.argument is None:
                tags[spec.key] = True if spec.key == argument.name else argument.name
                continue
            value_node = next(items, None)
            if value_node is None or isinstance(value_node, Tag):
                raise self.fail(
                    f"tag ':{argument.name}' needs a {spec.argument}",
                    argument.line,
                    argument.column,
                )
            value = self.value(value_node, spec.argument, f"':{argument.name}'")
            if spec.key == argument.name:
                tags[spec.key] = value
            else:
                tags[spec.key] = argument.name
                tags[argument.name] = value
        kinds = signature.positional
        required = sum(1 for kind in kinds if not kind.startswith("?"))
        if not required <= len(positional) <= len(kinds):
            expected = str(required) if required == len(kinds) else f"{required} to {len(kinds)}"
            raise self.fail(
                f"'{name}' takes {expected} arguments, found {len(positional)}", line, column
            )
        optional_left = len(positional) - required
        args: list[Value] = []
        remaining = iter(positional)
        for kind in kinds:
            if kind.startswith("?"):
                if optional_left == 0:
                    args.append(None)
                    continue
                optional_left -= 1
            args.append(self.value(next(remaining), kind.lstrip("?"), f"'{name}'"))
        return tags, tuple(args)

    def value(self, node: Tag | Number | Strings, kind: str, where: str) -> Value:
        if kind == "number":
            if not isinstance(node, Number):
                raise self.fail(f"{where} expects a number", node.line, node.column)
            return node.value
        if not isinstance(node, Strings):
            raise self.fail(f"{where} expects a string", node.line, node.column)
        values = node.values
        if "encoded-character" in self.requires:
            values = [decode_encoded(value, node.line, node.column) for value in values]
        if kind == "string":
            if node.is_list:
                raise self.fail(
                    f"{where} expects a single string, not a list", node.line, node.column
                )
            return values[0]
        return tuple(values)

    def check_command(
        self, node: CommandNode, tags: dict[str, Value], args: tuple[Value, ...]
    ) -> None:
        line, column = node.line, node.column
        if node.name == "set":
            name = args[0]
            assert isinstance(name, str)
            # RFC 6609 §3.5: "global." names the global namespace once include is required.
            if "include" in self.requires and name.lower().startswith("global."):
                name = name[7:]
            if not _VARIABLE_NAME.match(name):
                raise self.fail(f"invalid variable name {name!r}", line, column)
        elif node.name in ("setflag", "addflag", "removeflag") and args[0] is not None:
            # RFC 5232 §3: the variable-name form exists only with the variables extension.
            self.need("variables", f"'{node.name}' with a variable name", line, column)
        elif node.name == "global":
            assert isinstance(args[0], tuple)
            self.need("variables", "command 'global'", line, column)
            for name in args[0]:
                if not _VARIABLE_NAME.match(name):
                    raise self.fail(f"invalid variable name {name!r}", line, column)
        elif node.name == "vacation":
            if "days" in tags and "seconds" in tags:
                raise self.fail("':days' and ':seconds' are exclusive", line, column)
        elif node.name == "addheader":
            field = args[0]
            assert isinstance(field, str)
            if "${" not in field and not _FIELD_NAME.match(field):
                raise self.fail(f"invalid header field name {field!r}", line, column)
        elif node.name == "deleteheader":
            if "last" in tags and "index" not in tags:
                raise self.fail("':last' needs ':index'", line, column)
            self.check_matching(tags, line, column)
        elif node.name == "redirect":
            address = args[0]
            assert isinstance(address, str)
            if "${" not in address and not _looks_like_address(address):
                raise self.fail(f"invalid redirect address {address!r}", line, column)

    def check_test(self, node: TestNode, tags: dict[str, Value], args: tuple[Value, ...]) -> None:
        line, column = node.line, node.column
        if node.name == "size" and "size" not in tags:
            raise self.fail("'size' needs ':over' or ':under'", line, column)
        if "last" in tags and "index" not in tags and node.name != "duplicate":
            raise self.fail("':last' needs ':index'", line, column)
        if node.name in ("date", "currentdate"):
            part = args[-2]
            assert isinstance(part, str)
            if "${" not in part and part.lower() not in DATE_PARTS:
                raise self.fail(f"unknown date part {part!r}", line, column)
            zone = tags.get("zone")
            literal = isinstance(zone, str) and zone != "originalzone" and "${" not in zone
            if literal and not _ZONE.match(str(zone)):
                raise self.fail(f"invalid zone {zone!r}", line, column)
        if node.name == "address":
            names = args[0]
            assert isinstance(names, tuple)
            for name in names:
                if "${" not in name and name.lower() not in ADDRESS_FIELDS:
                    raise self.fail(f"field {name!r} holds no addresses", line, column)
        if node.name == "envelope":
            parts = args[0]
            assert isinstance(parts, tuple)
            for part in parts:
                if "${" not in part and part.lower() not in ("from", "to", "auth"):
                    raise self.fail(f"unknown envelope part {part!r}", line, column)
        if node.name == "hasflag" and args[0] is not None:
            self.need("variables", "'hasflag' with variable names", line, column)
        self.check_matching(tags, line, column)

    def check_matching(self, tags: dict[str, Value], line: int, column: int) -> None:
        comparator = tags.get("comparator", "i;ascii-casemap")
        assert isinstance(comparator, str)
        if comparator not in COMPARATORS:
            raise self.fail(f"unknown comparator {comparator!r}", line, column)
        self.need(COMPARATORS[comparator], f"comparator {comparator!r}", line, column)
        match = tags.get("match")
        if match in ("value", "count"):
            relation = tags[str(match)]
            assert isinstance(relation, str)
            if relation.lower() not in RELATIONS:
                raise self.fail(f"unknown relation {relation!r}", line, column)
            tags[str(match)] = relation.lower()
        # RFC 4790 §9.1: i;ascii-numeric offers equality and ordering, no substring match.
        if comparator == "i;ascii-numeric" and match in ("contains", "matches"):
            raise self.fail(f"comparator 'i;ascii-numeric' cannot do ':{match}'", line, column)


def _looks_like_address(address: str) -> bool:
    local, at, domain = address.strip().rpartition("@")
    return bool(at and local and domain and " " not in domain and "<" not in address)

"""The grammar of RFC 5228 §8.2: tokens to a tree of commands, tests and arguments.

The parser knows the shape of the language only; which commands exist and what arguments
they take is the validator's business (``spec``), so an unknown command is a validation
error with the same line and column as a syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.sieve.lexer import Kind, SieveSyntaxError, Token, tokenize


@dataclass(slots=True)
class Tag:
    name: str
    line: int
    column: int


@dataclass(slots=True)
class Number:
    value: int
    line: int
    column: int


@dataclass(slots=True)
class Strings:
    """A string or a string list; ``is_list`` tells them apart for argument checking."""

    values: list[str]
    is_list: bool
    line: int
    column: int


Argument = Tag | Number | Strings


@dataclass(slots=True)
class TestNode:
    name: str
    arguments: list[Argument]
    tests: list[TestNode]
    line: int
    column: int


@dataclass(slots=True)
class CommandNode:
    name: str
    arguments: list[Argument]
    tests: list[TestNode]
    block: list[CommandNode] | None
    line: int
    column: int
    # Set by the parser when a test list was written with parentheses (anyof/allof).
    test_list: bool = field(default=False)


def parse(source: str, max_nesting: int = 32) -> list[CommandNode]:
    """The commands of ``source``; raises ``SieveSyntaxError`` with line and column."""
    return _Parser(tokenize(source), max_nesting).script()


class _Parser:
    def __init__(self, tokens: list[Token], max_nesting: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.max_nesting = max_nesting
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Kind.END:
            self.pos += 1
        return token

    def fail(self, message: str, token: Token) -> SieveSyntaxError:
        return SieveSyntaxError(message, token.line, token.column)

    def is_punct(self, char: str) -> bool:
        token = self.peek()
        return token.kind is Kind.PUNCT and token.value == char

    def expect_punct(self, char: str, what: str) -> None:
        token = self.take()
        if token.kind is not Kind.PUNCT or token.value != char:
            raise self.fail(f"expected {what}, found {_describe(token)}", token)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > self.max_nesting:
            raise self.fail(f"nested deeper than {self.max_nesting} levels", token)

    def script(self) -> list[CommandNode]:
        commands = self.commands()
        token = self.peek()
        if token.kind is not Kind.END:
            raise self.fail(f"expected a command, found {_describe(token)}", token)
        return commands

    def commands(self) -> list[CommandNode]:
        commands: list[CommandNode] = []
        while self.peek().kind is Kind.IDENTIFIER:
            commands.append(self.command())
        return commands

    def command(self) -> CommandNode:
        name = self.take()
        arguments = self.arguments()
        tests: list[TestNode] = []
        test_list = False
        if self.is_punct("("):
            tests = self.test_list()
            test_list = True
        elif self.peek().kind is Kind.IDENTIFIER:
            tests = [self.test()]
        if self.is_punct(";"):
            self.take()
            block = None
        elif self.is_punct("{"):
            opening = self.take()
            self.enter(opening)
            block = self.commands()
            self.expect_punct("}", "'}' or a command")
            self.depth -= 1
        else:
            token = self.peek()
            raise self.fail(
                f"expected ';' or '{{' after a command, found {_describe(token)}", token
            )
        return CommandNode(
            str(name.value), arguments, tests, block, name.line, name.column, test_list
        )

    def arguments(self) -> list[Argument]:
        arguments: list[Argument] = []
        while True:
            token = self.peek()
            if token.kind is Kind.TAG:
                self.take()
                arguments.append(Tag(str(token.value), token.line, token.column))
            elif token.kind is Kind.NUMBER:
                self.take()
                assert isinstance(token.value, int)
                arguments.append(Number(token.value, token.line, token.column))
            elif token.kind is Kind.STRING:
                self.take()
                arguments.append(Strings([str(token.value)], False, token.line, token.column))
            elif token.kind is Kind.PUNCT and token.value == "[":
                arguments.append(self.string_list())
            else:
                return arguments

    def string_list(self) -> Strings:
        opening = self.take()
        values: list[str] = []
        while True:
            token = self.take()
            if token.kind is not Kind.STRING:
                raise self.fail(f"expected a string in a list, found {_describe(token)}", token)
            values.append(str(token.value))
            if self.is_punct(","):
                self.take()
                continue
            self.expect_punct("]", "',' or ']'")
            return Strings(values, True, opening.line, opening.column)

    def test_list(self) -> list[TestNode]:
        opening = self.take()
        self.enter(opening)
        tests = [self.test()]
        while self.is_punct(","):
            self.take()
            tests.append(self.test())
        self.expect_punct(")", "',' or ')'")
        self.depth -= 1
        return tests

    def test(self) -> TestNode:
        name = self.take()
        if name.kind is not Kind.IDENTIFIER:
            raise self.fail(f"expected a test, found {_describe(name)}", name)
        self.enter(name)
        arguments = self.arguments()
        tests: list[TestNode] = []
        if self.is_punct("("):
            tests = self.test_list()
        elif self.peek().kind is Kind.IDENTIFIER:
            tests = [self.test()]
        self.depth -= 1
        return TestNode(str(name.value), arguments, tests, name.line, name.column)


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "the end of the script"
    if token.kind is Kind.STRING:
        return "a string"
    return f"{token.kind.value} {token.value!r}"

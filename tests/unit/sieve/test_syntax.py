"""RFC 5228 §2 and §8: lexical structure and grammar, errors located by line and column."""

from __future__ import annotations

import pytest

from roost.sieve import SieveSyntaxError, compile_script
from roost.sieve.lexer import Kind, tokenize
from roost.sieve.parser import parse


def test_tokens_comments_and_numbers() -> None:
    source = "if size :over 1K # comment\n/* bracket\ncomment */ { keep; } 2M 3G 4"
    tokens = [(token.kind, token.value) for token in tokenize(source)]
    assert tokens == [
        (Kind.IDENTIFIER, "if"),
        (Kind.IDENTIFIER, "size"),
        (Kind.TAG, "over"),
        (Kind.NUMBER, 1024),
        (Kind.PUNCT, "{"),
        (Kind.IDENTIFIER, "keep"),
        (Kind.PUNCT, ";"),
        (Kind.PUNCT, "}"),
        (Kind.NUMBER, 2 << 20),
        (Kind.NUMBER, 3 << 30),
        (Kind.NUMBER, 4),
        (Kind.END, ""),
    ]
    assert tokenize(source)[4].line == 3


def test_quoted_string_escapes() -> None:
    (token, _end) = tokenize(r'"a\"b\\c\d"')
    assert token.value == 'a"b\\cd'


def test_multiline_string_with_dot_stuffing_and_comment() -> None:
    source = "text: # a comment\r\nline one\r\n..dot\r\n.\r\n"
    (token, _end) = tokenize(source)
    assert token.value == "line one\r\n.dot\r\n"


def test_multiline_string_accepts_bare_lf() -> None:
    (token, semicolon, _end) = tokenize("text:\nhello\n.\n;")
    assert token.value == "hello\r\n"
    assert semicolon.line == 4


def test_encoded_characters() -> None:
    # RFC 5228 §2.4.2.4 examples.
    script = compile_script(
        'require "encoded-character";\n'
        'if header :is "subject" ["${hex:40}", "${unicode:40}", "${hex: 24 24}", '
        '"${unicode:1F600}", "${hex:xx}", "${HEX:41}"] { keep; }'
    )
    keys = script.commands[0].tests[0].args[1]
    assert keys == ("@", "@", "$$", "\U0001f600", "${hex:xx}", "A")


def test_encoded_characters_need_require() -> None:
    script = compile_script('if header :is "subject" "${hex:40}" { keep; }')
    assert script.commands[0].tests[0].args[1] == ("${hex:40}",)


def test_nested_structure() -> None:
    tree = parse('if anyof (not exists "x", allof (true, false)) { if true { stop; } }')
    assert tree[0].tests[0].name == "anyof"
    assert [test.name for test in tree[0].tests[0].tests] == ["not", "allof"]
    assert tree[0].block is not None and tree[0].block[0].name == "if"


@pytest.mark.parametrize(
    ("source", "line", "column", "fragment"),
    [
        ("keep", 1, 5, "expected ';'"),
        ("if true {\n  keep;\n", 3, 1, "'}'"),
        ('"unterminated', 1, 1, "unterminated"),
        ("keep;\n/* open", 2, 1, "bracket comment"),
        ("redirect text:\nfoo\n", 1, 10, "terminating"),
        ('if header :is ["a", ] "b" {}', 1, 21, "expected a string"),
        ("if anyof (true false) {}", 1, 11, "'true' takes no test"),
        ("if anyof (true, false {}", 1, 23, "',' or ')'"),
        ("keep;\n  frobnicate;", 2, 3, "unknown command"),
        ("if frob {}", 1, 4, "unknown test"),
        ('keep;\nfileinto "x";', 2, 1, 'require "fileinto"'),
        ('require "nonsense";', 1, 1, "unsupported extension"),
        ('keep;\nrequire "fileinto";', 2, 1, "must come before"),
        ('if header :bogus "a" "b" {}', 1, 11, "no tag ':bogus'"),
        ('if header :is :contains "a" "b" {}', 1, 15, "conflicts"),
        ('if header "a" {}', 1, 4, "takes 2 arguments"),
        ("if size 10 {}", 1, 4, ":over"),
        ("else { keep; }", 1, 1, "without a preceding 'if'"),
        ("if true;", 1, 1, "needs a block"),
        ("keep { }", 1, 1, "takes no block"),
        ('redirect ["a@b.c", "d@e.f"];', 1, 10, "single string"),
        ('redirect "not an address";', 1, 1, "invalid redirect address"),
        ('if header :comparator "i;bogus" "a" "b" {}', 1, 4, "unknown comparator"),
        ('if header :comparator "i;ascii-numeric" "a" "b" {}', 1, 4, "comparator-i;ascii-numeric"),
        ('if header :value "gt" "a" "b" {}', 1, 11, 'require "relational"'),
        ("if size :over 12abc {}", 1, 17, "run into a word"),
        ("keep; @", 1, 7, "unexpected character"),
        ("if true { keep; }}", 1, 18, "expected a command"),
    ],
)
def test_errors_carry_line_and_column(source: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(SieveSyntaxError) as caught:
        compile_script(source)
    assert (caught.value.line, caught.value.column) == (line, column), caught.value
    assert fragment in caught.value.message


def test_nesting_limit() -> None:
    deep = "if true {" * 40 + "}" * 40
    with pytest.raises(SieveSyntaxError, match="nested deeper"):
        compile_script(deep)
    compile_script("if true {" * 10 + "}" * 10)


@pytest.mark.parametrize(
    "source",
    [
        'require "imap4flags"; setflag "name" "\\\\Seen";',
        'require "imap4flags"; if hasflag "name" "\\\\Seen" { keep; }',
        'require "variables"; set "global.x" "1";',
        'require "variables"; set "a-b" "1";',
    ],
)
def test_variable_forms_need_their_extensions(source: str) -> None:
    with pytest.raises(SieveSyntaxError):
        compile_script(source)


def test_global_namespace_with_include() -> None:
    compile_script('require ["variables", "include"]; set "global.x" "1";')


@pytest.mark.parametrize("field", ["subject", "x-foo", "return-path", "list-id"])
def test_address_test_only_on_address_fields(field: str) -> None:
    # RFC 5228 §5.1; the same fields as Pigeonhole.
    with pytest.raises(SieveSyntaxError, match="holds no addresses"):
        compile_script(f'if address :is "{field}" "x" {{ keep; }}')
    compile_script('if address :is ["Resent-To", "Delivered-To", "Reply-To"] "x" { keep; }')

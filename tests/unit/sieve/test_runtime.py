"""Runtime failures become an implicit keep; header edits apply to the bytes; the parser
and interpreter survive any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roost.sieve import (
    AddHeader,
    DeleteHeader,
    Limits,
    ParsedMessage,
    SieveSyntaxError,
    apply_header_edits,
    compile_script,
)

from .helpers import FakeHost, message, sieve, summary


def assert_kept_after_error(result_error: str | None, fragment: str) -> None:
    assert result_error is not None and fragment in result_error


def test_errors_discard_earlier_actions_and_edits() -> None:
    script = (
        'require ["fileinto", "editheader", "reject"];'
        'addheader "X-A" "1"; fileinto "Lists"; redirect "a@b.test"; reject "no";'
    )
    result = sieve(script)
    assert summary(result) == ["error", "keep"]
    assert result.header_edits == [] and result.implicit_keep
    assert_kept_after_error(result.error, "line 1: reject conflicts")


def test_invalid_redirect_address_from_a_variable() -> None:
    result = sieve('require "variables"; set "to" "not an address"; redirect "${to}";')
    assert summary(result) == ["error", "keep"]
    assert_kept_after_error(result.error, "invalid redirect address")


def test_invalid_zone_from_a_variable() -> None:
    script = (
        'require ["date", "variables"]; set "z" "+99xx";'
        'if currentdate :zone "${z}" :is "year" "2026" { discard; }'
    )
    assert_kept_after_error(sieve(script).error, "invalid zone")


def test_unknown_date_part_from_a_variable() -> None:
    script = (
        'require ["date", "variables"]; set "p" "fortnight";'
        'if currentdate :is "${p}" "1" { discard; }'
    )
    assert_kept_after_error(sieve(script).error, "unknown date part")


def test_action_limit() -> None:
    script = 'require "fileinto";' + "".join(f'fileinto "f{i}";' for i in range(40))
    assert_kept_after_error(sieve(script).error, "more than 32 actions")


def test_variable_count_limit() -> None:
    script = 'require "variables";' + "".join(f'set "v{i}" "x";' for i in range(10))
    result = sieve(script, limits=Limits(max_variables=5))
    assert_kept_after_error(result.error, "more than 5 variables")


def test_script_error_line_is_reported() -> None:
    result = sieve('require "reject";\nkeep;\n\nreject "x";')
    assert result.error == "line 4: reject conflicts with an earlier keep"


def test_host_failure_still_keeps() -> None:
    class Broken(FakeHost):
        def mailbox_exists(self, mailbox: str) -> bool:
            raise OSError("store unavailable")

    result = sieve('require "mailbox"; if mailboxexists "x" { discard; }', host=Broken())
    assert summary(result) == ["error", "keep"]
    assert_kept_after_error(result.error, "internal error: OSError: store unavailable")


def test_apply_header_edits() -> None:
    data = b"Received: a\r\n b\r\nSubject: x\r\nX-T: 1\r\nX-T: 2\r\n\r\nbody\r\n"
    edits = [AddHeader("X-New", "é"), AddHeader("X-L", "l", True), DeleteHeader("x-t", 0)]
    assert apply_header_edits(data, edits) == (
        b"X-New: =?utf-8?b?w6k=?=\r\nReceived: a\r\n b\r\nSubject: x\r\nX-T: 2\r\nX-L: l\r\n"
        b"\r\nbody\r\n"
    )
    assert apply_header_edits(data, []) is data


def test_edits_from_a_run_applied_to_the_message() -> None:
    data = b"Subject: hello\r\nX-Spam: yes\r\nX-Spam: no\r\n\r\nbody\r\n"
    script = 'require "editheader"; deleteheader "x-spam"; addheader :last "X-Checked" "1";'
    result = sieve(script, ParsedMessage(data))
    assert apply_header_edits(data, result.header_edits) == (
        b"Subject: hello\r\nX-Checked: 1\r\n\r\nbody\r\n"
    )


_SIEVE_ALPHABET = st.sampled_from(
    [
        "if",
        "elsif",
        "else",
        "header",
        "address",
        ":is",
        ":matches",
        ":contains",
        "anyof",
        "not",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        ";",
        '"a*"',
        '"subject"',
        "keep",
        "discard",
        "require",
        '"fileinto"',
        "fileinto",
        "text:\n.\n",
        "10K",
        "#c\n",
        "/*",
        "*/",
        " ",
        "\n",
        '"${1}"',
        "set",
        '"variables"',
        "stop",
        "true",
        "size",
        ":over",
        "1",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SIEVE_ALPHABET, max_size=40))
def test_any_token_soup_compiles_or_fails_cleanly(parts: list[str]) -> None:
    source = " ".join(parts)
    try:
        script = compile_script(source)
    except SieveSyntaxError as error:
        assert error.line >= 1 and error.column >= 1
        return
    result = sieve(source)
    assert result.status in ("ok", "error")
    assert script.to_json()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_compiles_or_fails_cleanly(source: str) -> None:
    try:
        compile_script(source)
    except SieveSyntaxError as error:
        assert error.line >= 1 and error.column >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_message_bytes_run(data: bytes) -> None:
    script = (
        'require ["body", "variables", "fileinto"];'
        'if header :matches "subject" "*" { set "s" "${1}"; }'
        'if body :contains "x" { fileinto "x"; }'
        'if address :domain :is "from" "a.test" { discard; }'
    )
    result = sieve(script, ParsedMessage(data))
    assert result.status == "ok", result.error


def test_passed_through_reads_loop_fields() -> None:
    from roost.sieve.host import passed_through

    mail = message("Delivered-To: Me@Example.org", "X-Sieve-Redirected-By: <b@c.test>", "To: x@y")
    assert passed_through(mail) == {"me@example.org", "b@c.test"}

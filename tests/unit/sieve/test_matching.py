"""The ``:matches`` engine: same answers and captures as a regex, without its blow-up."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roost.sieve.matching import _glob_match, _tokens, fold, glob, matches

from .helpers import sieve, summary

_PATTERN = st.text(alphabet="ab*?\\", max_size=8)
_TEXT = st.text(alphabet="abAB*?\\", max_size=12)


@settings(max_examples=2000, deadline=None)
@given(_PATTERN, _TEXT, st.booleans())
def test_wildcard_matcher_agrees_with_regex(pattern: str, text: str, casefold: bool) -> None:
    found = glob(pattern, casefold).fullmatch(text)
    groups = _glob_match(_tokens(pattern, casefold), fold(text) if casefold else text, text)
    assert (groups is None) == (found is None)
    if found is not None:
        assert groups == list(found.groups())


def test_hostile_pattern_is_linear() -> None:
    # A regex with six lazy stars backtracks for hours on this; the matcher does not.
    pattern = "*a*a*a*a*a*a*b"
    assert matches(["a" * 5000], [pattern], "matches", "i;octet") == (False, None)
    script = f'if header :matches "subject" "{pattern}" {{ discard; }}'
    assert summary(sieve(script, b"Subject: " + b"a" * 900 + b"\r\n\r\n")) == ["keep"]


def test_captures_from_the_original_text_under_casefold() -> None:
    assert matches(["Hello World"], ["*O*o*"], "matches", "i;ascii-casemap") == (
        True,
        ["Hello World", "Hell", " W", "rld"],
    )

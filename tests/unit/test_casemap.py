"""i;unicode-casemap (RFC 5051 §2): simple titlecase, then NFKD."""

from __future__ import annotations

from roost.mime.casemap import casemap


def test_equal_under_the_comparator() -> None:
    assert casemap("\u00e4") == casemap("\u00c4") == casemap("a\u0308")
    assert casemap("\u216b") == casemap("xii")  # compatibility decomposition
    assert casemap("\uff52") == casemap("R")  # fullwidth
    assert casemap("\u03c2") == casemap("\u03c3")  # final sigma titlecases to Sigma
    assert casemap("abc") == "ABC"


def test_different_under_the_comparator() -> None:
    assert casemap("\u00e4") != casemap("a")
    # ß has no single-character titlecase (its full one is "Ss"): it stays.
    assert casemap("\u00df") == "\u00df" != casemap("ss")

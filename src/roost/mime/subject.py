"""The base subject of RFC 5256 §2.1, for SORT (SUBJECT) and THREAD (ORDEREDSUBJECT,
REFERENCES).

Input is the subject already decoded (RFC 2047) to text; the steps are those of §2.1:

1. White space runs (including folding) become one space; leading and trailing space
   goes.
2. Trailers ``(fwd)`` are removed from the end, repeatedly (subj-trailer).
3. Leaders are removed from the start, repeatedly: ``re``, ``fw``, ``fwd`` with optional
   ``[blob]`` before the colon (subj-refwd), and ``[blob]`` groups (subj-blob) unless
   removing one would leave nothing.
4. ``[fwd: ... ]`` wrapped around the whole subject is unwrapped (subj-fwd), and steps 2
   to 4 repeat until nothing changes.

The result is compared case-insensitively by SORT (RFC 5256 §3 i;ascii-casemap), so it
is returned lower-cased.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]"
_REFWD = re.compile(rf"^(?:re|fwd?)\s*(?:{_BLOB}\s*)*:\s*", re.IGNORECASE)
_LEADING_BLOB = re.compile(rf"^{_BLOB}\s*")
_FWD_WRAPPER = re.compile(r"^\[fwd:\s*(.*)\]$", re.IGNORECASE | re.DOTALL)


def base_subject(subject: str) -> str:
    text = _WHITESPACE.sub(" ", subject).strip()
    while True:
        previous = text
        while True:  # step 2: trailers
            stripped = _TRAILER.sub("", text)
            if stripped == text:
                break
            text = stripped
        while True:  # step 3: leaders
            match = _REFWD.match(text)
            if match:
                text = text[match.end() :]
                continue
            match = _LEADING_BLOB.match(text)
            if match and text[match.end() :].strip():
                text = text[match.end() :]
                continue
            break
        match = _FWD_WRAPPER.match(text)  # step 4
        if match:
            text = match.group(1).strip()
        if text == previous:
            break
    return text.lower()

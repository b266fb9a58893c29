"""Deterministic test mail: the same seed gives the same messages, byte for byte.

Both servers are seeded from this generator, so they hold the same mail. The messages
are CRLF-terminated RFC 5322 text with a realistic spread of shapes and sizes:

* text/plain (7bit, or quoted-printable when it has non-ASCII text), ~55 %
* multipart/alternative (text + HTML), ~20 %
* multipart/mixed with a base64 attachment (PDF-like), ~15 %
* multipart/mixed (alternative + image), ~7 %
* multipart/mixed with a forwarded message/rfc822, ~3 %

Most are a few KiB; attachments add 3-32 KiB, and about 1 in 300 messages carries a
large one (~160 KiB). Subjects are sometimes RFC 2047 encoded words, some messages are
replies (In-Reply-To / References).

``RARE_WORD`` is planted in the plain-text body of a few messages (``RARE_EVERY``), and
the generated vocabulary can never produce it, so ``SEARCH TEXT RARE_WORD`` has a known
answer. ``FROM_QUERY`` matches the sender of roughly one message in a hundred.
"""

from __future__ import annotations

import base64
import quopri
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RARE_WORD = "xylofrabjous"
RARE_EVERY = 20_000  # one message in this many carries RARE_WORD (at least one always)
FROM_QUERY = "dorothea"

# fmt: off
_SYLLABLES = [
    "ka", "ri", "to", "ne", "ma", "lo", "su", "pe", "di", "an", "el", "or", "um", "is", "ba",
    "co", "fu", "ge", "hi", "ja", "ke", "li", "mo", "nu", "pa", "qui", "re", "sa", "te", "vi",
    "wo", "ra", "be", "ce", "de", "fe", "go", "ha", "ju", "ki", "la", "mi", "no", "pu", "ro",
    "si", "tu", "va", "we",
]
_FIRST = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "yvonne", "zoe", "amir", "bea", "chen", "dara", "emil", "farah",
]
_LAST = [
    "smith", "jones", "garcia", "miller", "davis", "wilson", "moore", "taylor", "anderson",
    "thomas", "jackson", "white", "harris", "martin", "thompson", "robinson", "clark", "lewis",
    "walker", "young",
]
# fmt: on
_DOMAINS = ("example.org", "example.com", "mail.example.net", "lists.example.org")
_LINE_POOL = 30_000
_UNICODE = ("Grüße", "café", "naïve", "Ærøskøbing", "Łódź", "smörgåsbord", "piñata")


@dataclass(frozen=True, slots=True)
class Message:
    data: bytes  # CRLF line endings, as a client would APPEND it
    date: datetime  # also the INTERNALDATE
    seen: bool
    flagged: bool
    has_rare_word: bool
    from_matches: bool


def generate(count: int, seed: int = 1) -> Iterator[Message]:
    """``count`` messages; the first ``n`` of ``generate(m)`` are ``generate(n)``."""
    rng = random.Random(seed)
    lines = _vocabulary(random.Random(seed ^ 0x5EED))
    start = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    # one rare-word message inside the first few hundred, then one every RARE_EVERY
    first_rare = 137
    for n in range(count):
        date = start + timedelta(minutes=7 * n, seconds=rng.randrange(60))
        rare = n == first_rare or (n > first_rare and n % RARE_EVERY == first_rare)
        yield _message(rng, lines, n, date, rare)


@dataclass(frozen=True, slots=True)
class _Lines:
    """Sentences to build bodies from (drawing whole lines keeps generation fast)."""

    words: list[str]
    plain: list[str]
    accented: list[str]  # the same sentences, some with a non-ASCII word in them
    weights: list[float]


def _vocabulary(rng: random.Random) -> _Lines:
    unique = set()
    while len(unique) < 4000:
        unique.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    words = sorted(unique)
    rng.shuffle(words)
    plain, accented = [], []
    for _ in range(_LINE_POOL):
        sentence = _words(rng, words, rng.randint(6, 13))
        plain.append(" ".join(sentence).capitalize() + ".")
        if rng.random() < 0.3:
            sentence.insert(rng.randrange(len(sentence)), rng.choice(_UNICODE))
        accented.append(" ".join(sentence).capitalize() + ".")
    return _Lines(words, plain, accented, _weights(_LINE_POOL))


def _message(rng: random.Random, lines: _Lines, n: int, date: datetime, rare: bool) -> Message:
    sender_first = FROM_QUERY if rng.random() < 0.01 else rng.choice(_FIRST)
    sender = _address(rng, sender_first)
    recipients = ", ".join(_address(rng, rng.choice(_FIRST)) for _ in range(rng.randint(1, 3)))
    subject_words = " ".join(_words(rng, lines.words, rng.randint(2, 9)))
    unicode_subject = rng.random() < 0.15
    if unicode_subject:
        subject_text = f"{rng.choice(_UNICODE)} {subject_words}"
        subject = _encoded_word(subject_text)
    else:
        subject = subject_words.capitalize()
    headers = [
        f"Return-Path: <{sender_first}@{_DOMAINS[0]}>",
        f"Received: from mx{n % 7}.example.net (mx{n % 7}.example.net [192.0.2.{n % 250 + 1}])"
        f"\r\n\tby mail.example.org with ESMTPS id {n:08x}; {_rfc5322_date(date)}",
        f"From: {sender}",
        f"To: {recipients}",
    ]
    if rng.random() < 0.2:
        headers.append(f"Cc: {_address(rng, rng.choice(_FIRST))}")
    if rng.random() < 0.3 and n > 0:
        parent = f"<{rng.randrange(n)}.{n % 97}@gen.example.org>"
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
        subject = "Re: " + subject
    headers += [
        f"Subject: {subject}",
        f"Date: {_rfc5322_date(date)}",
        f"Message-ID: <{n}.{n % 97}@gen.example.org>",
        "MIME-Version: 1.0",
        f"X-Mailer: BenchMail {n % 5}.{n % 3}",
    ]
    text = _paragraphs(rng, lines, rng.randint(1, 6), unicode_subject)
    if rare:
        text = text.replace("\r\n\r\n", f"\r\n\r\nSee the {RARE_WORD} note.\r\n\r\n", 1)
        if RARE_WORD not in text:
            text += f"\r\nSee the {RARE_WORD} note.\r\n"
    shape = rng.random()
    if shape < 0.55:
        body_headers, body = _text_part("plain", text)
    elif shape < 0.75:
        body_headers, body = _alternative(rng, text)
    elif shape < 0.90:
        body_headers, body = _mixed(
            rng, [_text_part("plain", text), _attachment(rng, "application/pdf", "report.pdf")]
        )
    elif shape < 0.97:
        body_headers, body = _mixed(
            rng, [_alternative(rng, text), _attachment(rng, "image/png", "photo.png")]
        )
    else:
        inner = _message(rng, lines, n + 1_000_000, date - timedelta(days=1), False)
        forwarded = (["Content-Type: message/rfc822", "Content-Disposition: inline"], inner.data)
        body_headers, body = _mixed(rng, [_text_part("plain", text), forwarded])
    data = "\r\n".join(headers + body_headers).encode() + b"\r\n\r\n" + body
    return Message(
        data=data,
        date=date,
        seen=rng.random() < 0.7,
        flagged=rng.random() < 0.05,
        has_rare_word=rare,
        from_matches=sender_first == FROM_QUERY,
    )


def _address(rng: random.Random, first: str) -> str:
    last = rng.choice(_LAST)
    return f'"{first.capitalize()} {last.capitalize()}" <{first}.{last}@{rng.choice(_DOMAINS)}>'


def _words(rng: random.Random, vocabulary: list[str], k: int) -> list[str]:
    return rng.choices(vocabulary, cum_weights=_weights(len(vocabulary)), k=k)


_CUMULATIVE: dict[int, list[float]] = {}


def _weights(size: int) -> list[float]:
    """Zipf-like cumulative weights: common words are common, as in real text."""
    weights = _CUMULATIVE.get(size)
    if weights is None:
        total, weights = 0.0, []
        for rank in range(1, size + 1):
            total += 1.0 / rank
            weights.append(total)
        _CUMULATIVE[size] = weights
    return weights


def _paragraphs(rng: random.Random, lines: _Lines, count: int, accents: bool) -> str:
    pool = lines.accented if accents else lines.plain
    out = []
    for _ in range(count):
        picked = rng.choices(pool, cum_weights=lines.weights, k=rng.randint(1, 8))
        out.append("\r\n".join(picked))
    return "\r\n\r\n".join(out) + "\r\n"


def _text_part(subtype: str, text: str) -> tuple[list[str], bytes]:
    if text.isascii():
        return [f"Content-Type: text/{subtype}; charset=us-ascii"], text.encode()
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode()).replace(b"\n", b"\r\n")
    return (
        [
            f"Content-Type: text/{subtype}; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ],
        encoded,
    )


def _alternative(rng: random.Random, text: str) -> tuple[list[str], bytes]:
    html = "<html><body>" + "".join(
        f"<p>{paragraph}</p>\r\n" for paragraph in text.split("\r\n\r\n")
    )
    html += "</body></html>\r\n"
    return _multipart(rng, "alternative", [_text_part("plain", text), _text_part("html", html)])


def _mixed(rng: random.Random, parts: list[tuple[list[str], bytes]]) -> tuple[list[str], bytes]:
    return _multipart(rng, "mixed", parts)


def _multipart(
    rng: random.Random, subtype: str, parts: list[tuple[list[str], bytes]]
) -> tuple[list[str], bytes]:
    boundary = f"=_bench_{rng.getrandbits(64):016x}"
    chunks = [b"This is a multi-part message in MIME format.\r\n"]
    for headers, body in parts:
        chunks.append(f"--{boundary}\r\n".encode())
        chunks.append("\r\n".join(headers).encode() + b"\r\n\r\n" + body)
        if not body.endswith(b"\r\n"):
            chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], b"".join(chunks)


def _attachment(rng: random.Random, content_type: str, name: str) -> tuple[list[str], bytes]:
    size = 120_000 if rng.random() < 0.01 else rng.randint(2_000, 24_000)
    encoded = base64.b64encode(rng.randbytes(size))
    encoded = b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + b"\r\n"
    headers = [
        f'Content-Type: {content_type}; name="{name}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{name}"',
    ]
    return headers, encoded


def _encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _rfc5322_date(date: datetime) -> str:
    return date.strftime("%a, %d %b %Y %H:%M:%S +0000")


def new_message(n: int, tag: str = "new") -> bytes:
    """A small message for APPEND during a run (not part of the seeded mail)."""
    return (
        f'From: "Load Generator" <load@example.org>\r\nTo: bench@example.org\r\n'
        f"Subject: {tag} message {n}\r\nDate: Mon, 01 Jul 2024 10:00:00 +0000\r\n"
        f"Message-ID: <{tag}.{n}@load.example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + f"Appended by the load generator, number {n}.\r\n"
        * 40
    ).encode()

"""Generate the synthetic part of the MIME corpus: ``messages/gen-NNN.eml``.

Run ``python tests/corpus/generate.py`` from the repository root. The output is
deterministic (seeded), so running it again rewrites the same files; the generated
messages are committed, together with Dovecot's recorded answers for them
(``record_dovecot.py``). Hand-written edge cases live beside them as ``edge-*.eml`` and
are never touched by this script.

Each message combines, at random: header forms (display names quoted, bare, encoded in
RFC 2047 words of several charsets; groups; route addresses; comments; missing fields),
subjects with reply/forward prefixes and folding, dates in several forms, and a body shape
from the list in ``SHAPES`` (single part of every transfer encoding, alternative, mixed
with attachments and RFC 2231 file names, related, signed, encrypted, S/MIME, digest,
report, message/rfc822 with its own parts), with CRLF or bare LF line ends.
"""

from __future__ import annotations

import base64
import quopri
import random
from collections.abc import Callable
from email.header import Header
from pathlib import Path

OUT = Path(__file__).parent / "messages"
COUNT = 230
SEED = 20260101

WORDS = [
    "meeting",
    "lunch",
    "report",
    "budget",
    "quarterly",
    "review",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "invoice",
    "shipment",
    "delivery",
    "server",
    "roost",
    "imap",
    "mailbox",
    "search",
    "thread",
    "sort",
    "message",
    "part",
    "attachment",
    "picture",
    "holiday",
    "plan",
]
UNICODE_WORDS = ["café", "naïve", "Grüße", "Привет", "日本語", "中文", "Ελληνικά", "żółw", "€uro"]
CHARSETS = ["utf-8", "iso-8859-1", "iso-8859-15", "windows-1252", "koi8-r", "iso-2022-jp"]
NAMES = ["Fred Foobar", "Anne O'Neil", "Smith, John", "Zoë Ångström", "Дмитрий", "李雷", "Bob"]
DOMAINS = ["example.com", "blurdybloop.example", "mail.example.org", "xn--bcher-kva.example"]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def encoded_word(rng: random.Random, text: str) -> str:
    for charset in rng.sample(CHARSETS, len(CHARSETS)):
        try:
            text.encode(charset)
        except UnicodeEncodeError:
            continue
        return Header(text, charset).encode(maxlinelen=1000)
    return Header(text, "utf-8").encode(maxlinelen=1000)


def mailbox(rng: random.Random) -> str:
    local = rng.choice(["fred", "anne.oneil", "j.smith", "zoe+tag", "root", "x_y"])
    domain = rng.choice(DOMAINS)
    name = rng.choice(NAMES)
    form = rng.randrange(9)
    if form == 0:
        return f"{local}@{domain}"
    if form == 1:
        return f'"{name}" <{local}@{domain}>'
    if form == 2:
        return f"{encoded_word(rng, name)} <{local}@{domain}>"
    if form == 3:
        return f"{local}@{domain} ({name})"
    if form == 4 and "," not in name and "'" not in name and name.isascii():
        return f"{name} <{local}@{domain}>"
    if form == 5:
        return f"<{local}@{domain}>"
    if form == 6:
        return f'"{name} \\"nick\\"" <{local}@{domain}>'
    if form == 7:
        return f"<@relay.example,@other.example:{local}@{domain}>"
    return f'"{name}" <{local}@{domain}>'


def address_list(rng: random.Random) -> str:
    form = rng.randrange(10)
    if form == 0:
        return "undisclosed-recipients:;"
    if form == 1:
        members = ", ".join(mailbox(rng) for _ in range(rng.randint(1, 3)))
        return f"Team: {members};, {mailbox(rng)}"
    return ", ".join(mailbox(rng) for _ in range(rng.randint(1, 3)))


def subject(rng: random.Random) -> str:
    base = words(rng, rng.randint(1, 8))
    form = rng.randrange(10)
    if form == 0:
        base = encoded_word(rng, base + " " + rng.choice(UNICODE_WORDS))
    elif form == 1:
        base = "Re: " + base
    elif form == 2:
        base = "Fwd: Re: [list] " + base + " (fwd)"
    elif form == 3:
        base = "RE: re[2]: " + encoded_word(rng, rng.choice(UNICODE_WORDS)) + " " + base
    elif form == 4:
        base = base + " " + words(rng, 20)  # long: folded below
    elif form == 5:
        base = ""
    elif form == 6:
        base = "  spaced \t  out  " + base
    return base


def fold(value: str, width: int = 70) -> str:
    out: list[str] = []
    line = ""
    for word in value.split(" "):
        if line and len(line) + len(word) + 1 > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return "\r\n ".join(out)


def date(rng: random.Random) -> str | None:
    form = rng.randrange(8)
    day = rng.randint(1, 28)
    if form == 0:
        return None
    if form == 1:
        return f"{day} Feb 2021 09:{day:02d}:00 GMT"
    if form == 2:
        return f"Mon, {day} Mar 1997 13:05:{day:02d} -0800 (PST)"
    if form == 3:
        return "not a date at all"
    return f"Tue, {day} Jan 2025 10:{day:02d}:33 +0100"


def leaf(
    rng: random.Random,
    ctype: str = "text/plain",
    *,
    charset: str | None = None,
    text: str | None = None,
    data: bytes | None = None,
    encoding: str | None = None,
    extra: tuple[str, ...] = (),
) -> bytes:
    headers = []
    if charset is None and ctype.startswith("text/"):
        charset = rng.choice(["us-ascii", "utf-8", "UTF-8", "iso-8859-1", None])
    params = f"; charset={charset}" if charset else ""
    if rng.random() < 0.1 and charset:
        params = f'; charset="{charset}"; format=flowed'
    headers.append(f"Content-Type: {ctype}{params}")
    if data is None:
        if text is None:
            text = "\r\n".join(words(rng, rng.randint(3, 14)) for _ in range(rng.randint(1, 8)))
            if rng.random() < 0.3:
                text += "\r\n" + rng.choice(UNICODE_WORDS)
        if ctype == "text/html":
            text = f"<html><body><p>{text}</p><br>&amp; done</body></html>"
        try:
            data = text.encode(charset or "us-ascii")
        except (UnicodeEncodeError, LookupError):
            data = text.encode("utf-8")
    if encoding is None:
        if data.isascii():
            encoding = rng.choice([None, "7bit", "quoted-printable", "base64", "7BIT"])
        else:
            encoding = rng.choice(["8bit", "quoted-printable", "base64", "Base64"])
    if encoding:
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    headers.extend(extra)
    lower = (encoding or "").lower()
    if lower == "base64":
        body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif lower == "quoted-printable":
        body = quopri.encodestring(data.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    else:
        body = data
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + body


def attachment(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    payload = bytes(rng.randrange(256) for _ in range(rng.randint(10, 600)))
    if kind == 0:
        name = "report.pdf"
        extra = (f'Content-Disposition: attachment; filename="{name}"',)
        return leaf(
            rng, f'application/pdf; name="{name}"', data=payload, encoding="base64", extra=extra
        )
    if kind == 1:
        extra = ("Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.txt",)
        return leaf(rng, "text/plain", charset="utf-8", extra=extra)
    if kind == 2:
        extra = (
            "Content-Disposition: attachment;\r\n filename*0*=iso-8859-1'fr'caf%E9;\r\n"
            ' filename*1=" menu.txt"; size=1234',
        )
        return leaf(rng, "text/plain", extra=extra)
    if kind == 3:
        extra = (
            "Content-ID: <img1@example.com>",
            "Content-Description: a picture",
            "Content-Disposition: inline",
            "Content-Location: http://example.com/a.png",
            "Content-Language: en, de",
        )
        return leaf(rng, "image/png", data=payload, encoding="base64", extra=extra)
    if kind == 4:
        extra = ("Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==", "Content-Disposition: ATTACHMENT")
        return leaf(rng, "application/octet-stream", data=payload, encoding="base64", extra=extra)
    name = encoded_word(rng, "Grüße.txt")
    extra = (f'Content-Disposition: attachment; filename="{name}"',)
    return leaf(rng, f'text/plain; name="{name}"', extra=extra)


def multipart(rng: random.Random, subtype: str, parts: list[bytes], params: str = "") -> bytes:
    boundary = rng.choice(["b1", "=_Part_0_123.456", "----=_NextPart_000", "x y z", "simple"])
    boundary += str(rng.randrange(10**6))
    quoted = f'"{boundary}"' if " " in boundary or "=" in boundary else boundary
    out = [f"Content-Type: multipart/{subtype}; boundary={quoted}{params}".encode(), b""]
    if rng.random() < 0.3:
        out.append(b"This is a multi-part message in MIME format.")
    for part in parts:
        out.append(f"--{boundary}".encode())
        out.append(part)
    out.append(f"--{boundary}--".encode())
    epilogue = rng.choice([b"", b"", b"epilogue text\r\n"])
    return b"\r\n".join(out) + b"\r\n" + epilogue


def shape_plain(rng: random.Random, depth: int) -> bytes:
    return leaf(rng, rng.choice(["text/plain", "text/plain", "text/html", "TEXT/Plain"]))


def shape_alternative(rng: random.Random, depth: int) -> bytes:
    return multipart(rng, "alternative", [leaf(rng, "text/plain"), leaf(rng, "text/html")])


def shape_mixed(rng: random.Random, depth: int) -> bytes:
    first = shape_alternative(rng, depth) if rng.random() < 0.4 else leaf(rng)
    parts = [first] + [attachment(rng) for _ in range(rng.randint(1, 3))]
    return multipart(rng, "mixed", parts)


def shape_related(rng: random.Random, depth: int) -> bytes:
    html = leaf(rng, "text/html")
    image = leaf(
        rng,
        "image/gif",
        data=b"GIF89a" + bytes(range(40)),
        encoding="base64",
        extra=("Content-ID: <logo@example>",),
    )
    return multipart(rng, "related", [html, image], '; type="text/html"')


def shape_signed(rng: random.Random, depth: int) -> bytes:
    signature = leaf(
        rng,
        "application/pgp-signature; name=signature.asc",
        data=b"-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----",
        encoding="7bit",
    )
    inner = shape_mixed(rng, depth) if rng.random() < 0.3 else leaf(rng)
    return multipart(
        rng,
        "signed",
        [inner, signature],
        '; micalg=pgp-sha256;\r\n\tprotocol="application/pgp-signature"',
    )


def shape_encrypted(rng: random.Random, depth: int) -> bytes:
    control = leaf(rng, "application/pgp-encrypted", data=b"Version: 1", encoding="7bit")
    payload = leaf(
        rng,
        "application/octet-stream; name=encrypted.asc",
        data=b"-----BEGIN PGP MESSAGE-----\r\nhQEMA\r\n-----END PGP MESSAGE-----",
        encoding="7bit",
    )
    return multipart(rng, "encrypted", [control, payload], '; protocol="application/pgp-encrypted"')


def shape_smime(rng: random.Random, depth: int) -> bytes:
    return leaf(
        rng,
        'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        data=bytes(rng.randrange(256) for _ in range(300)),
        encoding="base64",
        extra=('Content-Disposition: attachment; filename="smime.p7m"',),
    )


def shape_rfc822(rng: random.Random, depth: int) -> bytes:
    inner = message(rng, depth + 1)
    extra = rng.choice([(), ('Content-Disposition: attachment; filename="fwd.eml"',)])
    attached = b"\r\n".join(
        [b"Content-Type: message/rfc822", *(e.encode() for e in extra), b"", inner]
    )
    return multipart(rng, "mixed", [leaf(rng), attached])


def shape_digest(rng: random.Random, depth: int) -> bytes:
    parts = [b"\r\n" + message(rng, depth + 1, shape=shape_plain) for _ in range(2)]
    return multipart(rng, "digest", parts)


def shape_report(rng: random.Random, depth: int) -> bytes:
    status = (
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
        b"\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\n"
    )
    headers = (
        b"Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.com\r\nSubject: original\r\n"
    )
    return multipart(rng, "report", [leaf(rng), status, headers], "; report-type=delivery-status")


SHAPES: list[Callable[[random.Random, int], bytes]] = [
    shape_plain,
    shape_plain,
    shape_alternative,
    shape_mixed,
    shape_mixed,
    shape_related,
    shape_signed,
    shape_encrypted,
    shape_smime,
    shape_rfc822,
    shape_digest,
    shape_report,
]


def message(
    rng: random.Random,
    depth: int = 0,
    shape: Callable[[random.Random, int], bytes] | None = None,
) -> bytes:
    headers: list[str] = []
    value = date(rng)
    if value is not None:
        headers.append(f"Date: {value}")
    if rng.random() < 0.95:
        headers.append(f"From: {mailbox(rng)}")
    if rng.random() < 0.1:
        headers.append(f"Sender: {mailbox(rng)}")
    if rng.random() < 0.15:
        headers.append(f"Reply-To: {address_list(rng)}")
    if rng.random() < 0.9:
        headers.append("To: " + fold(address_list(rng)))
    if rng.random() < 0.3:
        headers.append(f"Cc: {address_list(rng)}")
    if rng.random() < 0.1:
        headers.append(f"Bcc: {mailbox(rng)}")
    if rng.random() < 0.9:
        headers.append("Subject: " + fold(subject(rng)))
    number = rng.randrange(10**8)
    if rng.random() < 0.9:
        headers.append(f"Message-ID: <{number}.{depth}@{rng.choice(DOMAINS)}>")
    if rng.random() < 0.3:
        headers.append(f"In-Reply-To: <{number - 1}@example.com>")
        headers.append(f"References: <{number - 2}@example.com>\r\n <{number - 1}@example.com>")
    if rng.random() < 0.8:
        headers.append("MIME-Version: 1.0")
    if rng.random() < 0.2:
        headers.append(f"X-Mailer: {words(rng, 2)}")
    if shape is None:
        choices = SHAPES if depth < 2 else SHAPES[:9]
        shape = rng.choice(choices)
    body = shape(rng, depth)
    return "\r\n".join(headers).encode("utf-8") + b"\r\n" + body


def deep_multipart(levels: int) -> bytes:
    """``levels`` multiparts, each holding the next: beyond parsers' nesting limits."""
    head = b"Subject: deep multipart\r\n"
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=L%d\r\n\r\n--L%d\r\n" % (i, i)
        for i in range(levels)
    )
    closing = b"".join(b"\r\n--L%d--\r\n" % i for i in reversed(range(levels)))
    return head + opening + b"Content-Type: text/plain\r\n\r\ninnermost" + closing


def deep_rfc822(levels: int) -> bytes:
    """``levels`` messages, each the message/rfc822 body of the one before."""
    wrapper = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n"
    return b"".join(wrapper % i for i in range(levels)) + b"Subject: last\r\n\r\nbody\r\n"


def many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    )
    return (
        b"Subject: many\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n" + parts + b"--p--\r\n"
    )


def huge_line(size: int) -> bytes:
    return b"Subject: huge line\r\nContent-Type: text/plain\r\n\r\n" + b"x" * size + b"\r\n"


def huge_header_line(size: int) -> bytes:
    return b"Subject: " + b"y" * size + b"\r\nFrom: a@example.com\r\n\r\nbody\r\n"


SPECIAL: dict[str, bytes] = {
    "deep-multipart-20": deep_multipart(20),
    "deep-multipart-120": deep_multipart(120),
    "deep-rfc822-20": deep_rfc822(20),
    "deep-rfc822-120": deep_rfc822(120),
    "many-parts-300": many_parts(300),
    "huge-line-300k": huge_line(300_000),
    "huge-header-line-100k": huge_header_line(100_000),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("gen-*.eml"):
        old.unlink()
    rng = random.Random(SEED)
    for index in range(COUNT):
        data = message(rng)
        if index % 9 == 4:
            data = data.replace(b"\r\n", b"\n")  # bare LF line ends throughout
        (OUT / f"gen-{index:03d}.eml").write_bytes(data)
    for name, data in SPECIAL.items():
        (OUT / f"gen-{name}.eml").write_bytes(data)


if __name__ == "__main__":
    main()

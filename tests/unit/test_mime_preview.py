"""The RFC 8970 preview text: first readable part, plain text, whitespace collapsed."""

from __future__ import annotations

from roost.mime.analyze import analyze
from roost.mime.preview import PREVIEW_CHARS, collapse, message_preview


def test_plain_text_is_collapsed_and_bounded() -> None:
    body = b"Hello   there,\r\n\r\n\tsee you\r\n" + b"word " * 200
    preview = message_preview(b"Subject: x\r\n\r\n" + body)
    assert preview.startswith("Hello there, see you word word")
    assert len(preview) == PREVIEW_CHARS  # RFC 8970 §3.1: at most 256
    assert "  " not in preview and "\n" not in preview


def test_plain_part_preferred_to_html_and_attachments_skipped() -> None:
    data = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
        b"attached notes\r\n"
        b"--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
        b"--i\r\nContent-Type: text/html\r\n\r\n<p>Rich <b>text</b></p>\r\n"
        b"--i\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus Bern\r\n"
        b"--i--\r\n--o--\r\n"
    )
    assert message_preview(data) == "Grüße aus Bern"
    assert analyze(data).preview == "Grüße aus Bern"


def test_html_only_is_stripped_and_no_text_is_empty() -> None:
    html = (
        b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><style>p {}</style></head><body><p>Hi &amp; bye</p></body></html>"
    )
    assert message_preview(html) == "Hi & bye"
    image = b"MIME-Version: 1.0\r\nContent-Type: image/png\r\n\r\nxxxx"
    assert message_preview(image) == ""
    assert collapse("  a \r\n b  ") == "a b"

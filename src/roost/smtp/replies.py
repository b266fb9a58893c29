"""Typed SMTP/LMTP replies and the one place they become bytes.

A reply is a three-digit code, an optional enhanced status code (RFC 3463, sent only
when ENHANCEDSTATUSCODES was advertised and the client greeted with EHLO/LHLO, RFC 2034
§3), and one or more text lines. A multi-line reply repeats code and enhanced code on
every line, with ``-`` after the code on all lines but the last (RFC 5321 §4.2.1).
Text never carries CR or LF: they are replaced by spaces here.

The replies the core decides itself are named constants below, so their wording lives
in one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str | None
    text: str | tuple[str, ...] = ""

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.text,) if isinstance(self.text, str) else self.text or ("",)

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400

    def to_bytes(self, *, enhanced: bool = True) -> bytes:
        """Serialize; ``enhanced=False`` omits the enhanced status code (RFC 2034 §3)."""
        lines = self.lines
        out = bytearray()
        for number, text in enumerate(lines, 1):
            separator = " " if number == len(lines) else "-"
            words = [text.replace("\r", " ").replace("\n", " ")]
            # RFC 2034 §3: no enhanced code on 1xx/3xx replies.
            if enhanced and self.enhanced and self.code // 100 in (2, 4, 5):
                words.insert(0, self.enhanced)
            out += f"{self.code}{separator}{' '.join(words)}".rstrip().encode()
            out += b"\r\n"
        return bytes(out)


def hello_reply(server_name: str, capabilities: Sequence[str], text: str = "") -> Reply:
    """The EHLO/LHLO answer: greeting line, then one capability per line (RFC 5321
    §4.1.1.1). No enhanced code: RFC 2034 §3 has the client learn of them here."""
    first = f"{server_name} {text}".rstrip()
    return Reply(250, None, (first, *capabilities))


# 2xx/3xx the core or host commonly sends.
OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
RESET_OK = Reply(250, "2.0.0", "Reset")
START_MAIL_INPUT = Reply(354, None, "Start mail input; end with <CRLF>.<CRLF>")
CLOSING = Reply(221, "2.0.0", "Bye")
READY_TO_START_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_SUCCEEDED = Reply(235, "2.7.0", "Authentication succeeded")

# Errors the core decides.
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
BARE_LF_COMMAND = Reply(500, "5.5.2", "Bare LF not allowed, end lines with CRLF")
UNKNOWN_COMMAND = Reply(500, "5.5.1", "Unknown command")
WRONG_HELLO_LMTP = Reply(500, "5.5.1", "This is LMTP: use LHLO")
WRONG_HELLO_SMTP = Reply(500, "5.5.1", "This is SMTP: use EHLO or HELO")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
SEND_HELLO_FIRST = Reply(503, "5.5.1", "Send hello first")
NESTED_MAIL = Reply(503, "5.5.1", "Nested MAIL command")
MAIL_FIRST = Reply(503, "5.5.1", "MAIL needed first")
RCPT_AFTER_BDAT = Reply(503, "5.5.1", "RCPT not allowed after BDAT")
DATA_AFTER_BDAT = Reply(503, "5.5.1", "DATA not allowed after BDAT")
BINARYMIME_NEEDS_BDAT = Reply(503, "5.5.1", "BODY=BINARYMIME needs BDAT, not DATA")
# RFC 2033 §4.2: LMTP answers DATA without a valid recipient with 503;
# RFC 5321 §3.3 has SMTP answer 554.
NO_RECIPIENTS_LMTP = Reply(503, "5.5.1", "No valid recipients")
NO_RECIPIENTS_SMTP = Reply(554, "5.5.1", "No valid recipients")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not allowed during a mail transaction")
ALREADY_TLS = Reply(503, "5.5.1", "TLS already active")
SYNTAX_ERROR = Reply(501, "5.5.2", "Syntax error in arguments")
BAD_PATH = Reply(501, "5.1.3", "Bad address syntax")
PATH_TOO_LONG = Reply(501, "5.1.3", "Address too long")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "Parameter not recognized")
BAD_PARAMETER = Reply(501, "5.5.4", "Invalid parameter")
NON_ASCII_WITHOUT_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message too big")
MESSAGE_LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long in message")
BARE_LF_MESSAGE = Reply(554, "5.6.0", "Bare LF in message, end lines with CRLF")

"""The IMAP ENVELOPE of a message (RFC 9051 §7.5.2, RFC 3501 §7.4.2).

``envelope(fields)`` renders ``(date subject from sender reply-to to cc bcc in-reply-to
message-id)`` from a parsed header. The rules, with Dovecot's answers to what the RFCs
leave open:

- Values are the raw header values, never RFC 2047-decoded (the client decodes), with
  folding undone. Date, In-Reply-To and Message-ID are sent as they are; Subject and
  display names are made readable: runs of white space become one space, leading and
  trailing space goes, NUL becomes U+FFFD.
- A field that is absent is NIL; one that is present but empty is "". When a field
  occurs twice, the last Date/Subject/Message-ID/In-Reply-To wins and address lists are
  joined.
- Addresses are ``(name adl mailbox host)`` (RFC 5322 §3.4 parsed with obsolete syntax
  allowed). A group is ``(NIL NIL "name" NIL)`` ... ``(NIL NIL NIL NIL)``. What cannot
  be parsed is filled in: a missing mailbox is "MISSING_MAILBOX", a missing host
  "MISSING_DOMAIN", a broken ``<...>`` gets the host "SYNTAX_ERROR" — so that every
  address keeps four well-formed fields.
- Sender and Reply-To default to From (RFC 9051 §7.5.2).
- Each string is cut to ``MAX_ENVELOPE_STRING`` bytes (at a UTF-8 character boundary):
  a 50 MB Subject must not make a 50 MB ENVELOPE kept in every model and sent with
  every FETCH. Dovecot sends it whole; no real client shows that much.
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.mime import imap_form
from roost.mime.lexer import NUL_REPLACEMENT, Lexer
from roost.mime.limits import MAX_ENVELOPE_STRING
from roost.mime.parse import Field

MAX_ADDRESSES = 10_000


@dataclass(slots=True)
class Address:
    """One address, or a group marker (RFC 9051 §7.5.2): a group start has only
    ``mailbox`` (the group name), a group end has nothing."""

    name: bytes | None = None
    route: bytes | None = None
    mailbox: bytes | None = None
    domain: bytes | None = None
    invalid: bool = False


class _AddressParser:
    """RFC 5322 §3.4 address-list, with Dovecot's recovery from bad syntax."""

    def __init__(self, value: bytes) -> None:
        self.lexer = Lexer(value, keep_comment=True)
        self.result: list[Address] = []
        self.addr = Address()

    def add(self) -> None:
        self.result.append(self.addr)
        self.addr = Address()

    def add_fixed(self) -> None:
        if self.addr.mailbox is None:
            self.addr.mailbox = b"MISSING_MAILBOX"
            self.addr.invalid = True
        if not self.addr.domain:
            self.addr.domain = b"MISSING_DOMAIN"
            self.addr.invalid = True
        self.add()

    def local_part(self) -> int:
        lexer = self.lexer
        out = bytearray()
        ret = lexer.quoted_string(out) if lexer.peek() == 34 else lexer.dot_atom(out)
        if ret < 0:
            return -1
        self.addr.mailbox = bytes(out)
        return ret

    def domain(self) -> int:
        out = bytearray()
        ret = self.lexer.domain(out)
        if ret < 0:
            return -1
        self.addr.domain = bytes(out)
        return ret

    def domain_list(self) -> int:
        lexer = self.lexer
        out = bytearray()
        while True:
            if lexer.pos >= lexer.end:
                return 0
            if lexer.data[lexer.pos] != 0x40:
                break
            if out:
                out += b","
            out += b"@"
            ret = lexer.domain(out)
            if ret <= 0:
                return ret
            while lexer.skip_lwsp() > 0 and lexer.data[lexer.pos] == 0x2C:
                lexer.pos += 1
        self.addr.route = bytes(out)
        return 1

    def angle_addr(self) -> int:
        lexer = self.lexer
        lexer.pos += 1  # "<"
        if lexer.skip_lwsp() <= 0:
            return -1
        if lexer.peek() == 0x40:
            if self.domain_list() > 0 and lexer.peek() == 0x3A:
                lexer.pos += 1
            else:
                self.addr.route = b"INVALID_ROUTE"
                if lexer.pos >= lexer.end:
                    return -1
            if lexer.skip_lwsp() <= 0:
                return -1
        if lexer.peek() != 0x3E:  # "<>" is not a valid address
            if self.local_part() <= 0:
                return -1
            if lexer.peek() == 0x40 and self.domain() <= 0:
                return -1
        if lexer.peek() != 0x3E:
            return -1
        lexer.pos += 1
        return lexer.skip_lwsp()

    def name_addr(self) -> int:
        lexer = self.lexer
        out = bytearray()
        if lexer.phrase(out) <= 0 or lexer.peek() != 0x3C:
            return -1
        self.addr.name = bytes(out) or None
        if self.angle_addr() < 0:
            self.addr.domain = b"SYNTAX_ERROR"
            self.addr.invalid = True
        return 1 if lexer.pos < lexer.end else 0

    def addr_spec(self) -> int:
        lexer = self.lexer
        lexer.comment.clear()
        quoted = lexer.peek() == 0x22
        ret = self.local_part()
        domain_ret = -2
        if ret <= 0:
            self.addr.invalid = True
        if ret != 0 and lexer.pos < lexer.end and lexer.data[lexer.pos] == 0x40:
            domain_ret = self.domain()
            if domain_ret <= 0:
                ret = domain_ret
        if lexer.comment:
            self.addr.name = bytes(lexer.comment)
        elif domain_ret == -2:
            # "user" alone is a mailbox; "user and more words" is a display name
            words = bytearray(self.addr.mailbox or b"") + b" "
            before = len(words)
            lexer.phrase(words)
            if len(words) != before:
                self.addr.mailbox = None
                self.addr.name = bytes(words)
            elif not quoted:
                self.addr.domain = b""
            self.addr.invalid = True
            ret = -1
        return ret

    def mailbox(self) -> int:
        lexer = self.lexer
        start = lexer.pos
        ret = self.name_addr()
        if ret < 0:
            lexer.pos = start
            self.addr = Address()
            ret = self.addr_spec()
            addr = self.addr
            if (
                addr.invalid
                and addr.name is None
                and addr.mailbox is not None
                and (addr.domain is None)
            ):
                addr.name, addr.mailbox = addr.mailbox, None
        if ret < 0:
            self.addr.invalid = True
        self.add_fixed()
        return ret

    def group(self) -> int:
        lexer = self.lexer
        out = bytearray()
        if lexer.phrase(out) <= 0 or lexer.peek() != 0x3A:
            return -1
        lexer.pos += 1
        ret = lexer.skip_lwsp()
        self.addr.mailbox = bytes(out)
        self.add()
        if ret > 0 and lexer.peek() != 0x3B:
            while True:
                self.mailbox()
                if lexer.pos >= lexer.end or lexer.data[lexer.pos] != 0x2C:
                    break
                lexer.pos += 1
                if lexer.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if lexer.pos >= lexer.end or lexer.data[lexer.pos] != 0x3B:
                ret = -1
            else:
                lexer.pos += 1
                ret = lexer.skip_lwsp()
        self.add()  # the end-of-group marker
        return 0 if ret == 0 else 1

    def address(self) -> int:
        lexer = self.lexer
        start = lexer.pos
        mark = len(self.result)
        ret = self.group()
        if ret < 0:
            lexer.pos = start
            del self.result[mark:]
            self.addr = Address()
            ret = self.mailbox()
        return ret

    def address_list(self) -> list[Address]:
        lexer = self.lexer
        if lexer.skip_lwsp() <= 0:
            return []
        for _ in range(MAX_ADDRESSES):
            if self.address() == 0:
                break
            if lexer.pos >= lexer.end or lexer.data[lexer.pos] != 0x2C:
                break
            lexer.pos += 1
            ret = lexer.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed()
                break
        return self.result


def parse_addresses(value: bytes) -> list[Address]:
    """An address-list header value → addresses and group markers, in order."""
    return _AddressParser(value).address_list()


def for_humans(value: bytes) -> bytes:
    """Subject and display names as Dovecot sends them: white space (SP, TAB, CR, LF)
    runs collapsed to one space and trimmed; NUL replaced by U+FFFD."""
    if b"\x00" in value:
        value = value.replace(b"\x00", NUL_REPLACEMENT)
    return b" ".join(value.split())


def _ncut(value: bytes | None) -> bytes | None:
    return None if value is None else cut(value)


def cut(value: bytes, limit: int = MAX_ENVELOPE_STRING) -> bytes:
    """``value`` cut to at most ``limit`` bytes, not inside a UTF-8 sequence."""
    if len(value) <= limit:
        return value
    end = limit
    while end > limit - 3 and end > 0 and 0x80 <= value[end] < 0xC0:
        end -= 1  # value[end] continues a character that starts before it
    return value[:end]


def _address_list(addresses: list[Address] | None) -> bytes:
    if not addresses:
        return imap_form.NIL
    items = []
    for address in addresses:
        name = (
            imap_form.NIL
            if address.name is None
            else imap_form.string(cut(for_humans(cut(address.name, 4 * MAX_ENVELOPE_STRING))))
        )
        items.append(
            b"("
            + b" ".join(
                (
                    name,
                    imap_form.nstring(_ncut(address.route)),
                    imap_form.nstring(_ncut(address.mailbox)),
                    imap_form.nstring(_ncut(address.domain)),
                )
            )
            + b")"
        )
    return b"(" + b"".join(items) + b")"


_STRING_FIELDS = {b"date": 0, b"subject": 1, b"in-reply-to": 8, b"message-id": 9}
_ADDRESS_FIELDS = {b"from": 2, b"sender": 3, b"reply-to": 4, b"to": 5, b"cc": 6, b"bcc": 7}


@dataclass(slots=True)
class Envelope:
    date: bytes | None = None
    subject: bytes | None = None
    from_: list[Address] | None = None
    sender: list[Address] | None = None
    reply_to: list[Address] | None = None
    to: list[Address] | None = None
    cc: list[Address] | None = None
    bcc: list[Address] | None = None
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


def collect(fields: list[Field]) -> Envelope:
    """The envelope fields of a header, parsed."""
    result = Envelope()
    for item in fields:
        name = item.name.lower()
        if name in _STRING_FIELDS:
            value = item.value
            if name == b"subject":
                result.subject = value
            else:
                value = value.split(b"\x00", 1)[0]  # a C string ends at NUL
                if name == b"date":
                    result.date = value
                elif name == b"in-reply-to":
                    result.in_reply_to = value
                else:
                    result.message_id = value
        elif name in _ADDRESS_FIELDS:
            attribute = "from_" if name == b"from" else name.decode().replace("-", "_")
            addresses = parse_addresses(item.value)
            previous: list[Address] | None = getattr(result, attribute)
            if previous:
                # joined, but no longer than one field may be (MAX_ADDRESSES)
                addresses = (previous + addresses)[:MAX_ADDRESSES]
            setattr(result, attribute, addresses or previous)
    return result


def render(parsed: Envelope) -> bytes:
    """The ENVELOPE value, parenthesised."""
    subject = (
        None if parsed.subject is None else for_humans(cut(parsed.subject, 4 * MAX_ENVELOPE_STRING))
    )
    return imap_form.plist(
        [
            imap_form.nstring(_ncut(parsed.date)),
            imap_form.nstring(_ncut(subject)),
            _address_list(parsed.from_),
            _address_list(parsed.sender or parsed.from_),
            _address_list(parsed.reply_to or parsed.from_),
            _address_list(parsed.to),
            _address_list(parsed.cc),
            _address_list(parsed.bcc),
            imap_form.nstring(_ncut(parsed.in_reply_to)),
            imap_form.nstring(_ncut(parsed.message_id)),
        ]
    )


def envelope(fields: list[Field]) -> bytes:
    return render(collect(fields))

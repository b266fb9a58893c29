"""Which commands and tests exist, which extension brings each, and what arguments they take.

One table, read by the validator: a ``require`` is a lookup in ``EXTENSIONS``; a command or
test is checked against its ``Signature``.  Tags that belong to a group (match type,
comparator, address part) are stored under the group's key in the compiled node, so the
interpreter reads ``tags["match"]`` rather than looking for three tag names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXTENSIONS = frozenset(
    {
        "fileinto",
        "reject",
        "ereject",
        "envelope",
        "encoded-character",
        "imap4flags",
        "copy",
        "body",
        "variables",
        "vacation",
        "vacation-seconds",
        "relational",
        "comparator-i;ascii-numeric",
        "comparator-i;octet",
        "comparator-i;ascii-casemap",
        "subaddress",
        "date",
        "index",
        "mailbox",
        "include",
        "duplicate",
        "editheader",
        "spamtest",
        "spamtestplus",
        "virustest",
    }
)
# RFC 5235 §3.2: spamtestplus includes spamtest; RFC 6131: vacation-seconds includes vacation.
IMPLIED = {"spamtestplus": ("spamtest",), "vacation-seconds": ("vacation",)}

COMPARATORS = {
    "i;octet": None,
    "i;ascii-casemap": None,
    "i;ascii-numeric": "comparator-i;ascii-numeric",
}
# RFC 5228 §5.1: the address test is restricted to fields that hold addresses; this is the
# set Pigeonhole accepts, so scripts move between the two unchanged.
ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "delivered-to",
        "x-original-to",
        "errors-to",
        "mail-followup-to",
        "mail-reply-to",
    }
)
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})
DATE_PARTS = frozenset(
    {
        "year",
        "month",
        "day",
        "date",
        "julian",
        "hour",
        "minute",
        "second",
        "time",
        "iso8601",
        "std11",
        "zone",
        "weekday",
    }
)


@dataclass(frozen=True, slots=True)
class TagSpec:
    """A tag: the key it is stored under, the value stored, and the argument it takes."""

    key: str
    argument: str | None = None  # "string", "strings", "number" or None (a flag)
    extension: str | None = None


def _group(key: str, names: dict[str, str | None]) -> dict[str, TagSpec]:
    return {name: TagSpec(key, None, extension) for name, extension in names.items()}


MATCH = {
    **_group("match", {"is": None, "contains": None, "matches": None}),
    "value": TagSpec("match", "string", "relational"),
    "count": TagSpec("match", "string", "relational"),
}
COMPARATOR = {"comparator": TagSpec("comparator", "string")}
ADDRESS_PART = _group(
    "part",
    {"all": None, "localpart": None, "domain": None, "user": "subaddress", "detail": "subaddress"},
)
INDEX = {"index": TagSpec("index", "number", "index"), "last": TagSpec("last", None, "index")}
MATCHING = {**MATCH, **COMPARATOR}


@dataclass(frozen=True, slots=True)
class Signature:
    """Positional argument kinds in order; a leading "?" marks an optional one."""

    positional: tuple[str, ...] = ()
    tags: dict[str, TagSpec] = field(default_factory=dict)
    extension: str | None = None
    tests: str = "none"  # "none", "one" or "list"
    block: bool = False


COMMANDS: dict[str, Signature] = {
    "require": Signature(("strings",)),
    "if": Signature(tests="one", block=True),
    "elsif": Signature(tests="one", block=True),
    "else": Signature(block=True),
    "stop": Signature(),
    "keep": Signature(tags={"flags": TagSpec("flags", "strings", "imap4flags")}),
    "discard": Signature(),
    "redirect": Signature(("string",), {"copy": TagSpec("copy", None, "copy")}),
    "fileinto": Signature(
        ("string",),
        {
            "copy": TagSpec("copy", None, "copy"),
            "flags": TagSpec("flags", "strings", "imap4flags"),
            "create": TagSpec("create", None, "mailbox"),
        },
        "fileinto",
    ),
    "reject": Signature(("string",), extension="reject"),
    "ereject": Signature(("string",), extension="ereject"),
    "setflag": Signature(("?string", "strings"), extension="imap4flags"),
    "addflag": Signature(("?string", "strings"), extension="imap4flags"),
    "removeflag": Signature(("?string", "strings"), extension="imap4flags"),
    "set": Signature(
        ("string", "string"),
        {
            name: TagSpec("mod_" + name, None)
            for name in ("lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "length")
        },
        "variables",
    ),
    "vacation": Signature(
        ("string",),
        {
            "days": TagSpec("days", "number"),
            "seconds": TagSpec("seconds", "number", "vacation-seconds"),
            "subject": TagSpec("subject", "string"),
            "from": TagSpec("from", "string"),
            "addresses": TagSpec("addresses", "strings"),
            "mime": TagSpec("mime", None),
            "handle": TagSpec("handle", "string"),
        },
        "vacation",
    ),
    "include": Signature(
        ("string",),
        {
            **_group("location", {"personal": None, "global": None}),
            "once": TagSpec("once"),
            "optional": TagSpec("optional"),
        },
        "include",
    ),
    "return": Signature(extension="include"),
    "global": Signature(("strings",), extension="include"),
    "addheader": Signature(("string", "string"), {"last": TagSpec("last")}, "editheader"),
    "deleteheader": Signature(
        ("string", "?strings"),
        {**MATCHING, "index": TagSpec("index", "number"), "last": TagSpec("last")},
        "editheader",
    ),
}

TESTS: dict[str, Signature] = {
    "true": Signature(),
    "false": Signature(),
    "not": Signature(tests="one"),
    "allof": Signature(tests="list"),
    "anyof": Signature(tests="list"),
    "exists": Signature(("strings",)),
    "size": Signature(("number",), _group("size", {"over": None, "under": None})),
    "header": Signature(("strings", "strings"), {**MATCHING, **INDEX}),
    "address": Signature(("strings", "strings"), {**MATCHING, **ADDRESS_PART, **INDEX}),
    "envelope": Signature(("strings", "strings"), {**MATCHING, **ADDRESS_PART}, "envelope"),
    "string": Signature(("strings", "strings"), MATCHING, "variables"),
    "hasflag": Signature(("?strings", "strings"), MATCHING, "imap4flags"),
    "body": Signature(
        ("strings",),
        {
            **MATCHING,
            **_group("transform", {"raw": None, "text": None}),
            "content": TagSpec("transform", "strings"),
        },
        "body",
    ),
    "date": Signature(
        ("string", "string", "strings"),
        {
            **MATCHING,
            **INDEX,
            "zone": TagSpec("zone", "string"),
            "originalzone": TagSpec("zone"),
        },
        "date",
    ),
    "currentdate": Signature(
        ("string", "strings"), {**MATCHING, "zone": TagSpec("zone", "string")}, "date"
    ),
    "mailboxexists": Signature(("strings",), extension="mailbox"),
    "duplicate": Signature(
        (),
        {
            "handle": TagSpec("handle", "string"),
            "header": TagSpec("source", "string"),
            "uniqueid": TagSpec("source", "string"),
            "seconds": TagSpec("seconds", "number"),
            "last": TagSpec("last"),
        },
        "duplicate",
    ),
    "spamtest": Signature(
        ("string",), {**MATCHING, "percent": TagSpec("percent", None, "spamtestplus")}, "spamtest"
    ),
    "virustest": Signature(("string",), MATCHING, "virustest"),
}

"""Roost's actions against Dovecot Pigeonhole's ``sieve-test`` for the same script and mail.

Pigeonhole is the reference implementation most Sieve users know; where Debian's
``dovecot-sieve`` is installed, each case below runs through both and the performed
actions (kind, target, IMAP flags, and the implicit keep) must agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.sieve import (
    Discard,
    Envelope,
    FileInto,
    Keep,
    ParsedMessage,
    Redirect,
    Reject,
    TrackDuplicate,
    Vacation,
    compile_script,
    run,
)

from .helpers import FakeHost

SIEVE_TEST = shutil.which("sieve-test")
pytestmark = pytest.mark.skipif(
    SIEVE_TEST is None,
    reason="sieve-test not installed (Debian package dovecot-sieve); no Pigeonhole to compare",
)

SENDER = "alice@example.com"
RECIPIENT = "me@example.org"

PLAIN = (
    "From: Alice <alice@example.com>\r\n"
    "To: Me <me@example.org>, other+lists@example.net\r\n"
    "Cc: team@example.org\r\n"
    "Subject: [acme-users] [fwd] version 1.0 is out\r\n"
    "Date: Tue, 1 Dec 2026 16:30:05 -0500\r\n"
    "Message-ID: <1234@example.com>\r\n"
    "List-Id: Acme users <acme-users.lists.example.com>\r\n"
    "X-Spam-Flag: YES\r\n"
    "\r\n"
    "Hello there, the quarterly numbers.\r\n"
)
PERSONAL = PLAIN.replace("List-Id: Acme users <acme-users.lists.example.com>\r\n", "").replace(
    "X-Spam-Flag: YES\r\n", ""
)
BULK = PERSONAL.replace("Cc:", "Precedence: bulk\r\nCc:")
AUTOMATIC = PERSONAL.replace("Cc:", "Auto-Submitted: auto-generated\r\nCc:")
NOT_ADDRESSED = PERSONAL.replace("Me <me@example.org>, ", "")

CASES: list[tuple[str, str, str]] = [
    ("empty", "", PLAIN),
    ("discard", "discard;", PLAIN),
    ("keep twice", "keep; keep;", PLAIN),
    ("fileinto", 'require "fileinto"; fileinto "Lists";', PLAIN),
    ("fileinto inbox and keep", 'require "fileinto"; fileinto "INBOX"; keep;', PLAIN),
    (
        "header matches",
        'require "fileinto"; if header :matches "subject" "[*]*" { fileinto "L"; }',
        PLAIN,
    ),
    (
        "variables",
        'require ["fileinto", "variables"];'
        'if header :matches "List-Id" "*<*.lists.*>" { fileinto "lists.${2}"; }',
        PLAIN,
    ),
    (
        "address parts",
        'require ["fileinto", "subaddress"];'
        'if address :detail "to" "lists" { fileinto "detail"; }'
        'if address :domain :is "cc" "EXAMPLE.org" { fileinto "domain"; }',
        PLAIN,
    ),
    (
        "envelope",
        'require ["envelope", "fileinto"];'
        'if envelope :localpart :is "from" "alice" { fileinto "from-alice"; }',
        PLAIN,
    ),
    ("redirect", 'redirect "bob@example.net"; redirect "bob@example.net";', PLAIN),
    ("redirect copy", 'require "copy"; redirect :copy "bob@example.net";', PLAIN),
    (
        "flags",
        'require ["imap4flags", "fileinto"]; setflag "\\\\Seen"; addflag "$Work";'
        'removeflag "\\\\seen"; fileinto "A"; addflag "\\\\Flagged";',
        PLAIN,
    ),
    ("reject", 'require "reject"; reject "not wanted";', PLAIN),
    ("reject conflict", 'require ["reject", "fileinto"]; fileinto "a"; reject "x";', PLAIN),
    (
        "relational",
        'require ["relational", "comparator-i;ascii-numeric", "fileinto"];'
        'if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3"'
        '{ fileinto "many"; }',
        PLAIN,
    ),
    (
        "date",
        'require ["date", "relational", "fileinto"];'
        'if date :value "ge" :originalzone "date" "hour" "16" { fileinto "late"; }',
        PLAIN,
    ),
    (
        "body",
        'require ["body", "fileinto"]; if body :contains "quarterly" { fileinto "q"; }',
        PLAIN,
    ),
    ("stop", 'require "fileinto"; fileinto "a"; stop; fileinto "b";', PLAIN),
    ("exists size", 'if allof (exists "x-spam-flag", size :under 1K) { discard; }', PLAIN),
    ("vacation", 'require "vacation"; vacation :days 3 "I am away.";', PERSONAL),
    ("vacation to list", 'require "vacation"; vacation "I am away.";', PLAIN),
    ("vacation to bulk", 'require "vacation"; vacation "I am away.";', BULK),
    ("vacation to automatic", 'require "vacation"; vacation "I am away.";', AUTOMATIC),
    ("vacation not addressed", 'require "vacation"; vacation "I am away.";', NOT_ADDRESSED),
    (
        "vacation extra address",
        'require "vacation"; vacation :addresses "team@example.org" "I am away.";',
        NOT_ADDRESSED,
    ),
    (
        "set modifiers",
        'require ["variables", "fileinto"]; set "a" "juMBlEd";'
        'set :upperfirst :lower "b" "${a}"; set :length "c" "${a}"; fileinto "${b}-${c}";',
        PLAIN,
    ),
    (
        "deleteheader",
        'require ["editheader", "fileinto"]; deleteheader :matches "subject" "*acme*";'
        'if not exists "subject" { fileinto "gone"; }',
        PLAIN,
    ),
    (
        "detail absent",
        'require ["subaddress", "fileinto"];'
        'if address :detail :matches "from" "*" { fileinto "d"; }',
        PLAIN,
    ),
    ("missing header", 'if header :contains "x-missing" "" { discard; }', PLAIN),
    (
        "octet",
        'require "fileinto"; if header :is :comparator "i;octet" "cc" "TEAM@example.org"'
        '{ fileinto "octet"; } if header :contains :comparator "i;octet" "cc" "team@"'
        '{ fileinto "octet2"; }',
        PLAIN,
    ),
    (
        "string count",
        'require ["variables", "relational", "fileinto"]; set "a" "x"; set "b" "";'
        'if string :count "eq" ["${a}", "${b}", "y"] "2" { fileinto "two"; }',
        PLAIN,
    ),
    (
        "body raw and content",
        'require ["body", "fileinto"]; if body :raw :contains "Hello there" { fileinto "raw"; }'
        'if body :content "text" :contains "quarterly" { fileinto "content"; }',
        PLAIN,
    ),
    (
        "copy mixes",
        'require ["copy", "fileinto"]; fileinto :copy "Archive"; redirect :copy "b@c.test";keep;',
        PLAIN,
    ),
    (
        "header count",
        'require ["relational", "comparator-i;ascii-numeric", "fileinto"];'
        'if header :count "eq" :comparator "i;ascii-numeric" ["to", "cc", "x-none"] "2"'
        '{ fileinto "two"; }',
        PLAIN,
    ),
    (
        "match variables",
        'require ["variables", "fileinto"];'
        'if address :matches "to" "*@*.*" { fileinto "${1}.${2}.${3}"; }',
        PLAIN,
    ),
    (
        "fileinto twice with flags",
        'require ["fileinto", "imap4flags"]; fileinto :flags "$a" "x"; fileinto :flags "$b" "x";',
        PLAIN,
    ),
    (
        "keep flags then implicit",
        'require ["imap4flags"]; addflag "$a"; keep; addflag "$b";',
        PLAIN,
    ),
    ("discard then keep", "discard; keep;", PLAIN),
    (
        "redirect after reject",
        'require "reject"; reject "no"; redirect "b@c.test";',
        PLAIN,
    ),
    (
        "vacation and reject",
        'require ["vacation", "reject"]; vacation "x"; reject "no";',
        PERSONAL,
    ),
    (
        "discard and vacation",
        'require ["vacation"]; vacation "away"; discard;',
        PERSONAL,
    ),
    (
        "anyof not",
        'require "fileinto"; if anyof (not exists "from", header :contains "to" "OTHER+")'
        '{ fileinto "x"; } elsif true { fileinto "y"; } else { discard; }',
        PLAIN,
    ),
    ("duplicate", 'require "duplicate"; if duplicate { discard; }', PLAIN),
    (
        "editheader",
        'require ["editheader", "fileinto"]; addheader "X-Sorted" "yes";'
        'if header :is "x-sorted" "yes" { fileinto "sorted"; }',
        PLAIN,
    ),
]

Summary = set[tuple[str, ...]]


def roost_summary(source: str, mail: str) -> Summary:
    result = run(
        compile_script(source),
        ParsedMessage(mail.encode()),
        Envelope(SENDER, RECIPIENT),
        FakeHost(addresses=[RECIPIENT]),
    )
    summary: Summary = {("error",)} if result.status == "error" else set()
    for action in result.actions:
        match action:
            case Keep(flags=flags):
                summary.add(("store", "INBOX", *sorted(flag.lower() for flag in flags)))
            case FileInto(mailbox=mailbox, flags=flags):
                summary.add(("store", mailbox, *sorted(flag.lower() for flag in flags)))
            case Redirect(address=address):
                summary.add(("redirect", address))
            case Reject():
                summary.add(("reject",))
            case Discard():
                summary.add(("discard",))
            case Vacation():
                summary.add(("vacation",))
            case TrackDuplicate():
                summary.add(("track",))
    return summary


def pigeonhole_summary(output: str) -> Summary:
    summary: Summary = set()
    if "final result: failed" in output:
        summary.add(("error",))
    current: list[str] | None = None
    entries: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith(" * "):
            text = line[3:]
            if text.startswith("store message in folder: "):
                current = ["store", text.removeprefix("store message in folder: ")]
            elif text.startswith("redirect message to: "):
                current = ["redirect", text.removeprefix("redirect message to: ").strip("<>")]
            elif text.startswith("reject message"):
                current = ["reject"]
            elif text.startswith("send vacation message"):
                current = ["vacation"]
            elif text.startswith("track duplicate"):
                current = ["track"]
            else:
                current = [text.strip()]
            entries.append(current)
        elif line.strip().startswith("+ add IMAP flags:") and current is not None:
            current.extend(line.split(":", 1)[1].split())
    for entry in entries:
        head, flags = entry[:2], sorted(flag.lower() for flag in entry[2:])
        summary.add((*head, *flags) if head[0] == "store" else tuple(entry))
    if ("error",) in summary:
        summary.add(("store", "INBOX"))
    return summary


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # sieve-test refuses to run mail access as root: it drops to nobody, who must read here.
    root = Path(tempfile.mkdtemp(prefix="roost-pigeonhole-"))
    root.chmod(0o777)
    uid, gid = (65534, 65534) if os.getuid() == 0 else (os.getuid(), os.getgid())
    (root / "home").mkdir(mode=0o777)
    (root / "home").chmod(0o777)
    (root / "dovecot.conf").write_text(
        f"mail_uid = {uid}\nmail_gid = {gid}\n"
        f"mail_home = {root}/home\nmail_location = maildir:{root}/home/Maildir\n"
        "log_path = /dev/stderr\n"
        "plugin {\n  sieve_extensions = +editheader +vacation-seconds\n}\n"
    )
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(("name", "source", "mail"), CASES, ids=[case[0] for case in CASES])
def test_same_actions_as_pigeonhole(workdir: Path, name: str, source: str, mail: str) -> None:
    assert SIEVE_TEST is not None
    slug = name.replace(" ", "-")
    script = workdir / f"{slug}.sieve"
    message = workdir / f"{slug}.eml"
    script.write_text(source)
    message.write_text(mail.replace("\r\n", "\n"))
    for path in (script, message):
        path.chmod(0o644)
    output = sieve_test(workdir, script, message)
    assert "Performed actions" in output or "final result: failed" in output, output
    expected = pigeonhole_summary(output)
    if ("vacation",) in expected:
        # sieve-test lists a vacation action before deciding; the RFC 5230 rules (lists,
        # bulk, auto-submitted) are applied when it executes the actions (-e).
        executed = sieve_test(workdir, script, message, "-e")
        if "sent vacation response" not in executed:
            assert "discarding vacation response" in executed, executed
            expected.discard(("vacation",))
    assert roost_summary(source, mail) == expected, output


def sieve_test(workdir: Path, script: Path, message: Path, *options: str) -> str:
    assert SIEVE_TEST is not None
    command = [SIEVE_TEST, *options, "-c", str(workdir / "dovecot.conf"), "-f", SENDER]
    command += ["-a", RECIPIENT, "-r", RECIPIENT, str(script), str(message)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return completed.stdout + completed.stderr

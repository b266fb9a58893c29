"""Reading a Dovecot passwd-file, for ``roost user import-passwd``.

A line is ``user:password:uid:gid:gecos:home:shell:extra_fields`` (doc.dovecot.org,
"passwd-file"); only the first two fields matter here. The password is
``{SCHEME}hash``; one without a scheme is taken as ``{CRYPT}`` (Dovecot's default for
passwd-files) when it looks like a crypt string. Blank lines and ``#`` comments are
skipped. The hash is stored as it is and checked by ``auth.legacy_hashes`` until the
user's first sign-in replaces it by argon2id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from roost.auth import legacy_hashes
from roost.auth.authenticator import account_name_problem, find_account
from roost.store.errors import AccountExists
from roost.store.interface import Store


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    line: int
    user: str
    password_hash: str


@dataclass
class PasswdReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "line N: user: why"


def parse(text: str) -> tuple[list[PasswdEntry], list[str]]:
    """The usable entries of a passwd-file, and a note for each line left out."""
    entries: list[PasswdEntry] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, rest = line.partition(":")
        password = rest.split(":", 1)[0]
        if not sep or not user:
            problems.append(f"line {number}: not user:password:...")
            continue
        if not password:
            problems.append(f"line {number}: {user}: no password (login disabled)")
            continue
        if not password.startswith("{") and password.startswith("$"):
            password = "{CRYPT}" + password
        scheme = legacy_hashes.scheme_of(password)
        if scheme is None:
            shown = password.split("}", 1)[0] + "}" if password.startswith("{") else "no scheme"
            problems.append(f"line {number}: {user}: unsupported password scheme {shown}")
            continue
        problem = account_name_problem(user)
        if problem is not None:
            problems.append(f"line {number}: {user!r}: {problem}")
            continue
        entries.append(PasswdEntry(number, user, password))
    return entries, problems


def read(path: Path) -> tuple[list[PasswdEntry], list[str]]:
    return parse(path.read_text("utf-8"))


async def import_entries(
    store: Store, entries: list[PasswdEntry], *, update: bool = False
) -> PasswdReport:
    """Create an account for each entry with its imported hash; an existing account
    keeps its password unless ``update``."""
    report = PasswdReport()
    for entry in entries:
        existing = await find_account(store, entry.user)
        if existing is None:
            try:
                await store.create_account(entry.user, entry.password_hash)
            except AccountExists:
                existing = await find_account(store, entry.user)
            else:
                report.created.append(entry.user)
                continue
        if existing is not None and update:
            await store.set_password(existing, entry.password_hash, None)
            report.updated.append(existing)
        else:
            report.skipped.append(f"line {entry.line}: {entry.user}: account exists")
    return report

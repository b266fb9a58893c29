"""Reading and writing Maildir++ folders, with Dovecot's keyword letters.

Layout (https://cr.yp.to/proto/maildir.html, Courier's Maildir++):

* ``root/{cur,new,tmp}`` is INBOX; ``root/.Folder.Sub/{cur,new,tmp}`` is "Folder/Sub"
  (each part in modified UTF-7, as Dovecot writes it; raw UTF-8 is accepted too).
* A file name is ``<time>.<unique>.<host>[,S=<size>]:2,<letters>``: upper-case letters
  are system flags (``items.MAILDIR_LETTERS``), lower-case ones keywords: letter "a" is
  line 0 of the folder's ``dovecot-keywords`` file ("0 $Label1"), "b" line 1, and so on
  up to "z". Some systems write ``;`` or ``!`` for the ":".
* A file in ``new/`` has not been seen by a mail reader: it is imported without \\Seen
  unless its name says otherwise.
* The internal date is the file's modification time, which Dovecot sets to it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from roost.admin.items import MAILDIR_FLAGS, MAILDIR_LETTERS, MailItem
from roost.imap.wire.mutf7 import decode_mutf7, encode_mutf7
from roost.store.values import SYSTEM_FLAGS

KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26
_INFO = re.compile(r"[:;!]2,([A-Za-z]*)$")


@dataclass(frozen=True, slots=True)
class MaildirFolder:
    name: str  # "/"-separated
    path: Path
    files: list[Path]  # in delivery order


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def folder_name(directory: str) -> str:
    """ ".Folder.Sub" -> "Folder/Sub"."""
    parts = directory[1:].split(".")
    return "/".join(_decode_part(part) for part in parts)


def _decode_part(part: str) -> str:
    try:
        return decode_mutf7(part.encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        return part


def directory_name(folder: str) -> str:
    """ "Folder/Sub" -> ".Folder.Sub"; ValueError for a name Maildir++ cannot hold."""
    parts = folder.split("/")
    if any("." in part or not part for part in parts):
        raise ValueError(f"mailbox name {folder!r} has a '.' or an empty level")
    return "." + ".".join(encode_mutf7(part).decode("ascii") for part in parts)


def scan(root: Path) -> list[MaildirFolder]:
    """Every folder of the Maildir++ tree at ``root`` with its message files."""
    folders = []
    if is_maildir(root):
        folders.append(MaildirFolder("INBOX", root, _files(root)))
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") and entry.name not in (".", "..") and entry.is_dir():
            path = Path(entry.path)
            if is_maildir(path):
                folders.append(MaildirFolder(folder_name(entry.name), path, _files(path)))
    return folders


def _files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for sub in ("cur", "new"):
        directory = folder / sub
        if directory.is_dir():
            with os.scandir(directory) as entries:
                found.extend(
                    Path(e.path) for e in entries if not e.name.startswith(".") and e.is_file()
                )
    return sorted(found, key=_delivery_order)


def _delivery_order(path: Path) -> tuple[int, str]:
    head = path.name.split(".", 1)[0]
    return (int(head) if head.isdigit() else 0), path.name


def read_keywords(folder: Path) -> dict[str, str]:
    """Letter -> keyword from the folder's dovecot-keywords file (none if absent)."""
    letters: dict[str, str] = {}
    try:
        text = (folder / KEYWORDS_FILE).read_text("utf-8", "replace")
    except FileNotFoundError:
        return letters
    for line in text.splitlines():
        number, _, keyword = line.strip().partition(" ")
        if number.isdigit() and int(number) < MAX_KEYWORDS and keyword:
            letters[chr(ord("a") + int(number))] = keyword
    return letters


def flags_of(path: Path, keywords: dict[str, str]) -> frozenset[str]:
    match = _INFO.search(path.name)
    letters = match.group(1) if match else ""
    flags = {MAILDIR_LETTERS[c] for c in letters if c in MAILDIR_LETTERS}
    flags.update(keywords[c] for c in letters if c in keywords)
    return frozenset(flags)


def read_folder(folder: MaildirFolder) -> Iterator[MailItem]:
    keywords = read_keywords(folder.path)
    for path in folder.files:
        try:
            with open(path, "rb") as file:
                data = file.read()
                mtime = os.fstat(file.fileno()).st_mtime
        except FileNotFoundError:  # delivered elsewhere meanwhile (a live Maildir)
            continue
        date = datetime.fromtimestamp(int(mtime), UTC)
        yield MailItem(folder.name, data, flags_of(path, keywords), date)


class MaildirWriter:
    """Writes one folder: files into ``cur/`` (named by date and UID, with their
    flags), and at ``close`` the keywords file."""

    def __init__(self, path: Path, tag: str) -> None:
        self.path = path
        self._tag = tag  # unique part of file names: the mailbox's UIDVALIDITY
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._letters: dict[str, str] = {}  # keyword -> letter
        self.dropped_keywords: set[str] = set()

    def add(self, uid: int, data: bytes, flags: frozenset[str], date: datetime) -> None:
        seconds = int(date.timestamp())
        letters = sorted(MAILDIR_FLAGS[f] for f in flags if f in MAILDIR_FLAGS)
        for keyword in sorted(flags - SYSTEM_FLAGS):
            letter = self._letter(keyword)
            if letter is not None:
                letters.append(letter)
        info = "".join(sorted(letters))
        name = f"{seconds}.R{self._tag}U{uid}.roost,S={len(data)}:2,{info}"
        tmp = self.path / "tmp" / name
        with open(tmp, "wb") as out:
            out.write(data)
        os.utime(tmp, (seconds, seconds))
        os.replace(tmp, self.path / "cur" / name)

    def _letter(self, keyword: str) -> str | None:
        letter = self._letters.get(keyword)
        if letter is None:
            if len(self._letters) >= MAX_KEYWORDS:
                self.dropped_keywords.add(keyword)
                return None
            letter = self._letters[keyword] = chr(ord("a") + len(self._letters))
        return letter

    def close(self) -> None:
        if self._letters:
            lines = (f"{ord(letter) - ord('a')} {kw}\n" for kw, letter in self._letters.items())
            (self.path / KEYWORDS_FILE).write_text("".join(lines), "utf-8")


def count(folders: Iterable[MaildirFolder]) -> int:
    return sum(len(folder.files) for folder in folders)

"""Seeded mail, kept between runs so that only the first run pays for seeding.

Seeding 120,000 messages into Roost's store takes minutes (every message is analysed
and indexed at delivery), far more than the rest of a run. The seeded directories are
therefore copied to ``bench/results/seed-cache/<key>/`` right after seeding, before any
server touches them, and later runs start from a copy of that.

The key is a hash of everything that decides the seeded bytes: the account plans, the
corpus seed and generator, the seeding format (``servers.SEED_FORMAT``), and the source
of Roost's store and MIME packages (so a change to the schema or to the analysis
reseeds). A copy hard-links
the files that never change once written — Roost's content-addressed blobs, Dovecot's
``cur/`` message files (Dovecot renames them to change flags and unlinks them to
expunge; it never rewrites them) — and copies everything else, keeping owners and
modes. Only the ``KEEP`` most recent entries are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
KEEP = 3
_REPO = Path(__file__).resolve().parent.parent
_SOURCES = (
    _REPO / "bench" / "corpus.py",
    _REPO / "src" / "roost" / "store",
    _REPO / "src" / "roost" / "mime",
)
_IMMUTABLE_DIRS = frozenset({"blobs", "cur"})


def cache_key(description: object) -> str:
    digest = hashlib.sha256(f"format {FORMAT}\n{description!r}\n".encode())
    for source in _SOURCES:
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(str(path.relative_to(_REPO)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def restore(root: Path, key: str, targets: Mapping[str, Path]) -> dict[str, Any] | None:
    """Fill each target directory (which must not exist) from the entry ``key``; its
    metadata, or None when there is no complete entry."""
    entry = root / key
    meta_path = entry / "meta.json"
    if not meta_path.exists() or any(not (entry / name).is_dir() for name in targets):
        return None
    for name, target in targets.items():
        _clone(entry / name, target)
    os.utime(entry)  # most recently used
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    return meta


def save(root: Path, key: str, sources: Mapping[str, Path], meta: Mapping[str, Any]) -> None:
    """Store the source directories as entry ``key``; drop the oldest entries."""
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f"{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    partial.chmod(0o755)
    for name, source in sources.items():
        _clone(source, partial / name)
    (partial / "meta.json").write_text(json.dumps(meta, indent=1))
    entry = root / key
    shutil.rmtree(entry, ignore_errors=True)
    partial.rename(entry)
    _prune(root, keep=KEEP)


def entries(root: Path) -> Sequence[Path]:
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _prune(root: Path, keep: int) -> None:
    for stale in entries(root)[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
    for partial in root.glob("*.partial"):
        shutil.rmtree(partial, ignore_errors=True)


def _clone(source: Path, target: Path) -> None:
    """Copy a tree: hard links for files in immutable directories, copies otherwise;
    owners and modes kept (the Dovecot tree belongs to its mail user)."""
    for directory, subdirs, files in os.walk(source):
        here = Path(directory)
        there = target / here.relative_to(source)
        there.mkdir(exist_ok=True)
        _same_owner_and_mode(here, there)
        immutable = here.name in _IMMUTABLE_DIRS or here.parent.name == "blobs"
        for name in files:
            origin, copy = here / name, there / name
            if immutable:
                try:
                    os.link(origin, copy)
                    continue
                except OSError:  # another filesystem: copy instead
                    pass
            shutil.copy2(origin, copy)
            _same_owner_and_mode(origin, copy)
        subdirs.sort()


def _same_owner_and_mode(origin: Path, copy: Path) -> None:
    status = origin.stat()
    if os.geteuid() == 0:
        os.chown(copy, status.st_uid, status.st_gid)
    copy.chmod(status.st_mode & 0o7777)

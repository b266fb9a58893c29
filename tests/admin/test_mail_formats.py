"""mbox and Maildir++ reading and writing (admin/mbox.py, admin/maildir.py), no store."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from roost.admin import maildir, mbox
from roost.store.values import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

DATE = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def read(path: Path, style: str = "auto") -> list[tuple[bytes, frozenset[str], datetime]]:
    reader = mbox.MboxReader(path, "INBOX", style)
    try:
        return [(item.data, item.flags, item.internaldate) for item in reader]
    finally:
        reader.close()


def test_from_line_dates() -> None:
    assert mbox.from_line_date(b"a@b Thu Nov 24 18:22:48 1986") == datetime(
        1986, 11, 24, 18, 22, 48, tzinfo=UTC
    )
    assert mbox.from_line_date(b"MAILER-DAEMON Fri Jul  8 12:08:34 2011") == datetime(
        2011, 7, 8, 12, 8, 34, tzinfo=UTC
    )
    east = mbox.from_line_date(b"x Fri Jul  8 12:08:34 2011 +0200")
    assert east == datetime(2011, 7, 8, 12, 8, 34, tzinfo=timezone(timedelta(hours=2)))
    assert mbox.from_line_date(b"here is some text that is not a separator") is None


def test_mboxrd_unquoting_restores_every_from_line(tmp_path: Path) -> None:
    path = tmp_path / "rd.mbox"
    path.write_bytes(
        b"From a@b Mon Mar  3 10:00:00 2025\n"
        b"Subject: one\n\n>From here\n>>From there\nFrom-less\n\n"
        b"From a@b Tue Mar  4 11:00:00 2025\n"
        b"Subject: two\n\nbody\n\n"
    )
    messages = read(path)
    assert [m[0] for m in messages] == [
        b"Subject: one\n\nFrom here\n>From there\nFrom-less\n",
        b"Subject: two\n\nbody\n",
    ]
    assert messages[1][2] == datetime(2025, 3, 4, 11, 0, tzinfo=UTC)


def test_mboxo_leaves_double_quoted_lines(tmp_path: Path) -> None:
    path = tmp_path / "o.mbox"
    path.write_bytes(b"From a@b Mon Mar  3 10:00:00 2025\nS: 1\n\n>From x\n>>From y\n\n")
    assert read(path, "mboxo")[0][0] == b"S: 1\n\nFrom x\n>>From y\n"
    assert read(path, "mboxrd")[0][0] == b"S: 1\n\nFrom x\n>From y\n"
    assert mbox.detect_style(path.read_bytes()) == "mboxrd"
    assert mbox.detect_style(b"From a\n>From b\n") == "mboxo"


def test_unquoted_from_text_is_not_a_separator(tmp_path: Path) -> None:
    path = tmp_path / "sloppy.mbox"
    path.write_bytes(b"From a@b Mon Mar  3 10:00:00 2025\nS: 1\n\nFrom my desk, hello\n\n")
    assert read(path)[0][0] == b"S: 1\n\nFrom my desk, hello\n"


def test_status_headers_become_flags_and_leave_the_message(tmp_path: Path) -> None:
    path = tmp_path / "flags.mbox"
    path.write_bytes(
        b"From a@b Mon Mar  3 10:00:00 2025\n"
        b"Subject: s\nStatus: RO\nX-Status: AFTD\nX-Keywords: $Label1 Work\nX-UID: 7\n"
        b"\nStatus: in the body stays\n\n"
    )
    [(data, flags, _)] = read(path)
    assert data == b"Subject: s\n\nStatus: in the body stays\n"
    assert flags == {SEEN, ANSWERED, FLAGGED, DRAFT, DELETED, "$Label1", "Work"}


def test_written_mboxrd_reads_back() -> None:
    out = io.BytesIO()
    original = b"Subject: q\r\n\r\nFrom a\r\n>From b\r\n"
    mbox.write_message(out, original, frozenset({SEEN, FLAGGED, "Work"}), DATE)
    mbox.write_message(out, b"Subject: plain\r\n\r\nx\r\n", frozenset(), DATE)
    written = out.getvalue()
    assert written.startswith(b"From MAILER-DAEMON Mon May  6 07:08:09 2024\n")
    assert b"\n>From a\n>>From b\n" in written
    assert b"Status: RO\nX-Status: F\nX-Keywords: Work\n\n" in written


def test_written_mboxrd_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.mbox"
    with open(path, "wb") as out:
        mbox.write_message(out, b"A: 1\n\nFrom a\n>From b\n", frozenset({SEEN, "Work"}), DATE)
        mbox.write_message(out, b"A: 2\n\nend\n", frozenset(), DATE)
    assert read(path) == [
        (b"A: 1\n\nFrom a\n>From b\n", frozenset({SEEN, "Work"}), DATE),
        (b"A: 2\n\nend\n", frozenset(), DATE),
    ]


def make_maildir(root: Path) -> None:
    for folder in (root, root / ".Work.2024", root / ".&AMk-t&AOk-"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True)
    (root / "dovecot-keywords").write_text("0 $Label1\n1 Urgent\n")
    files = {
        root / "cur" / "1700000000.M1.host,S=10:2,FRSab": b"Subject: a\r\n\r\nx\r\n",
        root / "new" / "1700000100.M2.host": b"Subject: b\r\n\r\ny\r\n",
        root / ".Work.2024" / "cur" / "1700000200.M3.host:2,T": b"Subject: c\r\n\r\nz\r\n",
        root / ".&AMk-t&AOk-" / "cur" / "1700000300.M4.host;2,D": b"Subject: d\r\n\r\nw\r\n",
    }
    for number, (path, data) in enumerate(files.items()):
        path.write_bytes(data)
        os.utime(path, (1600000000 + number, 1600000000 + number))


def test_maildir_folders_flags_keywords_dates(tmp_path: Path) -> None:
    make_maildir(tmp_path)
    folders = maildir.scan(tmp_path)
    assert [f.name for f in folders] == ["INBOX", "Été", "Work/2024"]  # by directory
    items = [item for folder in folders for item in maildir.read_folder(folder)]
    assert [(i.folder, i.data[:10], i.flags) for i in items] == [
        ("INBOX", b"Subject: a", {FLAGGED, ANSWERED, SEEN, "$Label1", "Urgent"}),
        ("INBOX", b"Subject: b", frozenset()),
        ("Été", b"Subject: d", {DRAFT}),
        ("Work/2024", b"Subject: c", {DELETED}),
    ]
    assert items[3].internaldate == datetime.fromtimestamp(1600000002, UTC)


def test_maildir_writer_reads_back(tmp_path: Path) -> None:
    place = tmp_path / maildir.directory_name("Projects/Été")
    assert place.name == ".Projects.&AMk-t&AOk-"
    writer = maildir.MaildirWriter(place, "42")
    writer.add(1, b"S: 1\r\n\r\n", frozenset({SEEN, DRAFT, "Work", "$Label1"}), DATE)
    writer.close()
    [folder] = maildir.scan(tmp_path)
    assert folder.name == "Projects/Été"
    [item] = maildir.read_folder(folder)
    assert item.flags == {SEEN, DRAFT, "Work", "$Label1"}
    assert item.internaldate == DATE
    assert item.data == b"S: 1\r\n\r\n"
    assert folder.files[0].name.endswith(":2,DSab")

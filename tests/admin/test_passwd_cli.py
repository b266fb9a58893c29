"""``roost user import-passwd FILE`` (CliRunner, real store in a temporary directory)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from roost.cli import main


def test_import_passwd_reports_created_and_skipped(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "gina:{PLAIN}secret:1000:1000::/home/gina::\n"
        "hank:{MD5-CRYPT}$1$abc$def\n"
        "bad name:{PLAIN}x\n"
    )
    data = tmp_path / "data"
    result = CliRunner().invoke(
        main, ["user", "import-passwd", str(passwd), "--data-dir", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Created 1 accounts, updated 0, skipped 2.\n"
    assert "skipped line 2: hank: unsupported password scheme {MD5-CRYPT}" in result.stderr
    assert "skipped line 3: 'bad name'" in result.stderr
    listing = CliRunner().invoke(main, ["user", "list", "--data-dir", str(data)])
    assert "gina" in listing.stdout

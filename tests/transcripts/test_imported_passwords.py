"""A Dovecot hash imported by ``roost user import-passwd`` opens the account over IMAP
and is replaced by argon2id at that first sign-in; the sign-in cache still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.admin import passwd_file
from tests.conftest import start_imap_server, stop_imap_server

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

# doveadm pw -s SCHEME -p 'secret one'
PASSWD = """\
dave:{SHA512-CRYPT}$6$roOi1E8DnAaTBaPB$N9PY4i7E/ld7niD24WV/aM6Wc1ZcQONzDUQ0loLEON68VIq/9365JE7TnbmYsmI21lx5KOwfUgqDotTkZSEdi1:1000:1000::/home/dave::
erin:{BLF-CRYPT}$2y$05$mGTzCKAHQTKZl9RjzaX0tOlDxHfR9fazOplUH3UiMaMkCl/K1cqQy
frank:{SSHA512}j/QWyCElwqdtS380MKXGbAhlVRTTId8dlvwT3a5/VaEgNKNLN5H2FlUaEknFtMTr3cf+0DiaNcR2IqdxahaRdPM5kS8=
"""


async def test_imported_hash_signs_in_and_is_upgraded(
    tmp_path: Path, store_url: str | None
) -> None:
    handle, server = await start_imap_server(tmp_path, store_url=store_url)
    try:
        entries, problems = passwd_file.parse(PASSWD)
        assert problems == []
        report = await passwd_file.import_entries(handle.store, entries)
        assert report.created == ["dave", "erin", "frank"]
        for user in ("dave", "erin", "frank"):
            wrong = await handle.connect()
            await wrong.no(f'LOGIN "{user}" "secret two"')
            before = await handle.store.get_password_hash(user)
            assert before is not None and before.startswith("{")
            client = await handle.login(user, "secret one")
            await client.ok("SELECT INBOX")
            after = await handle.store.get_password_hash(user)
            assert after is not None and after.startswith("$argon2id$"), after
            # Signing in again: the new hash (or the cache) lets the same password in.
            again = await handle.login(user, "secret one")
            await again.ok("NOOP")
            record = await handle.store.get_sign_in_record(user)
            assert record is not None and record.scram_keys is not None
        again = await passwd_file.import_entries(handle.store, entries)
        assert again.created == [] and len(again.skipped) == 3
        updated = await passwd_file.import_entries(handle.store, entries[:1], update=True)
        assert updated.updated == ["dave"]
        assert (await handle.store.get_password_hash("dave") or "").startswith("{SHA512-CRYPT}")
    finally:
        await stop_imap_server(handle, server)

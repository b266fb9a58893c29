"""RFC 8970 PREVIEW texts of stored messages (run on the worker).

Delivery stores each message's preview with its analysis (``analyses.preview``).
Analyses made before previews were kept have NULL there: ``previews`` with ``compute``
makes those from the message file and stores them, so each is made once; without it
(FETCH PREVIEW (LAZY), RFC 8970 §3.1) they stay None.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from roost.mime.preview import message_preview
from roost.store.sqlite import analyses
from roost.store.sqlite.mail_db import MailDB

log = logging.getLogger(__name__)

_COLUMNS = "uid, blob_id, (SELECT preview FROM analyses WHERE analyses.blob_id = messages.blob_id)"


def previews(
    db: MailDB, mailbox_id: int, uids: Sequence[int], compute: bool
) -> dict[int, str | None]:
    with db.read():
        db.mailbox(mailbox_id)
        rows = db.select_messages(_COLUMNS, mailbox_id, uids)
    found: dict[int, str | None] = {uid: preview for uid, _, preview in rows}
    if not compute:
        return found
    missing = {blob_id: None for _, blob_id, preview in rows if preview is None}
    made: dict[str, str] = {}
    for blob_id in missing:
        made[blob_id] = _make(db, blob_id)
    if made:
        with db.write(sync=False):  # derived data: a power cut only means making it again
            db.conn.executemany(
                "UPDATE analyses SET preview = ? WHERE blob_id = ? AND preview IS NULL",
                [(text, blob_id) for blob_id, text in made.items()],
            )
    for uid, blob_id, preview in rows:
        if preview is None:
            found[uid] = made[blob_id]
    return found


def _make(db: MailDB, blob_id: str) -> str:
    try:
        source = db.blob_source(blob_id)
        if source.data is not None:
            return message_preview(source.data)
        assert source.path is not None
        return analyses.with_mapping(source.path, message_preview)
    except FileNotFoundError:
        return ""  # expunged meanwhile: nothing to show
    except Exception:
        log.exception("preview of stored message %s failed", blob_id)
        return ""

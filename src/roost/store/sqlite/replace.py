"""REPLACE (RFC 8508): store a new message and expunge an old one in one transaction
(run on the worker).

The old message is removed first, inside the same write, so that the quota check of
the new one counts the space it frees (RFC 8508 §3.2: a replacement must not fail for
the quota the original already uses); the expunge is logged with its own modseq,
below the append's, as separate EXPUNGE and APPEND would be. Nothing is visible until
the commit, and a refusal (quota, no such mailbox) changes nothing.
"""

from __future__ import annotations

from roost.store import line_endings
from roost.store.blobs import StoredBlob
from roost.store.errors import CannotDoThat
from roost.store.events import ChangeEvent, MailboxChanged
from roost.store.sqlite import analyses, quota
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.messages import _remove, _store
from roost.store.values import AppendResult, NewMessage, QuotaLimits


def replace(
    db: MailDB,
    source_id: int,
    uid: int,
    target: int | str,
    message: NewMessage,
    limits: QuotaLimits = quota.UNLIMITED,
) -> tuple[AppendResult, list[ChangeEvent]]:
    with line_endings.normalized_batch([(target, [message])], db.blobs.tmp) as normalized:
        [(_, [message])] = normalized
        analysed = analyses.compute(message.source)
        stored: list[StoredBlob] = []
        try:
            stored = db.put_blobs([message.source])
            with db.write():
                db.mailbox(source_id)
                rows = db.select_messages("uid, blob_id", source_id, [uid])
                if not rows:
                    raise CannotDoThat("the message to replace is gone")
                old_blob = rows[0][1]
                removed_at = db.next_modseq()
                _remove(db, source_id, [uid], removed_at)
                result = _store(db, target, [message], stored, [analysed], limits)
        except BaseException:
            db.release_blobs(blob.blob_id for blob in stored)
            raise
    db.release_blobs([old_blob])
    analyses.index_if_due(db)
    events: list[ChangeEvent] = [MailboxChanged(result.mailbox.id, result.mailbox.highestmodseq)]
    if result.mailbox.id != source_id:
        events.append(MailboxChanged(source_id, removed_at))
    return result, events

"""Schemas of users.db and each account's mail.db, their migrations, and connections.

Invariants:

* ``PRAGMA user_version`` is the schema version: the number of migrations applied. A
  migration is a list of statements run in one transaction with the version bump, so a
  database is always at exactly one version. Add a migration; never edit a released one.
* Every connection runs in WAL mode with foreign keys on and a busy timeout (several
  processes share these files); ``synchronous=FULL`` when durable, so a commit is on disk
  before it returns.
* A mailbox id is never reused (AUTOINCREMENT): a stale id held by a session can only
  miss, never hit another mailbox.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

# Seconds a writer waits for another process's write lock before giving up
# (errors.StoreBusy): shorter than a client's patience, so it hears NO [UNAVAILABLE]
# rather than nothing. [limits] store_busy_timeout.
DEFAULT_BUSY_TIMEOUT = 10.0
BUSY_TIMEOUT_MS = int(DEFAULT_BUSY_TIMEOUT * 1000)

# mail.db: one account's mailboxes, messages and subscriptions.
ACCOUNT_MIGRATIONS: Sequence[Sequence[str]] = (
    (
        # The last modseq taken and the last UIDVALIDITY given in this account.
        """CREATE TABLE counters (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            modseq INTEGER NOT NULL,
            uidvalidity INTEGER NOT NULL
        )""",
        "INSERT INTO counters (id, modseq, uidvalidity) VALUES (0, 1, 0)",
        """CREATE TABLE mailboxes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL DEFAULT 1,
            highestmodseq INTEGER NOT NULL,
            special_use TEXT,
            noselect INTEGER NOT NULL DEFAULT 0,
            recent_floor INTEGER NOT NULL DEFAULT 1
        )""",
        # flags: bit set of system flags (sqlite/flags.py). keywords: space-separated,
        # sorted, in the mailbox's spelling. internaldate: epoch seconds, tzoffset:
        # minutes east of UTC as received.
        """CREATE TABLE messages (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            flags INTEGER NOT NULL,
            keywords TEXT NOT NULL,
            internaldate INTEGER NOT NULL,
            tzoffset INTEGER NOT NULL,
            size INTEGER NOT NULL,
            header_size INTEGER NOT NULL,
            blob_id TEXT NOT NULL,
            PRIMARY KEY (mailbox_id, uid)
        ) WITHOUT ROWID""",
        "CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq)",
        "CREATE INDEX messages_by_blob ON messages (blob_id)",
        """CREATE TABLE expunged (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            PRIMARY KEY (mailbox_id, uid)
        ) WITHOUT ROWID""",
        "CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq)",
        # Every keyword ever used in a mailbox, in its first spelling.
        """CREATE TABLE keywords (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            name TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (mailbox_id, name)
        ) WITHOUT ROWID""",
        "CREATE TABLE subscriptions (name TEXT PRIMARY KEY) WITHOUT ROWID",
    ),
    (
        # What delivery computed about each stored message file (mime/analysis.py),
        # shared by every message with that content, so COPY and MOVE reuse it and never
        # parse again; removed with the file (mail_db.py, release_blobs). model: the MIME
        # model for FETCH (NULL if analysis failed). sent_date: the Date header in epoch
        # seconds, sent_day its calendar day in its own zone (days since 1970-01-01);
        # both NULL without a usable Date. refs: References, one message-id per line.
        """CREATE TABLE analyses (
            id INTEGER PRIMARY KEY,
            blob_id TEXT NOT NULL UNIQUE,
            model BLOB,
            sent_date INTEGER,
            sent_day INTEGER,
            message_id TEXT NOT NULL,
            in_reply_to TEXT NOT NULL,
            refs TEXT NOT NULL,
            sort_subject TEXT NOT NULL,
            sort_from TEXT NOT NULL,
            sort_to TEXT NOT NULL,
            sort_cc TEXT NOT NULL,
            display_from TEXT NOT NULL,
            display_to TEXT NOT NULL
        )""",
        # The decoded text for SEARCH, rowid = analyses.id. Trigram tokens match any
        # substring of three or more characters, case-insensitively (ARCHITECTURE.md,
        # decision 7); shorter needles scan these columns (sqlite/search.py).
        """CREATE VIRTUAL TABLE message_text USING fts5 (
            header, body, subject, addr_from, addr_to, addr_cc, addr_bcc,
            tokenize = 'trigram'
        )""",
        # Set where messages were stored before analyses existed: they are analysed
        # from their files at the first search (sqlite/analyses.py, backfill).
        "ALTER TABLE counters ADD COLUMN unanalyzed INTEGER NOT NULL DEFAULT 0",
        "UPDATE counters SET unanalyzed = EXISTS (SELECT 1 FROM messages)",
    ),
    (
        # OBJECTID (RFC 8474): thread_id groups a message with the one it answers
        # (In-Reply-To/References), found by message_id when it is stored; a message
        # whose parent is not here starts a thread of its own (its own id).
        "ALTER TABLE analyses ADD COLUMN thread_id INTEGER",
        "UPDATE analyses SET thread_id = id",
        "CREATE INDEX analyses_by_message_id ON analyses (message_id) WHERE message_id != ''",
        # SAVEDATE (RFC 8514): when the message was stored in this mailbox, epoch
        # seconds; NULL for messages stored before it was kept (SAVEDATE NIL).
        "ALTER TABLE messages ADD COLUMN savedate INTEGER",
    ),
    (
        # Decoded text of analyses not yet in message_text: same columns, id =
        # analyses.id. FTS5 writes a new index segment per transaction (about 16 pages
        # for one small message), so delivery queues the text here and it enters the
        # index in batches, at the latest before a search (sqlite/analyses.py).
        """CREATE TABLE text_pending (
            id INTEGER PRIMARY KEY,
            header TEXT NOT NULL,
            body TEXT NOT NULL,
            subject TEXT NOT NULL,
            addr_from TEXT NOT NULL,
            addr_to TEXT NOT NULL,
            addr_cc TEXT NOT NULL,
            addr_bcc TEXT NOT NULL
        )""",
    ),
    (
        # SELECT's first unseen message (RFC 3501 [UNSEEN]) by one index probe instead of
        # a scan of the mailbox; queries repeat the WHERE term exactly so SQLite uses it.
        "CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE flags & 1 = 0",
    ),
    (
        # A big mailbox's UIDs as some SELECT read them, and the mailbox state they were
        # read at, so a worker process that has not read them yet catches up from there
        # (sqlite/uid_cache.py). uids: 32-bit little-endian integers, ascending.
        """CREATE TABLE uid_lists (
            mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL,
            highestmodseq INTEGER NOT NULL,
            uids BLOB NOT NULL
        )""",
    ),
    (
        # The bytes of small messages (up to db.INLINE_MAX), committed in the same
        # transaction as the message rows that refer to them: one WAL fsync makes a
        # delivery durable, where a file needs its own fsync and its directory's
        # (ARCHITECTURE.md, decision 2). blob_id as in messages; larger messages, and
        # those spooled to a file while they arrived, stay files under blobs/.
        "CREATE TABLE blob_data (blob_id TEXT PRIMARY KEY, data BLOB NOT NULL)",
    ),
    (
        # Quota usage (RFC 9208 STORAGE and MESSAGE over every mailbox): the sum of the
        # messages' sizes and their count, kept by triggers in the very statement that
        # adds or removes a message (APPEND, COPY, MOVE, EXPUNGE, DELETE, RENAME INBOX,
        # and the cascade of a mailbox's deletion), so they are exact after any crash
        # (ARCHITECTURE.md decision 10). Recalculated from the rows by sqlite/quota.py.
        "ALTER TABLE counters ADD COLUMN storage INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE counters ADD COLUMN messages INTEGER NOT NULL DEFAULT 0",
        """UPDATE counters SET
            storage = (SELECT coalesce(sum(size), 0) FROM messages),
            messages = (SELECT count(*) FROM messages)""",
        """CREATE TRIGGER usage_on_insert AFTER INSERT ON messages BEGIN
            UPDATE counters SET storage = storage + NEW.size, messages = messages + 1
            WHERE id = 0;
        END""",
        """CREATE TRIGGER usage_on_delete AFTER DELETE ON messages BEGIN
            UPDATE counters SET storage = storage - OLD.size, messages = messages - 1
            WHERE id = 0;
        END""",
    ),
    (
        # The search text now holds every body part's header (RFC 9051 §6.4.4: SEARCH
        # TEXT finds an attachment's file name) and groups' names, and the address sort
        # keys follow RFC 5256/5957 for groups: the text and keys of every message
        # analysed before are remade from its file before the next search
        # (analyses.reindex_text).
        "ALTER TABLE counters ADD COLUMN reindex_below INTEGER NOT NULL DEFAULT 0",
        "UPDATE counters SET reindex_below = (SELECT coalesce(max(id), 0) + 1 FROM analyses)",
    ),
    (
        # RFC 8970 PREVIEW: the preview text delivery computes (mime/preview.py); NULL
        # for analyses made before it was kept, filled on the first FETCH PREVIEW
        # (sqlite/previews.py) or when reindex_text remakes the analysis.
        "ALTER TABLE analyses ADD COLUMN preview TEXT",
    ),
    (
        # STATUS (MESSAGES SIZE) without reading the mailbox's messages (RFC 8438: SIZE
        # exact): the count and the sum of sizes per mailbox, kept by triggers in the
        # statement that adds or removes a message, like the quota usage above (a
        # message's mailbox and size never change in place). STATUS UNSEEN, DELETED
        # and DELETED-STORAGE count through partial indexes; queries repeat their WHERE
        # terms exactly (8 is the \Deleted bit, sqlite/flags.py).
        "ALTER TABLE mailboxes ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE mailboxes ADD COLUMN message_size INTEGER NOT NULL DEFAULT 0",
        """UPDATE mailboxes SET
            message_count = (SELECT count(*) FROM messages WHERE mailbox_id = mailboxes.id),
            message_size = (SELECT coalesce(sum(size), 0) FROM messages
                            WHERE mailbox_id = mailboxes.id)""",
        """CREATE TRIGGER mailbox_size_on_insert AFTER INSERT ON messages BEGIN
            UPDATE mailboxes SET message_count = message_count + 1,
                message_size = message_size + NEW.size
            WHERE id = NEW.mailbox_id;
        END""",
        """CREATE TRIGGER mailbox_size_on_delete AFTER DELETE ON messages BEGIN
            UPDATE mailboxes SET message_count = message_count - 1,
                message_size = message_size - OLD.size
            WHERE id = OLD.mailbox_id;
        END""",
        "CREATE INDEX messages_deleted ON messages (mailbox_id, uid, size) WHERE flags & 8 != 0",
    ),
    (
        # I18NLEVEL=1 (RFC 5255): the search text and SORT keys are kept in
        # i;unicode-casemap form (mime/casemap.py): remake those of every analysis
        # made before, as the migration to part headers did (analyses.reindex_text).
        "UPDATE counters SET reindex_below = (SELECT coalesce(max(id), 0) + 1 FROM analyses)",
    ),
    (
        # Sieve scripts (sqlite/sieve_scripts.py): the source as uploaded and its compiled
        # form with the compiler's format version; at most one active (the partial unique
        # index). Tracking: vacation responses and duplicate ids until their expiry.
        """CREATE TABLE sieve_scripts (
            name TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            compiled TEXT NOT NULL,
            compiled_version INTEGER NOT NULL,
            active INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX sieve_one_active ON sieve_scripts (active) WHERE active = 1",
        """CREATE TABLE sieve_tracking (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            expires INTEGER NOT NULL,
            PRIMARY KEY (kind, key)
        ) WITHOUT ROWID""",
    ),
    (
        # METADATA (RFC 5464) entries: mailbox_id 0 holds the server's (the account's
        # own view of them), any other a mailbox's. name: lower case ("/private/comment"),
        # value: the octets as set. A mailbox's entries go with it (RFC 5464 §3.2), by
        # this trigger for every path that deletes its row.
        """CREATE TABLE metadata (
            mailbox_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (mailbox_id, name)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER metadata_on_mailbox_delete AFTER DELETE ON mailboxes BEGIN
            DELETE FROM metadata WHERE mailbox_id = OLD.id;
        END""",
    ),
    (
        # ACL (RFC 4314) entries the owner granted on a mailbox: identifier (an account
        # name, as the directory spells it) → rights, letters of "lrswipkxtea" in that
        # order. The owner's own rights are implicit (all of them) and never stored.
        """CREATE TABLE acl (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            identifier TEXT NOT NULL,
            rights TEXT NOT NULL,
            PRIMARY KEY (mailbox_id, identifier)
        ) WITHOUT ROWID""",
    ),
    (
        # analysis_id: the analyses row of the message's blob, NULL until it has one
        # (analyses.backfill sets it). FETCH reads the model through this integer key:
        # through blob_id's text index it cost most of a whole-mailbox ENVELOPE FETCH.
        # An analysis keeps its id for as long as a message refers to its blob.
        "ALTER TABLE messages ADD COLUMN analysis_id INTEGER",
        """UPDATE messages SET analysis_id =
            (SELECT id FROM analyses a WHERE a.blob_id = messages.blob_id)""",
    ),
)

# users.db: the accounts directory.
USERS_MIGRATIONS: Sequence[Sequence[str]] = (
    (
        # name_key: the case-folded name, unique. dirname: the account's directory
        # under accounts/, never derived from the name alone.
        """CREATE TABLE accounts (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            dirname TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created INTEGER NOT NULL
        ) WITHOUT ROWID""",
        # The highest UIDVALIDITY any deleted account gave: a new account starts above
        # it, so a re-created account never repeats a mailbox's UIDVALIDITY.
        """CREATE TABLE counters (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            uidvalidity_floor INTEGER NOT NULL
        )""",
        "INSERT INTO counters (id, uidvalidity_floor) VALUES (0, 0)",
    ),
    (
        # Credentials beyond the password hash (store/credentials.py). scram_keys: the
        # password's SCRAM-SHA-256 keys, NULL for passwords set before they were kept.
        # totp_secret: NULL while two-factor is off; totp_last_step: the time step of
        # the last code accepted, so that no code is accepted twice.
        "ALTER TABLE accounts ADD COLUMN scram_keys TEXT",
        "ALTER TABLE accounts ADD COLUMN totp_secret TEXT",
        "ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0",
        # label_key: the case-folded label, unique per account; selector: the public
        # prefix that picks the one hash to check at sign-in, unique per account.
        """CREATE TABLE app_passwords (
            name_key TEXT NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
            label_key TEXT NOT NULL,
            label TEXT NOT NULL,
            selector TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created INTEGER NOT NULL,
            last_used INTEGER,
            PRIMARY KEY (name_key, label_key),
            UNIQUE (name_key, selector)
        ) WITHOUT ROWID""",
        # A random secret made once, never shown: SCRAM's made-up salts for unknown names.
        "ALTER TABLE counters ADD COLUMN secret BLOB",
        "UPDATE counters SET secret = randomblob(32) WHERE id = 0",
    ),
    (
        # An account's own quota limits (store/values.py, QuotaOverride): NULL where the
        # [quota] default applies, 0 for unlimited; storage in octets.
        "ALTER TABLE accounts ADD COLUMN quota_storage INTEGER",
        "ALTER TABLE accounts ADD COLUMN quota_messages INTEGER",
    ),
    (
        # The client addresses (auth/throttle.address_key) that signed in to an account
        # and when (epoch seconds): the sign-in throttle keeps trusting the owner's
        # usual devices across restarts. Keyed by the name tried, case-folded.
        """CREATE TABLE known_addresses (
            name_key TEXT NOT NULL,
            address TEXT NOT NULL,
            last_success INTEGER NOT NULL,
            PRIMARY KEY (name_key, address)
        ) WITHOUT ROWID""",
    ),
    (
        # Submission (roost/submission): the addresses an account may send as besides
        # its name (``roost user alias``), each owned by one account; and when each
        # account's recent messages were relayed, for max_messages_per_hour across
        # every worker. address_key: the address case-folded.
        """CREATE TABLE aliases (
            address_key TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            name_key TEXT NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE
        ) WITHOUT ROWID""",
        "CREATE INDEX aliases_by_account ON aliases (name_key)",
        """CREATE TABLE submissions (
            name_key TEXT NOT NULL,
            sent_at REAL NOT NULL
        )""",
        "CREATE INDEX submissions_by_account ON submissions (name_key, sent_at)",
        # URLAUTH (RFC 4467 §7): a secret per account and mailbox that signs the
        # account's URLAUTH URLs; RESETKEY replaces it, voiding every URL it signed.
        """CREATE TABLE urlauth_keys (
            name_key TEXT NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
            mailbox TEXT NOT NULL,
            secret BLOB NOT NULL,
            PRIMARY KEY (name_key, mailbox)
        ) WITHOUT ROWID""",
    ),
    (
        # ACL (RFC 4314) shared folders: the accounts (owner, as spelt) that granted the
        # account grantee_key (case-folded) rights on some mailbox, so its sessions know
        # whose mailboxes to look at. A hint: the owner's ACLs say what is granted now.
        """CREATE TABLE sharers (
            grantee_key TEXT NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (grantee_key, owner)
        ) WITHOUT ROWID""",
    ),
)


def connect(
    path: Path, *, durable: bool, create: bool, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit: BEGIN IMMEDIATE).

    Without ``create``, a missing file raises sqlite3.OperationalError.
    """
    mode = "rwc" if create else "rw"
    if create:
        # Mode 0600 whatever the umask: SQLite gives the -wal and -shm files it makes
        # later the database file's mode (it holds small messages and search text).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,  # one Worker thread uses it; see worker.py
        timeout=busy_timeout,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]]) -> None:
    """Bring the database to the latest version."""
    if _version(conn) == len(migrations):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # another process may have migrated meanwhile
        if version > len(migrations):
            raise RuntimeError(f"schema version {version} is newer than this Roost knows")
        for statements in migrations[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(migrations)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version

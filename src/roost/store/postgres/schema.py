"""The PostgreSQL schema, its versioned migrations, and the check made at start.

Invariants:

* ``roost_schema.version`` is the number of migrations applied. A migration is a list
  of statements run in one transaction with the version bump, under an advisory lock,
  so two nodes migrating at once apply it once. Add a migration; never edit a released
  one.
* A node refuses a database whose version differs from ``len(MIGRATIONS)``
  (``check_version``): older means "run ``roost db migrate``", newer means a newer
  Roost migrated it and this one would misread it.
* Names, keywords and sort keys are ``COLLATE "C"``: they compare bytewise, exactly as
  the SQLite backend's, whatever the database's locale.
* Message bytes live in ``blob_chunks``, ``CHUNK`` octets a row, named by their SHA-256
  and shared by every message (of any account) with that content; a blob row is
  removed only when no message refers to it (the foreign key makes a concurrent
  reference fail that removal, messages.py ``release_blobs``).
* Quota usage and message counts (``mail_counters``) change in the very statement that
  adds or removes messages, by statement triggers (ARCHITECTURE.md decision 10).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

# Any constant: the key of the advisory lock migrations take.
MIGRATION_LOCK = 0x526F6F7374  # "Roost"

CHANGED_SINCE_READ = "RX001"  # SQLSTATE of roost_expect's failure

MIGRATIONS: Sequence[Sequence[str]] = (
    (
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        # The floor of UIDVALIDITY for new accounts (the highest a deleted one gave) and
        # a random secret made once (SCRAM mock salts for unknown names).
        """CREATE TABLE settings (
            id integer PRIMARY KEY CHECK (id = 0),
            uidvalidity_floor bigint NOT NULL DEFAULT 0,
            secret bytea NOT NULL
        )""",
        "INSERT INTO settings (id, secret) VALUES (0, gen_random_uuid()::text::bytea)",
        """CREATE TABLE accounts (
            id bigserial PRIMARY KEY,
            name_key text COLLATE "C" NOT NULL UNIQUE,
            name text NOT NULL,
            password_hash text NOT NULL,
            created bigint NOT NULL,
            scram_keys text,
            totp_secret text,
            totp_last_step bigint NOT NULL DEFAULT 0,
            quota_storage bigint,
            quota_messages bigint
        )""",
        """CREATE TABLE app_passwords (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            label_key text COLLATE "C" NOT NULL,
            label text NOT NULL,
            selector text COLLATE "C" NOT NULL,
            password_hash text NOT NULL,
            created bigint NOT NULL,
            last_used bigint,
            PRIMARY KEY (account_id, label_key),
            UNIQUE (account_id, selector)
        )""",
        # One row per account: the last modseq taken, the last UIDVALIDITY given, and
        # quota usage. Every write to an account locks this row first: writers of one
        # account take turns (as SQLite's write lock makes them), on any node.
        """CREATE TABLE mail_counters (
            account_id bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
            modseq bigint NOT NULL DEFAULT 1,
            uidvalidity bigint NOT NULL DEFAULT 0,
            storage bigint NOT NULL DEFAULT 0,
            messages bigint NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE mailboxes (
            id bigserial PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            uidvalidity bigint NOT NULL,
            uidnext bigint NOT NULL DEFAULT 1,
            highestmodseq bigint NOT NULL,
            special_use text,
            noselect boolean NOT NULL DEFAULT false,
            recent_floor bigint NOT NULL DEFAULT 1,
            UNIQUE (account_id, name)
        )""",
        """CREATE TABLE subscriptions (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            PRIMARY KEY (account_id, name)
        )""",
        """CREATE TABLE blobs (
            blob_id text COLLATE "C" PRIMARY KEY,
            size bigint NOT NULL,
            header_size bigint NOT NULL
        )""",
        """CREATE TABLE blob_chunks (
            blob_id text COLLATE "C" NOT NULL REFERENCES blobs (blob_id) ON DELETE CASCADE,
            seq integer NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (blob_id, seq)
        )""",
        # flags: bit set of system flags (sqlite/flags.py); keywords: sorted, spaced.
        # internaldate/savedate: epoch seconds; tzoffset: minutes east of UTC.
        """CREATE TABLE messages (
            mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            uid bigint NOT NULL,
            account_id bigint NOT NULL,
            modseq bigint NOT NULL,
            flags integer NOT NULL,
            keywords text COLLATE "C" NOT NULL,
            internaldate bigint NOT NULL,
            tzoffset integer NOT NULL,
            size bigint NOT NULL,
            header_size bigint NOT NULL,
            blob_id text COLLATE "C" NOT NULL REFERENCES blobs (blob_id),
            savedate bigint,
            PRIMARY KEY (mailbox_id, uid)
        )""",
        "CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq)",
        "CREATE INDEX messages_by_blob ON messages (blob_id)",
        "CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE flags & 1 = 0",
        """CREATE TABLE expunged (
            mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            uid bigint NOT NULL,
            modseq bigint NOT NULL,
            PRIMARY KEY (mailbox_id, uid)
        )""",
        "CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq)",
        """CREATE TABLE keywords (
            mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            name_key text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            PRIMARY KEY (mailbox_id, name_key)
        )""",
        # What delivery computed of a message (mime/analysis.py), per account and
        # content: COPY and MOVE share it. t_*: the decoded search texts in
        # i;unicode-casemap form (RFC 5255, mime/casemap.py, as the SQLite backend keeps
        # them), searched with LIKE on trigram GIN indexes: any substring of three or
        # more characters without a scan.
        """CREATE TABLE analyses (
            id bigserial PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            blob_id text COLLATE "C" NOT NULL,
            model bytea,
            sent_date bigint,
            sent_day bigint,
            message_id text COLLATE "C" NOT NULL,
            in_reply_to text COLLATE "C" NOT NULL,
            refs text COLLATE "C" NOT NULL,
            sort_subject text COLLATE "C" NOT NULL,
            sort_from text COLLATE "C" NOT NULL,
            sort_to text COLLATE "C" NOT NULL,
            sort_cc text COLLATE "C" NOT NULL,
            display_from text COLLATE "C" NOT NULL,
            display_to text COLLATE "C" NOT NULL,
            thread_id bigint,
            subject text NOT NULL,
            t_header text NOT NULL,
            t_body text NOT NULL,
            t_subject text NOT NULL,
            t_from text NOT NULL,
            t_to text NOT NULL,
            t_cc text NOT NULL,
            t_bcc text NOT NULL,
            UNIQUE (account_id, blob_id)
        )""",
        """CREATE INDEX analyses_by_message_id ON analyses (account_id, message_id)
            WHERE message_id != ''""",
        "CREATE INDEX analyses_header_trgm ON analyses USING gin (t_header gin_trgm_ops)",
        "CREATE INDEX analyses_body_trgm ON analyses USING gin (t_body gin_trgm_ops)",
        "CREATE INDEX analyses_subject_trgm ON analyses USING gin (t_subject gin_trgm_ops)",
        "CREATE INDEX analyses_from_trgm ON analyses USING gin (t_from gin_trgm_ops)",
        "CREATE INDEX analyses_to_trgm ON analyses USING gin (t_to gin_trgm_ops)",
        # Quota usage kept in the statement that adds or removes messages.
        """CREATE FUNCTION roost_usage_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE mail_counters c SET storage = c.storage + s.size,
                messages = c.messages + s.n
            FROM (SELECT account_id, sum(size) AS size, count(*) AS n FROM added
                  GROUP BY account_id) s
            WHERE c.account_id = s.account_id;
            RETURN NULL;
        END $$""",
        """CREATE FUNCTION roost_usage_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE mail_counters c SET storage = c.storage - s.size,
                messages = c.messages - s.n
            FROM (SELECT account_id, sum(size) AS size, count(*) AS n FROM removed
                  GROUP BY account_id) s
            WHERE c.account_id = s.account_id;
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER usage_on_insert AFTER INSERT ON messages
            REFERENCING NEW TABLE AS added FOR EACH STATEMENT
            EXECUTE FUNCTION roost_usage_added()""",
        """CREATE TRIGGER usage_on_delete AFTER DELETE ON messages
            REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
            EXECUTE FUNCTION roost_usage_removed()""",
    ),
    (
        # Addresses that signed in to an account, and when (epoch seconds): the sign-in
        # throttle keeps trusting the owner's usual devices, on every node. Keyed by the
        # name tried, case-folded (store/credentials.py).
        """CREATE TABLE known_addresses (
            name_key text COLLATE "C" NOT NULL,
            address text COLLATE "C" NOT NULL,
            last_success bigint NOT NULL,
            PRIMARY KEY (name_key, address)
        )""",
    ),
    (
        # Failed sign-ins, for the throttle on every node (failures.py). UNLOGGED: no
        # WAL, emptied by a crash; the throttle needs no more.
        """CREATE UNLOGGED TABLE sign_in_failures (
            ip text COLLATE "C" NOT NULL,
            account text COLLATE "C" NOT NULL,
            at double precision NOT NULL
        )""",
        "CREATE INDEX sign_in_failures_by_ip ON sign_in_failures (ip, at)",
        "CREATE INDEX sign_in_failures_by_account ON sign_in_failures (account, at)",
    ),
    (
        # RFC 8970 PREVIEW text computed at delivery; NULL where made before it was kept.
        "ALTER TABLE analyses ADD COLUMN preview text",
        # Sieve scripts (RFC 5228/5804): source and compiled form, at most one active.
        """CREATE TABLE sieve_scripts (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            source text NOT NULL,
            compiled text NOT NULL,
            compiled_version integer NOT NULL,
            active boolean NOT NULL DEFAULT false,
            PRIMARY KEY (account_id, name)
        )""",
        "CREATE UNIQUE INDEX sieve_scripts_one_active ON sieve_scripts (account_id) WHERE active",
        # Vacation responses and duplicate ids remembered until ``expires`` (epoch s).
        """CREATE TABLE sieve_tracking (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            kind text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            expires bigint NOT NULL,
            PRIMARY KEY (account_id, kind, key)
        )""",
    ),
    (
        # Submission (RFC 6409): the addresses an account may also send as (an address
        # belongs to one account: keyed by its case-folded form), and the messages it
        # sent, for the per-hour limit on every node.
        """CREATE TABLE aliases (
            address_key text COLLATE "C" PRIMARY KEY,
            address text NOT NULL,
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
        )""",
        "CREATE INDEX aliases_by_account ON aliases (account_id)",
        """CREATE TABLE submissions (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            sent_at double precision NOT NULL
        )""",
        "CREATE INDEX submissions_by_account ON submissions (account_id, sent_at)",
        # URLAUTH (RFC 4467 §7): the secret that signs an account's URLs of a mailbox.
        """CREATE TABLE urlauth_keys (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            mailbox text COLLATE "C" NOT NULL,
            secret bytea NOT NULL,
            PRIMARY KEY (account_id, mailbox)
        )""",
    ),
    (
        # METADATA (RFC 5464, metadata.py): an account's server entries (mailbox_id
        # NULL) and its mailboxes' entries, which go with their mailbox (RFC 5464 §3.2)
        # by the cascade; a RENAME keeps them (the id stays). name: lower case.
        """CREATE TABLE metadata (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            mailbox_id bigint REFERENCES mailboxes (id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            value bytea NOT NULL
        )""",
        "CREATE UNIQUE INDEX metadata_key ON metadata (account_id, coalesce(mailbox_id, 0), name)",
        "CREATE INDEX metadata_by_mailbox ON metadata (mailbox_id)",
        # ACL (RFC 4314) grants the owner made on a mailbox: identifier (an account
        # name as spelt) → rights letters; the owner's own rights are implicit.
        """CREATE TABLE acl (
            account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            mailbox_id bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
            identifier text COLLATE "C" NOT NULL,
            rights text NOT NULL,
            PRIMARY KEY (account_id, mailbox_id, identifier)
        )""",
        "CREATE INDEX acl_by_identifier ON acl (account_id, identifier)",
        "CREATE INDEX acl_by_mailbox ON acl (mailbox_id)",
        # Shared folders: the accounts (owner, as spelt) that granted the account
        # grantee_key (case-folded) rights on some mailbox. A hint; the ACLs are the truth.
        """CREATE TABLE sharers (
            grantee_key text COLLATE "C" NOT NULL,
            owner text COLLATE "C" NOT NULL,
            PRIMARY KEY (grantee_key, owner)
        )""",
    ),
    (
        # Connection limits and POP3 maildrop locks held across nodes (connections.py).
        # Each node (each store of a process) holds a lease it renews; a slot counts
        # only while its node's lease runs, and goes with it when the lease is swept.
        # UNLOGGED: no WAL; a crash of PostgreSQL empties them, and the nodes, which
        # remember what they hold, put it back at their next renewal.
        """CREATE UNLOGGED TABLE node_leases (
            node text COLLATE "C" PRIMARY KEY,
            expires timestamptz NOT NULL
        )""",
        """CREATE UNLOGGED TABLE live_slots (
            node text COLLATE "C" NOT NULL REFERENCES node_leases (node) ON DELETE CASCADE,
            id bigint NOT NULL,
            kind text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            PRIMARY KEY (node, id)
        )""",
        "CREATE INDEX live_slots_by_key ON live_slots (kind, key)",
        # Take a slot for every (kind, key) claim, each within its limit, or none: 0
        # when taken, else the 1-based index of the claim that is full; -1 when the
        # node's own lease has run out (it renews and asks again). The advisory locks on
        # the claimed keys, taken in one order and held to COMMIT, make count-then-insert
        # exact between nodes; each statement of a function sees what committed before
        # it (READ COMMITTED), so the count sees every slot taken under the lock before.
        """CREATE FUNCTION roost_take_slots(
            p_node text, p_ids bigint[], p_kinds text[], p_keys text[], p_limits integer[]
        ) RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE
            taken bigint;
        BEGIN
            PERFORM 1 FROM node_leases WHERE node = p_node AND expires > now();
            IF NOT FOUND THEN
                RETURN -1;
            END IF;
            PERFORM pg_advisory_xact_lock(1383034740, h) FROM (
                SELECT DISTINCT hashtext(k || E'\n' || c) AS h
                FROM unnest(p_kinds, p_keys) AS u (k, c) ORDER BY 1
            ) AS ordered;
            FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
                SELECT count(*) INTO taken FROM live_slots s
                    JOIN node_leases n ON n.node = s.node
                    WHERE s.kind = p_kinds[i] AND s.key = p_keys[i] AND n.expires > now();
                IF taken >= p_limits[i] THEN
                    RETURN i;
                END IF;
            END LOOP;
            INSERT INTO live_slots (node, id, kind, key)
                SELECT p_node, u.id, u.k, u.c FROM unnest(p_ids, p_kinds, p_keys) AS u (id, k, c);
            RETURN 0;
        END $$""",
    ),
    (
        # Sharding (shards.py): the shard (its place in [store] shards) each account
        # lives on, kept in the first shard only. ``settings.shard``: this database's
        # place in that list, set once by ``roost db migrate`` (NULL: not a shard).
        """CREATE TABLE account_shards (
            name_key text COLLATE "C" PRIMARY KEY,
            shard integer NOT NULL
        )""",
        "CREATE INDEX account_shards_by_shard ON account_shards (shard)",
        # Which account (name_key) holds each alias address, across the shards: an
        # address belongs to one account site-wide. Each shard's ``aliases`` stays the
        # truth of what its accounts hold; this is the claim that keeps them apart.
        """CREATE TABLE alias_claims (
            address_key text COLLATE "C" PRIMARY KEY,
            name_key text COLLATE "C" NOT NULL
        )""",
        "ALTER TABLE settings ADD COLUMN shard integer",
    ),
    (
        # A write that read what it changes before taking the account's write turn
        # (pool.py ``Database.run_unlocked_read``) checks under the turn that nothing
        # changed meanwhile: this aborts its transaction when something did.
        f"""CREATE FUNCTION roost_expect(ok boolean) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION 'changed since read' USING ERRCODE = '{CHANGED_SINCE_READ}';
            END IF;
        END $$""",
    ),
)


class SchemaMismatch(Exception):
    """The database's schema is not the one this Roost knows."""


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('roost_schema') IS NOT NULL")
    if not exists:
        return 0
    version = await conn.fetchval("SELECT version FROM roost_schema")
    return int(version or 0)


async def migrate(conn: asyncpg.Connection) -> tuple[int, int]:
    """Bring the database to the latest version; (before, after)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS roost_schema (version integer NOT NULL)")
        await conn.execute(
            "INSERT INTO roost_schema (version) SELECT 0"
            " WHERE NOT EXISTS (SELECT 1 FROM roost_schema)"
        )
        before = await current_version(conn)
        if before > len(MIGRATIONS):
            raise SchemaMismatch(
                f"the database's schema version {before} is newer than this Roost"
                f" knows ({len(MIGRATIONS)}): upgrade Roost"
            )
        for statements in MIGRATIONS[before:]:
            for statement in statements:
                await conn.execute(statement)
        await conn.execute("UPDATE roost_schema SET version = $1", len(MIGRATIONS))
    return before, len(MIGRATIONS)


async def check_version(conn: asyncpg.Connection) -> None:
    """SchemaMismatch unless the database is exactly at this Roost's version."""
    version = await current_version(conn)
    if version < len(MIGRATIONS):
        raise SchemaMismatch(
            f"the database's schema version {version} is older than this Roost's"
            f" ({len(MIGRATIONS)}): run `roost db migrate --store URL` first"
        )
    if version > len(MIGRATIONS):
        raise SchemaMismatch(
            f"the database's schema version {version} is newer than this Roost knows"
            f" ({len(MIGRATIONS)}): upgrade Roost on this node"
        )


# Shard k's sequences start at k * SHARD_ID_SPAN, so that the ids (accounts, mailboxes,
# analyses) of one shard are never taken on another: an account moved between shards
# keeps them, and with them its MAILBOXIDs and THREADIDs (RFC 8474).
SHARD_ID_SPAN = 1 << 48


async def claim_shard(conn: asyncpg.Connection, index: int, shard_count: int) -> None:
    """Make a migrated database shard ``index`` of ``shard_count`` (``roost db migrate``
    with several shards): record its place, move its sequences into its own id range
    and, on the first shard, map every account not yet mapped to it (a database that
    served alone becomes the first shard with its accounts). SchemaMismatch when the
    database is already another shard: the shards list was reordered."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        claimed = await conn.fetchval("SELECT shard FROM settings WHERE id = 0")
        if claimed is not None and claimed != index:
            raise SchemaMismatch(
                f"this database is shard {claimed + 1}, listed as shard {index + 1} of"
                f" {shard_count}: keep [store] shards in the order they were added"
            )
        await conn.execute("UPDATE settings SET shard = $1 WHERE id = 0", index)
        if index > 0:
            await conn.execute(
                "SELECT setval(format('%I.%I', schemaname, sequencename),"
                " greatest(coalesce(last_value, 0), $1))"
                " FROM pg_sequences WHERE schemaname = current_schema()",
                index * SHARD_ID_SPAN,
            )
        else:
            await conn.execute(
                "INSERT INTO account_shards (name_key, shard) SELECT name_key, 0 FROM accounts"
                " ON CONFLICT (name_key) DO NOTHING"
            )


async def check_shard(conn: asyncpg.Connection, index: int, shard_count: int) -> None:
    """SchemaMismatch unless the database was made shard ``index`` by ``claim_shard``."""
    claimed = await conn.fetchval("SELECT shard FROM settings WHERE id = 0")
    if claimed is None:
        raise SchemaMismatch(
            f"shard {index + 1} of {shard_count} is not set up as a shard:"
            " run `roost db migrate` with every shard listed"
        )
    if claimed != index:
        raise SchemaMismatch(
            f"the database listed as shard {index + 1} is shard {claimed + 1}:"
            " keep [store] shards in the order they were added"
        )

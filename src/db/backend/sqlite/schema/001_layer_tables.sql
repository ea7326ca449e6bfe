-- The database layer's own tables (src/db/layer_schema.rs), in every database it manages.
-- Safe to apply to a database where the application's migrations of multidb up to
-- December 2026 created them already: every statement is IF NOT EXISTS / DO NOTHING.

-- Commit decisions of writes that span both databases (src/db/cross_commit/). The
-- protocol writes to the database committed last. outcome: 'commit' (written with the
-- last participant's work) or 'abort' (claimed by recovery for a transaction whose
-- coordinator never decided). redo: for a participant that cannot prepare, the work to
-- apply again if its own commit was lost.
CREATE TABLE IF NOT EXISTS multidb_decisions (
    gid TEXT PRIMARY KEY NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('commit', 'abort')),
    redo TEXT,
    created_at TIMESTAMP NOT NULL
);
-- Decisions whose work is still to be redone, found by their redo record.
CREATE INDEX IF NOT EXISTS multidb_decisions_pending_redo ON multidb_decisions (redo) WHERE redo IS NOT NULL;

-- Leases of running instances (src/db/lease.rs), in milliseconds since the epoch by this
-- database's clock, never an instance's. Ids are never reused.
CREATE TABLE IF NOT EXISTS multidb_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    host TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL
);

-- When the next periodic recovery pass is due, by this database's clock.
CREATE TABLE IF NOT EXISTS multidb_recovery_turn (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    next_pass_ms BIGINT NOT NULL
);
INSERT INTO multidb_recovery_turn (id, next_pass_ms) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

-- Answers of requests sent with an `Idempotency-Key` (src/db/idempotency.rs). `owner`
-- is the caller's API key id ('' when authentication is off); `fingerprint` a SHA-256
-- of the request's method, path and canonical JSON body.
CREATE TABLE IF NOT EXISTS multidb_idempotency_keys (
    owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    -- The database's clock (UTC), which every instance compares the TTL with.
    created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (owner, idempotency_key)
);
CREATE INDEX IF NOT EXISTS multidb_idempotency_keys_created_at ON multidb_idempotency_keys (created_at);

-- The database layer's own tables (src/db/layer_schema.rs), in MySQL's dialect. DDL
-- commits implicitly on MySQL, so a version that fails halfway leaves what it did: every
-- statement is safe to run again (IF NOT EXISTS, INSERT IGNORE), and the layer applies
-- a version again until it is recorded. Text that is a key is VARCHAR (MySQL cannot key
-- on TEXT); every column compares bytes (`_bin`), as on the other backends.

-- Commit decisions of writes that span both databases (src/db/cross_commit/).
CREATE TABLE IF NOT EXISTS multidb_decisions (
    gid VARCHAR(128) NOT NULL PRIMARY KEY,
    outcome VARCHAR(8) NOT NULL CHECK (outcome IN ('commit', 'abort')),
    redo VARCHAR(255),
    created_at DATETIME(6) NOT NULL,
    -- Decisions whose work is still to be redone, found by their redo record.
    INDEX multidb_decisions_pending_redo (redo)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Leases of running instances (src/db/lease.rs), in milliseconds since the epoch by this
-- database's clock. Ids are never reused.
CREATE TABLE IF NOT EXISTS multidb_instances (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    started_at_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- When the next periodic recovery pass is due, by this database's clock.
CREATE TABLE IF NOT EXISTS multidb_recovery_turn (
    id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    next_pass_ms BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT IGNORE INTO multidb_recovery_turn (id, next_pass_ms) VALUES (1, 0);

-- Answers of requests sent with an `Idempotency-Key` (src/db/idempotency.rs).
CREATE TABLE IF NOT EXISTS multidb_idempotency_keys (
    owner VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    status INTEGER NOT NULL,
    location VARCHAR(255),
    body MEDIUMTEXT NOT NULL,
    -- The database's clock (UTC: the service sets each session's time zone to UTC).
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (owner, idempotency_key),
    INDEX multidb_idempotency_keys_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Key locks (src/db/key_lock.rs): MySQL's GET_LOCK belongs to the session, not the
-- transaction, and would outlive it on a pooled connection; a row locked inside the
-- transaction is released with it. One row per lock ever taken.
CREATE TABLE IF NOT EXISTS multidb_key_locks (
    class BIGINT NOT NULL,
    lock_key BIGINT NOT NULL,
    PRIMARY KEY (class, lock_key)
) ENGINE = InnoDB;

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
-- transaction is released with it. A fixed set of 65,536 slots, each key hashed to one
-- (backend/mysql/mod.rs): the rows exist before anyone locks them, so no transaction
-- ever creates a row others wait on (two waiters on a row whose creator rolled back
-- both insert it, and deadlock), and the table never grows.
CREATE TABLE IF NOT EXISTS multidb_key_locks (
    slot INTEGER NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
INSERT IGNORE INTO multidb_key_locks (slot)
SELECT d0.d + 10 * d1.d + 100 * d2.d + 1000 * d3.d + 10000 * d4.d
FROM (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d0
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d1
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d2
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d3
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6) d4
WHERE d0.d + 10 * d1.d + 100 * d2.d + 1000 * d3.d + 10000 * d4.d < 65536;

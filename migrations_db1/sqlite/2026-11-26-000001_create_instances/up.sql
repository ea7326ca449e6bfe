-- Leases of running instances (see src/db/lease.rs). An instance owns the cross-database
-- writes it starts (their gids carry its lease id) while its row's lease_until_ms lies
-- ahead of this database's clock; another instance resolves that work only after the
-- lease expired. Times are milliseconds since the epoch by this database's clock, never
-- an instance's: instances on different machines compare them. Ids are never reused (AUTOINCREMENT).
CREATE TABLE multidb_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    host TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL
);

-- When the next periodic recovery pass is due, by this database's clock: instances take
-- turns instead of all scanning at once (src/db/cross_commit/recovery.rs).
CREATE TABLE multidb_recovery_turn (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    next_pass_ms BIGINT NOT NULL
);
INSERT INTO multidb_recovery_turn (id, next_pass_ms) VALUES (1, 0);

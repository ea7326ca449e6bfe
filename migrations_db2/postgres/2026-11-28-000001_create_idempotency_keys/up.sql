-- Answers of requests sent with an `Idempotency-Key` (README, "Safe retries"), kept in
-- the database of the row each request created and committed in the same transaction,
-- so that a retry after a crash finds either both or neither. `owner` is the API key id
-- of the caller ('' when authentication is off); `fingerprint` is a SHA-256 of the
-- request's method, path and canonical JSON body. Expired rows are deleted by the
-- periodic recovery task, by `created_at`.
CREATE TABLE multidb_idempotency_keys (
    owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    -- The database's clock (UTC), which every instance compares the TTL with.
    created_at TIMESTAMP NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'),
    PRIMARY KEY (owner, idempotency_key)
);
CREATE INDEX multidb_idempotency_keys_created_at ON multidb_idempotency_keys (created_at);

DROP TABLE multidb_idempotency_keys;

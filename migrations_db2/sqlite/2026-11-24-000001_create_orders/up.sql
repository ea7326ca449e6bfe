-- user_id refers to users.id in db1: no SQL foreign key can reach another database,
-- so the service enforces it (see src/workflows.rs).
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    amount_cents BIGINT NOT NULL CHECK (amount_cents BETWEEN 0 AND 1000000000000),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_user_id_id_idx ON orders (user_id, id);

-- db2 part of GET /users/{id}/summary (a seeded user has about 10 orders).
-- The statements the service sends to db2 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set user_id random(1, :users)
\set k100 100
SELECT id, user_id, item, quantity, amount_cents, created_at, COUNT(*) OVER () AS order_count, CAST(SUM(amount_cents) OVER () AS BIGINT) AS total_cents FROM orders WHERE user_id = :user_id ORDER BY id DESC LIMIT :k100;

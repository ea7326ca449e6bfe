-- The benchmark's orders in db2 (PostgreSQL), spread over the users (about 10 each);
-- ids from the identity, 1..:orders. Used by bench/run.sh and bench/peers.sh with
-- psql -v users=N -v orders=M; in 64-bit arithmetic, which g * 7919 needs past 271,000
-- orders.
INSERT INTO orders (user_id, item, quantity, amount_cents, created_at)
SELECT 1 + g % :users, 'item ' || g, 1 + (g * 7919) % 10000,
       (g::bigint * 7919 * 104729) % 1000000000001,
       TIMESTAMP '2026-01-01 00:00:00' + g * INTERVAL '1 second'
FROM generate_series(1::bigint, :orders) AS g;
\ir seed-totals-postgres.sql
VACUUM ANALYZE;

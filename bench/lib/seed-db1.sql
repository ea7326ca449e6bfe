-- The benchmark's users in db1 (PostgreSQL): ids 1..:users. Used by bench/run.sh and
-- bench/peers.sh with psql -v users=N.
INSERT INTO users (id, email, name, created_at)
SELECT g, 'user' || g || '@example.com', 'User ' || g,
       TIMESTAMP '2026-01-01 00:00:00' + g * INTERVAL '1 second'
FROM generate_series(1, :users) AS g;
-- The ids were given explicitly: move the identity past them for POST /users.
SELECT setval(pg_get_serial_sequence('users', 'id'), :users) \g /dev/null
VACUUM ANALYZE;

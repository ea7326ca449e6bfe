-- The benchmark's users (db1) and orders (db2) on MySQL/MariaDB, as seed-db1.sql and
-- seed-db2.sql on PostgreSQL: bench/run.sh replaces :users, :orders, :db1 and :db2 by
-- their values. MariaDB's Sequence engine gives the rows (seq_1_to_N, read in the
-- database the client is given).
INSERT INTO :db1.users (id, email, name, created_at)
SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('User ', seq),
       TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND
FROM seq_1_to_:users;
INSERT INTO :db2.orders (user_id, item, quantity, amount_cents, created_at)
SELECT 1 + seq % :users, CONCAT('item ', seq), 1 + (seq * 7919) % 10000,
       (seq * 7919 * 104729) % 1000000000001,
       TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND
FROM seq_1_to_:orders;
-- Each user's order totals, as the service keeps them (migrations_db2), where the
-- binary being measured has that table (bench/run.sh removes this statement for one
-- that has not: builds from before it are measured on the same seed).
INSERT INTO :db2.user_order_totals (user_id, order_count, total_cents)
SELECT user_id, COUNT(*), SUM(amount_cents) FROM :db2.orders GROUP BY user_id;
ANALYZE TABLE :db1.users, :db2.orders;

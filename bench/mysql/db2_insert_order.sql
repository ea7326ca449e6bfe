-- db2 part of POST /orders: the key lock's slot sent with the begin, the insert (for a
-- random user, as the benchmark's orders: one user's would grow by every run's inserts
-- and slow the summary's part), the row read back by LAST_INSERT_ID().
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
START TRANSACTION;
SELECT slot FROM multidb_key_locks WHERE slot = 40988 LOCK IN SHARE MODE;
INSERT INTO `orders` (`user_id`, `item`, `quantity`, `amount_cents`, `created_at`) VALUES (1 + FLOOR(RAND() * 10000), 'bench item', 77, 123456, SYSDATE(6));
SELECT `orders`.`id`, `orders`.`user_id`, `orders`.`item`, `orders`.`quantity`, `orders`.`amount_cents`, `orders`.`created_at` FROM `orders` WHERE (`orders`.`id` = CAST(LAST_INSERT_ID() AS SIGNED));
COMMIT;

-- db2 part of POST /orders: the key lock's slot sent with the begin (exclusive on MySQL:
-- orders of one user take turns, see orders::new_order_lock), the insert (for a random
-- user, as the benchmark's orders: one user's would grow by every run's inserts and slow
-- the summary's part), the row read back by LAST_INSERT_ID(), the user's totals
-- upserted. The slot stands for the user's (a hash of the user id in the service): one
-- slot per user here, so that clients take turns as rarely as the service's do.
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them before issue 22, with the totals' upsert and the exclusive
-- slot written after the SQL Diesel builds for MySQL (not traced again), for
-- bench/run.sh's MySQL ceiling: mariadb-slap runs them in a loop, one statement per line, at the
-- benchmark's concurrency.
SET @user = 1 + FLOOR(RAND() * 10000);
START TRANSACTION;
SELECT slot FROM multidb_key_locks WHERE slot = @user FOR UPDATE;
INSERT INTO `orders` (`user_id`, `item`, `quantity`, `amount_cents`, `created_at`) VALUES (@user, 'bench item', 77, 123456, SYSDATE(6));
SELECT `orders`.`id`, `orders`.`user_id`, `orders`.`item`, `orders`.`quantity`, `orders`.`amount_cents`, `orders`.`created_at` FROM `orders` WHERE (`orders`.`id` = CAST(LAST_INSERT_ID() AS SIGNED));
INSERT INTO `user_order_totals` (`user_id`, `order_count`, `total_cents`) VALUES (@user, 1, 123456) ON DUPLICATE KEY UPDATE `order_count` = (`user_order_totals`.`order_count` + 1), `total_cents` = (`user_order_totals`.`total_cents` + 123456);
COMMIT;

-- db1 part of POST /orders: the user's row locked, then released (the service rolls back
-- a session that only locked).
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
START TRANSACTION;
SELECT id FROM users WHERE id = 4321 LOCK IN SHARE MODE;
ROLLBACK;

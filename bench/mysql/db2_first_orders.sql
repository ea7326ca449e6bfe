-- db2 part of GET /overview?limit=10.
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
SELECT `orders`.`id`, `orders`.`user_id`, `orders`.`item`, `orders`.`quantity`, `orders`.`amount_cents`, `orders`.`created_at` FROM `orders` WHERE (`orders`.`id` > 0) ORDER BY `orders`.`id` ASC LIMIT 11;

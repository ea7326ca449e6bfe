-- db2 part of GET /users/{id}/summary: the newest 100 orders with the user's totals
-- (issue 22: written after the SQL Diesel builds for MySQL, not traced again).
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
SELECT `orders`.`id`, `orders`.`user_id`, `orders`.`item`, `orders`.`quantity`, `orders`.`amount_cents`, `orders`.`created_at`, `user_order_totals`.`order_count`, `user_order_totals`.`total_cents` FROM (`orders` LEFT OUTER JOIN `user_order_totals` ON (`orders`.`user_id` = `user_order_totals`.`user_id`)) WHERE (`orders`.`user_id` = 4321) ORDER BY `orders`.`id` DESC LIMIT 100;

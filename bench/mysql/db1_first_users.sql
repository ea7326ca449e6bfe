-- db1 part of GET /overview?limit=10.
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
SELECT `users`.`id`, `users`.`email`, `users`.`name`, `users`.`created_at` FROM `users` WHERE (`users`.`id` > 0) ORDER BY `users`.`id` ASC LIMIT 11;

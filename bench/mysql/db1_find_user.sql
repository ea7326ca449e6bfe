-- db1 part of GET /users/{id} and GET /users/{id}/summary.
-- The statements the service sends to this database for one request, as MariaDB's
-- general log showed them (user 4321), for bench/run.sh's MySQL ceiling: mariadb-slap
-- runs them in a loop, one statement per line, at the benchmark's concurrency.
SELECT `users`.`id`, `users`.`email`, `users`.`name`, `users`.`created_at` FROM `users` WHERE (`users`.`id` = 4321);

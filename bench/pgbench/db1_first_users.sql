-- db1 part of GET /overview?limit=10.
-- The statements the service sends to db1 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set k10 10
SELECT "users"."id", "users"."email", "users"."name", "users"."created_at" FROM "users" ORDER BY "users"."id" ASC LIMIT :k10;

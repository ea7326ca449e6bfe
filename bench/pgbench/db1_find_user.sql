-- db1 part of GET /users/{id} (all of it) and of GET /users/{id}/summary.
-- The statements the service sends to db1 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set user_id random(1, :users)
SELECT "users"."id", "users"."email", "users"."name", "users"."created_at" FROM "users" WHERE ("users"."id" = :user_id);

-- db2 part of GET /overview?limit=10.
-- The statements the service sends to db2 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set k10 10
SELECT "orders"."id", "orders"."user_id", "orders"."item", "orders"."quantity", "orders"."amount_cents", "orders"."created_at" FROM "orders" ORDER BY "orders"."id" ASC LIMIT :k10;

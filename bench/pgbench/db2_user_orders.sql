-- db2 part of GET /users/{id}/summary (a seeded user has about 10 orders).
-- The statements the service sends to db2 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set user_id random(1, :users)
\set k100 100
SELECT "orders"."id", "orders"."user_id", "orders"."item", "orders"."quantity", "orders"."amount_cents", "orders"."created_at", "user_order_totals"."order_count", "user_order_totals"."total_cents" FROM ("orders" LEFT OUTER JOIN "user_order_totals" ON ("orders"."user_id" = "user_order_totals"."user_id")) WHERE ("orders"."user_id" = :user_id) ORDER BY "orders"."id" DESC LIMIT :k100;

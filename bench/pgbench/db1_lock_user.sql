-- db1 part of POST /orders (the service keeps this transaction open
-- until db2 has committed; pgbench runs it on its own).
-- The statements the service sends to db1 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set user_id random(1, :users)
\set k1 1
BEGIN; SET LOCAL statement_timeout = 5000; SET LOCAL idle_in_transaction_session_timeout = 12000;
SELECT "users"."id" FROM "users" WHERE ("users"."id" = :user_id) LIMIT :k1 FOR KEY SHARE;
ROLLBACK;

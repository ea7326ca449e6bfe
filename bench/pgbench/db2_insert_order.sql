-- db2 part of POST /orders.
-- The statements the service sends to db2 for one request, as PostgreSQL
-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every
-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.
\set user_id random(1, :users)
\set quantity random(1, 10000)
\set amount_cents random(0, 1000000000)
BEGIN; SET LOCAL statement_timeout = 5000; SET LOCAL idle_in_transaction_session_timeout = 12000; SELECT pg_advisory_xact_lock_shared(1835295349, :user_id);
WITH new_order AS (INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) VALUES (:user_id, :item, :quantity, :amount_cents, :created_at) RETURNING id, user_id, item, quantity, amount_cents, created_at), added AS (INSERT INTO user_order_totals (user_id, order_count, total_cents) SELECT user_id, 1, amount_cents FROM new_order ON CONFLICT (user_id) DO UPDATE SET order_count = user_order_totals.order_count + EXCLUDED.order_count, total_cents = user_order_totals.total_cents + EXCLUDED.total_cents) SELECT id, user_id, item, quantity, amount_cents, created_at FROM new_order;
COMMIT;

-- Each user's order totals (PostgreSQL), after the orders are seeded, as the service keeps them (migrations_db2's
-- user_order_totals), where the binary being measured has that table: builds from
-- before it are measured on the same seed.
DO $$
BEGIN
  IF to_regclass('user_order_totals') IS NOT NULL THEN
    INSERT INTO user_order_totals (user_id, order_count, total_cents)
    SELECT user_id, COUNT(*), SUM(amount_cents) FROM orders GROUP BY user_id;
  END IF;
END $$;

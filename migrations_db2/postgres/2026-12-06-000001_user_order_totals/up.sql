-- How many orders each user has and what they sum to, kept by the service in the
-- transaction that adds or deletes an order, so that a user's summary reads one row
-- instead of every order of the user. A row exists for every user with orders (one
-- whose orders were all deleted one by one may keep a row of zeros).
CREATE TABLE user_order_totals (
    user_id BIGINT PRIMARY KEY,
    order_count BIGINT NOT NULL,
    total_cents BIGINT NOT NULL
);
-- The orders already there. Writers of an older build are kept out until this
-- migration commits; any that keep running after it write orders without totals
-- (docs/migrations.md: stop them first; `multidb check` finds the difference).
LOCK TABLE orders IN SHARE MODE;
INSERT INTO user_order_totals (user_id, order_count, total_cents)
SELECT user_id, COUNT(*), SUM(amount_cents) FROM orders GROUP BY user_id;

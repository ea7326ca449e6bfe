-- How many orders each user has and what they sum to, kept by the service in the
-- transaction that adds or deletes an order, so that a user's summary reads one row
-- instead of every order of the user. A row exists for every user with orders (one
-- whose orders were all deleted one by one may keep a row of zeros).
CREATE TABLE IF NOT EXISTS user_order_totals (
    user_id BIGINT NOT NULL PRIMARY KEY,
    order_count BIGINT NOT NULL,
    total_cents BIGINT NOT NULL
) ENGINE = InnoDB;
-- The orders already there. MySQL commits a CREATE TABLE at once, so writers of an
-- older build still running could add orders beside this copy: stop them first
-- (docs/migrations.md); `multidb check` finds any difference. Written to be run again
-- after a failure between the two statements.
INSERT INTO user_order_totals (user_id, order_count, total_cents)
SELECT user_id, COUNT(*), SUM(amount_cents) FROM orders GROUP BY user_id
ON DUPLICATE KEY UPDATE order_count = VALUES(order_count), total_cents = VALUES(total_cents);

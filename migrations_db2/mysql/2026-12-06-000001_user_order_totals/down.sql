DROP TABLE IF EXISTS user_order_totals;

DROP TABLE user_order_totals;

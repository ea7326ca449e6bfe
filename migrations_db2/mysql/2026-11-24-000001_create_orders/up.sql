-- See migrations_db1/mysql for charset and collation.
CREATE TABLE IF NOT EXISTS orders (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    item VARCHAR(200) NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    amount_cents BIGINT NOT NULL CHECK (amount_cents BETWEEN 0 AND 1000000000000),
    created_at DATETIME(6) NOT NULL,
    INDEX orders_user_id_id_idx (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

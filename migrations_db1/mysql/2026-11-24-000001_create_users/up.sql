-- Charset and collation are the table's own, never the server's defaults: with
-- utf8mb4_general_ci a unique index would take case and accent variants of an email
-- for the same one. `_bin` compares as the other backends do (the service lower-cases
-- emails itself). Lengths are the API's limits (Email, Text).
CREATE TABLE IF NOT EXISTS users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    name VARCHAR(200) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE INDEX users_email_key (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

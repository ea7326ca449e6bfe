CREATE TABLE IF NOT EXISTS api_keys (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    scope VARCHAR(5) NOT NULL CHECK (scope IN ('read', 'write')),
    secret_sha256 VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    last_used_at DATETIME(6),
    revoked_at DATETIME(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

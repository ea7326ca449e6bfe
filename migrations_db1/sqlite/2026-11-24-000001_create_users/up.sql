-- INTEGER PRIMARY KEY is SQLite's rowid (64-bit); AUTOINCREMENT keeps deleted ids from being reused.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Emails are stored lower-case, so a plain unique index is unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON users (email);

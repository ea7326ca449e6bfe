-- Commit decisions of writes that span both databases (see src/db/cross_commit.rs).
-- Every database has the table; the protocol writes to the one committed last.
-- outcome: 'commit' (written with the last participant's work) or 'abort' (written by
-- recovery to claim an in-doubt transaction whose coordinator never decided).
-- redo: for a participant that cannot prepare (SQLite), the work to apply again if its
-- own commit was lost.
CREATE TABLE multidb_decisions (
    gid TEXT PRIMARY KEY NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('commit', 'abort')),
    redo TEXT,
    created_at TIMESTAMP NOT NULL
);

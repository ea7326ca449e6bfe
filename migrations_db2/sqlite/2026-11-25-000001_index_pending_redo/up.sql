-- Decisions whose work on the referenced database is still to be redone, found by their
-- redo record: an order for a user checks, inside its own transaction, that no decided
-- deletion of that user is waiting to be applied (see src/db/cross_commit/).
CREATE INDEX multidb_decisions_pending_redo ON multidb_decisions (redo) WHERE redo IS NOT NULL;

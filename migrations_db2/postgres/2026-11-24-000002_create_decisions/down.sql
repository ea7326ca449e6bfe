DROP TABLE multidb_decisions;

DROP TABLE multidb_recovery_turn;
DROP TABLE multidb_instances;

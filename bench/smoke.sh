#!/usr/bin/env bash
# A few seconds of every bench workload on SQLite only, no thresholds: fails on any
# non-2xx response (or socket error). Needs no PostgreSQL, so it can run where a
# pg_virtualenv is already in use (CI). Takes run.sh's options, e.g.
#   bash bench/smoke.sh --binary target/debug/multidb
exec bash "$(dirname "$0")/run.sh" --smoke "$@"

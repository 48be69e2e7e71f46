#!/usr/bin/env bash
# Benchmark for issue 11: the service layer's change feed.
#
#   bash bench/feed.sh
#
# Prints the latency from an event's commit (through a store handle of its
# own, as another process would write) to its arrival at a subscriber,
# p50/p99, on SQLite (inotify on the WAL + data_version) and on PostgreSQL
# (LISTEN/NOTIFY). Targets: p99 < 10 ms on SQLite, < 20 ms on PostgreSQL;
# printed beside the figures, never failing the run.
#
# Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/test), FEED_EVENTS (300), FEED_GAP_MS (3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "note: no PostgreSQL answers at 127.0.0.1:5432; only SQLite will be measured" >&2
fi
cargo bench --quiet -p taskdaemon-service --bench feed

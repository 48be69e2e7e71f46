#!/usr/bin/env bash
# Benchmark for issue 6: claiming work from a shared store.
#
#   bash bench/postgres.sh
#
# For 1, 4 and 16 workers it prints no-op claims per second (claim, then
# record success), p50/p99 claim latency, and the time from `submit` to the
# claim of an idle worker woken by LISTEN/NOTIFY; the same run measures the
# SQLite backend for comparison. The target (>= 5,000 no-op claims/s with 16
# workers) is printed beside the figure and never fails the run.
#
# Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/test), CLAIMS (2000 per run),
# LATENCY_RUNS (50). The run uses (and drops) a schema of its own.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "note: no PostgreSQL answers at 127.0.0.1:5432; only SQLite will be measured" >&2
fi
cargo bench --quiet -p taskdaemon-store --bench claims

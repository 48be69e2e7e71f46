#!/usr/bin/env bash
# Benchmark for issues 6 and 17: claiming work from a shared store.
#
#   bash bench/postgres.sh
#
# For 1, 4 and 16 workers it prints no-op claims per second (claim, then
# record success), p50/p95/p99 claim latency, one task at a time and then
# in batches (`claim_batch`/`complete_claims`, what queue workers use), as
# ratios to the first wave's 380-510 claims/s, CPU per claim (this process
# and the run's PostgreSQL backends), and the time from `submit` to
# the claim of an idle worker woken by LISTEN/NOTIFY; the same run measures
# the SQLite backend, and Procrastinate (a PostgreSQL job queue from PyPI) on
# the same server when its Python package imports. The targets (>= 5,000
# no-op claims/s with 16 workers, claim p50 < 2 ms) are printed beside the
# figures and never fail the run.
#
# Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/test), CLAIMS (2000 per one-at-a-time
# run), BATCH_CLAIMS (10000 per batched run), BATCH (32), LATENCY_RUNS (50),
# JOBS (Procrastinate jobs per run, 10000), PYTHON (the interpreter with
# `procrastinate` and `psycopg` installed: target/procrastinate-venv's when
# it exists (`python3 -m venv target/procrastinate-venv &&
# target/procrastinate-venv/bin/pip install procrastinate 'psycopg[binary]'`),
# else python3). The run uses (and drops) a schema of its own, and
# Procrastinate a database of its own.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "note: no PostgreSQL answers at 127.0.0.1:5432; only SQLite will be measured" >&2
fi
cargo bench --quiet -p taskdaemon-store --bench claims

# Procrastinate's venv, when made as the header says, else python3.
if [[ -z "${PYTHON:-}" && -x target/procrastinate-venv/bin/python ]]; then
  PYTHON=target/procrastinate-venv/bin/python
fi
PYTHON="${PYTHON:-python3}"
if "$PYTHON" -c 'import procrastinate, psycopg' 2>/dev/null; then
  "$PYTHON" -W ignore bench/procrastinate_claims.py 2>&1 | grep -v 'App is instantiated in the main'
else
  echo "note: Procrastinate not measured ($PYTHON cannot import procrastinate; pip install procrastinate)" >&2
fi

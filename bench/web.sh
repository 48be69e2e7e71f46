#!/usr/bin/env bash
# Benchmark for issue 13: the web API and live stream of the real daemon
# over loopback, with 10,000 tasks in the store.
#
#   bash bench/web.sh
#
# Prints API p50/p95/p99 for list and show under 50 concurrent keep-alive
# clients, WebSocket latency from commit to client (p50/p99), the
# dashboard's first load in headless Chromium, and the daemon's RSS growth
# with 100 open WebSockets. Knobs (environment): TASKS
# (10000), CLIENTS (50), REQUESTS (200 per client), WS_SAMPLES (200),
# SOCKETS (100). Figures only: targets (API p95 < 5 ms, update p99 < 10 ms,
# RSS growth < 10 MiB) are printed beside them and never fail the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p taskdaemon-cli
# The dashboard's first load runs in Debian's chromium through playwright-core
# when both are there (the bench says so when they are not).
if NODE_PATH=$(bash scripts/install-playwright.sh 2>/dev/null); then
  export NODE_PATH
fi
TASKDAEMON_BIN=$TARGET/release/taskdaemon cargo bench -q -p taskdaemon-web --bench web
echo "targets: API p95 < 5 ms, WebSocket p99 < 10 ms, RSS growth < 10 MiB"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Benchmark for issue 12: `taskdaemon hook session-start` latency on a store
# of 10,000 tasks (goal < 20 ms: it runs at every Claude Code session start),
# and the MCP tool-call round trip, p50/p99, over stdio as an agent runs it.
#
#   bash bench/mcp.sh
#
# Knobs (environment): RECORDS (ended processes seeded, 10000), RUNNING (live
# sleeps beside them, 5), RUNS (hook timings, 200), CALLS (MCP calls per
# tool, 1000). Figures only: the goal is printed beside them, never enforced.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${RECORDS:-10000}
RUNNING=${RUNNING:-5}
RUNS=${RUNS:-200}
CALLS=${CALLS:-1000}
TMP=$(mktemp -d -t taskdaemon-mcp-bench.XXXXXX)
TD=$PWD/target/release/taskdaemon
WS=$TMP/ws

log() { printf '[bench] %s\n' "$*" >&2; }

# Ends the workspace's supervised process groups and its daemon, by pid only.
cleanup() {
  set +e
  if [[ -d $WS/.taskdaemon ]]; then
    for pgid in $("$TD" --workspace "$WS" ps --json 2>/dev/null | grep -o '"pgid": *[0-9]*' | grep -o '[0-9]*$'); do
      kill -TERM -- "-$pgid" 2>/dev/null
    done
    sleep 0.5
    "$TD" --workspace "$WS" stop >/dev/null 2>&1
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

bench_exe() {
  cargo bench -p taskdaemon-cli --bench "$1" --no-run --message-format=json 2>/dev/null |
    grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

log "building (cargo build --release, bench helpers)"
cargo build --release --quiet
TIMEIT=$(bench_exe seed_and_measure)
ROUND_TRIP=$(bench_exe mcp_round_trip)
[[ -x $TIMEIT && -x $ROUND_TRIP ]] || { log "bench helpers did not build"; exit 1; }

log "seeding $RECORDS ended processes, $RUNNING running, tracked work and decisions"
mkdir -p "$WS"
"$TD" --workspace "$WS" init >/dev/null
"$TIMEIT" seed --db "$WS/.taskdaemon/state.db" --count "$RECORDS"
"$TD" --workspace "$WS" start >/dev/null
for _ in $(seq "$RUNNING"); do
  "$TD" --workspace "$WS" spawn --tool claude -- sh -c 'echo serving; sleep 3600' >/dev/null 2>&1
done
for i in $(seq 20); do
  "$TD" --workspace "$WS" task add "tracked task $i" --session bench >/dev/null 2>&1
done
"$TD" --workspace "$WS" task start CLAUDE-1 --session bench >/dev/null 2>&1 || true
"$TD" --workspace "$WS" remember "bench: decisions show in the summary" --kind decision >/dev/null

printf '{"session_id":"bench","hook_event_name":"SessionStart","source":"startup","cwd":"%s"}' "$WS" >"$TMP/startup.json"
printf '{"session_id":"bench","hook_event_name":"SessionStart","source":"compact","cwd":"%s"}' "$WS" >"$TMP/compact.json"
printf '{"session_id":"bench","hook_event_name":"PreCompact","trigger":"auto","cwd":"%s"}' "$WS" >"$TMP/precompact.json"

hook_time() { # EVENT INPUT -> "median p95 mean min"
  (cd "$WS" && "$TIMEIT" timeit --runs "$RUNS" --warmup 5 --stdin "$2" -- "$TD" hook "$1")
}

echo "== hooks: store of $RECORDS ended + $RUNNING running processes, 20 tracked tasks, $RUNS runs (ms) =="
printf '%-44s %8s %8s %8s %8s   %s\n' "command" median p95 mean min goal
row() { printf '%-44s %8s %8s %8s %8s   %s\n' "$1" $2 "$3"; }
row "hook session-start (startup)" "$(hook_time session-start "$TMP/startup.json")" "< 20 ms"
row "hook session-start (compact)" "$(hook_time session-start "$TMP/compact.json")" "< 20 ms"
row "hook pre-compact" "$(hook_time pre-compact "$TMP/precompact.json")" ""
row "rehydrate --peek (for reference)" "$("$TIMEIT" timeit --runs "$RUNS" --warmup 5 -- "$TD" --workspace "$WS" rehydrate --peek)" ""

echo
echo "== MCP tool calls over stdio, $CALLS calls each (ms, request written to response read) =="
printf '%-44s %8s %8s %8s %8s\n' "tool" p50 p99 mean min
call_row() { printf '%-44s %8s %8s %8s %8s\n' "$1" $("$ROUND_TRIP" --exe "$TD" --workspace "$WS" --runs "$CALLS" --tool "$2" --args "$3"); }
call_row "task_ready" task_ready '{"limit":5}'
call_row "ps (running processes)" ps '{}'
call_row "rehydrate (peek)" rehydrate '{"peek":true}'
call_row "remember (a write)" remember '{"text":"bench note","kind":"note","key":"bench"}'
echo
echo "notes: load average $(cut -d' ' -f1-3 /proc/loadavg); release build; each hook run is a new process."

#!/usr/bin/env bash
# Benchmark for issue 4: folder-queue throughput and pickup latency.
#
#   bash bench/queue.sh            (bench/run.sh runs it too)
#
# Prints tasks/s through one queue with the command executor running `true`,
# the latency from a document appearing in pending/ to its process start
# (the started_at the shim records), and the daemon's RSS with 20 queues
# watched. Knobs: TASKS (500), LATENCY_RUNS (30), DEBOUNCE_MS (0; the
# default config uses 500 ms, which adds to latency by design), TD (binary).
# Figures only: targets are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TASKS=${TASKS:-500}
LATENCY_RUNS=${LATENCY_RUNS:-30}
DEBOUNCE_MS=${DEBOUNCE_MS:-0}
TD=${TD:-$PWD/target/release/taskdaemon}
[[ -x $TD ]] || cargo build --release --quiet
TMP=$(mktemp -d -t taskdaemon-qbench.XXXXXX)
WS=$TMP/ws
cleanup() {
  "$TD" --workspace "$WS" stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$WS"
"$TD" --workspace "$WS" init >/dev/null
sed -i "s/^watch_debounce_ms = .*/watch_debounce_ms = $DEBOUNCE_MS/" "$WS/.taskdaemon/config.toml"
PENDING=$WS/tasks/ad-hoc/pending
RESULTS=$WS/tasks/ad-hoc/results
DOC=$'---\nexecutor: command\ncommand: "true"\n---\n'

now_ms() { date +%s%3N; }
count_results() { find "$RESULTS" -name '*.json' | wc -l; }

# ---- throughput: TASKS documents dropped at once (written aside, renamed in)
for i in $(seq -w 1 "$TASKS"); do printf '%s' "$DOC" >"$TMP/task-$i.md"; done
"$TD" --workspace "$WS" start >/dev/null
DPID=$("$TD" --workspace "$WS" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
# CPU of the daemon plus its reaped children (shims, and through them the
# executors), in clock ticks: a per-task cost that other load on the machine
# does not change, unlike tasks/s.
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$DPID/stat"; }
cpu0=$(cpu_ticks)
start=$(now_ms)
mv "$TMP"/task-*.md "$PENDING"/
while (($(count_results) < TASKS)); do sleep 0.05; done
elapsed=$(($(now_ms) - start))
sleep 0.5 # let the last shims be reaped
CPU_MS=$(awk -v t="$(($(cpu_ticks) - cpu0))" -v hz="$(getconf CLK_TCK)" -v n="$TASKS" 'BEGIN {printf "%.2f", t * 1000 / hz / n}')
TPS=$(awk -v n="$TASKS" -v ms="$elapsed" 'BEGIN {printf "%.1f", n * 1000 / ms}')

# ---- pickup latency: one document at a time into an idle queue
LAT=()
for i in $(seq 1 "$LATENCY_RUNS"); do
  printf '%s' "$DOC" >"$TMP/lat.md"
  dropped=$(date +%s%6N)
  mv "$TMP/lat.md" "$PENDING/task-lat-$i.md"
  until [[ -f $RESULTS/task-lat-$i.json ]]; do sleep 0.01; done
  started=$(grep -o '"started_at": *"[^"]*"' "$RESULTS/task-lat-$i.json" | cut -d'"' -f4)
  started_us=$(($(date -d "$started" +%s%6N)))
  LAT+=("$(awk -v a="$started_us" -v b="$dropped" 'BEGIN {printf "%.2f", (a - b) / 1000}')")
done
LAT_SORTED=$(printf '%s\n' "${LAT[@]}" | sort -n)
LAT_MEDIAN=$(awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}' <<<"$LAT_SORTED")
LAT_P95=$(awk '{a[NR]=$1} END {i=int(NR * 0.95); if (i < 1) i = 1; print a[i]}' <<<"$LAT_SORTED")

# ---- memory with 20 queues watched
for q in $(seq -w 1 20); do "$TD" --workspace "$WS" queues add "$WS/q/$q" --id "q$q" >/dev/null; done
sleep 2
PID=$("$TD" --workspace "$WS" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
WORKERS=$("$TD" --workspace "$WS" workers list --json | grep -c '"queue"')

check() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {ok = (op == ">=") ? (v >= t) : (v < t); print ok ? "ok" : "MISS"}'; }
echo
echo "== taskdaemon folder queue ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), debounce ${DEBOUNCE_MS} ms) =="
printf '%-52s %12s   %-10s %s\n' "figure" "value" "target" "check"
printf '%-52s %12s   %-10s %s\n' "tasks/s, one queue, command executor running true" "$TPS" ">= 200" "$(check "$TPS" ">=" 200)"
printf '%-52s %12s   %-10s %s\n' "  ($TASKS tasks in ${elapsed} ms)" "" "" ""
printf '%-52s %12s\n' "  CPU per task, daemon + shim + executor (ms)" "$CPU_MS"
printf '%-52s %12s   %-10s %s\n' "file to process start, median of $LATENCY_RUNS (ms)" "$LAT_MEDIAN" "< 50" "$(check "$LAT_MEDIAN" "<" 50)"
printf '%-52s %12s\n' "file to process start, p95 (ms)" "$LAT_P95"
printf '%-52s %12s\n' "daemon RSS with $WORKERS queues watched (MiB)" "$(awk -v kb="$RSS_KB" 'BEGIN {printf "%.1f", kb / 1024}')"

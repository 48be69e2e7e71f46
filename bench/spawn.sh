#!/usr/bin/env bash
# Benchmark for issue 17's spawn path, beside pueue in the same invocation.
#
#   bash bench/spawn.sh
#
# Prints, for taskdaemon and pueue running the same `true` commands:
#   - tasks/s through one queue (a folder queue; pueue with parallel 1),
#   - tasks/s through one queue with concurrency QUEUES (pueue with
#     parallel QUEUES in one group),
#   - tasks/s across QUEUES queues (QUEUES folder queues; pueue with
#     parallel QUEUES in one group),
#   - the time of SPAWNS sequential `taskdaemon spawn -- true` calls
#     (against as many `pueue add -- true`, which only enqueues),
# and the ratios. Figures only: targets are printed beside them and never
# fail the run. Knobs: TASKS (500), QUEUES (4), SPAWNS (500), TD (binary),
# PUEUE=0 to skip pueue (installed with `cargo install pueue` when missing
# and INSTALL_PEERS=1).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TASKS=${TASKS:-500}
QUEUES=${QUEUES:-4}
SPAWNS=${SPAWNS:-500}
PUEUE=${PUEUE:-1}
TD=${TD:-$PWD/target/release/taskdaemon}
[[ -x $TD ]] || cargo build --release --quiet -p taskdaemon-cli
if [[ $PUEUE == 1 ]] && ! command -v pueued >/dev/null; then
  if [[ ${INSTALL_PEERS:-0} == 1 ]]; then
    cargo install pueue --locked --quiet
  else
    echo "pueue is not installed (cargo install pueue, or INSTALL_PEERS=1); skipping it" >&2
    PUEUE=0
  fi
fi
TMP=$(mktemp -d -t taskdaemon-sbench.XXXXXX)
WS=$TMP/ws
PUEUED_PID=""
cleanup() {
  "$TD" --workspace "$WS" stop >/dev/null 2>&1 || true
  if [[ -n $PUEUED_PID ]]; then
    pueue_env pueue reset --force >/dev/null 2>&1 || true
    kill "$PUEUED_PID" 2>/dev/null || true
    # It writes its state as it goes: gone before its folder is removed.
    wait "$PUEUED_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.1f", n * 1000 / (ms > 0 ? ms : 1)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-"}'; }
check() { awk -v v="$1" -v t="$2" 'BEGIN {print (v >= t) ? "ok" : "MISS"}'; }

# ------------------------------------------------------------ taskdaemon
mkdir -p "$WS"
"$TD" --workspace "$WS" init >/dev/null
sed -i "s/^watch_debounce_ms = .*/watch_debounce_ms = 0/" "$WS/.taskdaemon/config.toml"
DOC=$'---\nexecutor: command\ncommand: "true"\n---\n'
"$TD" --workspace "$WS" start >/dev/null
for q in $(seq 1 "$QUEUES"); do
  "$TD" --workspace "$WS" queues add "$WS/q/$q" --id "q$q" >/dev/null
done
"$TD" --workspace "$WS" queues add "$WS/q/wide" --id wide --concurrency "$QUEUES" >/dev/null
sleep 1

# Drops COUNT documents named task-PREFIX-N into each of the given queue folders
# at once (written aside, renamed in), and waits for all their results.
run_queues() { # count prefix folder...
  local count=$1 prefix=$2
  shift 2
  local want=$((count * $#)) i dir
  for dir in "$@"; do
    mkdir -p "$TMP/stage/$(basename "$dir")"
    for i in $(seq -w 1 "$count"); do
      printf '%s' "$DOC" >"$TMP/stage/$(basename "$dir")/task-$prefix-$i.md"
    done
  done
  local start
  start=$(now_ms)
  # A worker may run a document and move it on before `mv` is done with
  # the whole list, and `mv` then complains about it; the wait counts results.
  for dir in "$@"; do mv "$TMP/stage/$(basename "$dir")"/*.md "$dir/pending/" 2>/dev/null || true; done
  local done_count=0
  while ((done_count < want)); do
    sleep 0.02
    done_count=0
    for dir in "$@"; do
      done_count=$((done_count + $(find "$dir/results" -name "task-$prefix-*.json" | wc -l)))
    done
  done
  echo $(($(now_ms) - start))
}

# CPU of the daemon plus its reaped children, and of its live children
# (standby shims) plus theirs: the shims, and through them the commands.
# In clock ticks: a per-task cost that other load on the machine changes
# less than it changes tasks/s.
DPID=$("$TD" --workspace "$WS" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
cpu_ticks() {
  local pid total=0
  for pid in "$DPID" $(ps --ppid "$DPID" -o pid=); do
    total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
cpu0=$(cpu_ticks)
TD_ONE_MS=$(run_queues "$TASKS" one "$WS/tasks/ad-hoc")
sleep 0.5 # let the last shims be reaped
TD_CPU_MS=$(awk -v t="$(($(cpu_ticks) - cpu0))" -v hz="$(getconf CLK_TCK)" -v n="$TASKS" 'BEGIN {printf "%.2f", t * 1000 / hz / n}')
TD_ONE=$(rate "$TASKS" "$TD_ONE_MS")
TD_WIDE=$(rate "$TASKS" "$(run_queues "$TASKS" wide "$WS/q/wide")")
PER_QUEUE=$((TASKS / QUEUES))
QDIRS=()
for q in $(seq 1 "$QUEUES"); do QDIRS+=("$WS/q/$q"); done
TD_MANY_MS=$(run_queues "$PER_QUEUE" many "${QDIRS[@]}")
TD_MANY=$(rate "$((PER_QUEUE * QUEUES))" "$TD_MANY_MS")

start=$(now_ms)
for _ in $(seq 1 "$SPAWNS"); do "$TD" --workspace "$WS" spawn -- true >/dev/null 2>&1; done
TD_SPAWN_MS=$(($(now_ms) - start))
"$TD" --workspace "$WS" stop >/dev/null

# ------------------------------------------------------------ pueue
pueue_env() {
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run "$@"
}
pueue_done() { pueue_env pueue status --json | grep -o '"Done"' | wc -l; }
# Adds COUNT `true` tasks to a paused default group, then times from
# `pueue start` to every task done.
pueue_run() { # count parallel
  pueue_env pueue reset --force >/dev/null 2>&1 || true
  sleep 0.5
  pueue_env pueue parallel "$2" >/dev/null
  pueue_env pueue pause >/dev/null
  local i start
  for i in $(seq 1 "$1"); do pueue_env pueue add -- true >/dev/null; done
  start=$(now_ms)
  pueue_env pueue start >/dev/null
  while (($(pueue_done) < $1)); do sleep 0.02; done
  echo $(($(now_ms) - start))
}

PQ_ONE="" PQ_MANY="" PQ_ADD_MS=""
if [[ $PUEUE == 1 ]]; then
  mkdir -p "$TMP/pueue-home/config" "$TMP/pueue-home/data" "$TMP/pueue-home/run"
  chmod 700 "$TMP/pueue-home/run"
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run pueued >"$TMP/pueued.log" 2>&1 &
  PUEUED_PID=$!
  for _ in $(seq 1 100); do pueue_env pueue status >/dev/null 2>&1 && break; sleep 0.1; done
  # `pueue add` into a paused group: the submission alone.
  pueue_env pueue pause >/dev/null
  start=$(now_ms)
  for _ in $(seq 1 "$SPAWNS"); do pueue_env pueue add -- true >/dev/null; done
  PQ_ADD_MS=$(($(now_ms) - start))
  PQ_ONE=$(rate "$TASKS" "$(pueue_run "$TASKS" 1)")
  PQ_MANY=$(rate "$((PER_QUEUE * QUEUES))" "$(pueue_run "$((PER_QUEUE * QUEUES))" "$QUEUES")")
fi

echo
echo "== spawn path ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-44s %12s %12s %9s   %-8s %s\n' "figure" "taskdaemon" "pueue" "td/pueue" "target" "check"
printf '%-44s %12s %12s %9s   %-8s %s\n' "tasks/s, one queue (true; pueue parallel 1)" \
  "$TD_ONE" "${PQ_ONE:--}" "$(ratio "$TD_ONE" "${PQ_ONE:-0}")" ">= 500" "$(check "$TD_ONE" 500)"
printf '%-44s %12s\n' "  CPU per task, daemon + shim + command (ms)" "$TD_CPU_MS"
printf '%-44s %12s %12s %9s   %-8s %s\n' "tasks/s, one queue, concurrency $QUEUES (parallel $QUEUES)" \
  "$TD_WIDE" "${PQ_MANY:--}" "$(ratio "$TD_WIDE" "${PQ_MANY:-0}")" ">= 500" "$(check "$TD_WIDE" 500)"
printf '%-44s %12s %12s %9s   %-8s %s\n' "tasks/s, $QUEUES queues (pueue parallel $QUEUES)" \
  "$TD_MANY" "${PQ_MANY:--}" "$(ratio "$TD_MANY" "${PQ_MANY:-0}")" ">= 1000" "$(check "$TD_MANY" 1000)"
printf '%-44s %12s %12s %9s\n' "$SPAWNS spawn calls, s (pueue: add, paused)" \
  "$(awk -v ms="$TD_SPAWN_MS" 'BEGIN {printf "%.2f", ms / 1000}')" \
  "$(awk -v ms="${PQ_ADD_MS:-0}" 'BEGIN {if (ms > 0) printf "%.2f", ms / 1000; else print "-"}')" \
  "$(ratio "${PQ_ADD_MS:-0}" "$TD_SPAWN_MS")"
echo "  (td/pueue for spawn is pueue's time over ours: above 1 means faster;"
echo "   first-wave baselines: 89 tasks/s one queue, 21 s for 500 spawn calls)"

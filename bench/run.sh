#!/usr/bin/env bash
# Benchmark for issue 2: CLI latency, daemon memory and exit detection of
# taskdaemon, next to pueue, pm2 and supervisord, in one invocation.
#
#   bash bench/run.sh
#
# Knobs (environment): RUNS (CLI timings, 200), PEER_RUNS (peer CLI timings,
# 100), RECORDS (ended records seeded, 10000), RUNNING (live sleeps beside
# them, 20), SUPERVISED (sleeps for the memory figure, 500), EXIT_RUNS (20),
# CPU_WINDOW (seconds each idle-CPU figure is measured over, 30),
# PEERS ("pueue pm2 supervisor"; empty for none), INSTALL_PEERS (1: install a
# missing peer with cargo/npm/pip; 0: skip it).
#
# Figures only: targets are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-200}
PEER_RUNS=${PEER_RUNS:-100}
RECORDS=${RECORDS:-10000}
RUNNING=${RUNNING:-20}
SUPERVISED=${SUPERVISED:-500}
EXIT_RUNS=${EXIT_RUNS:-20}
CPU_WINDOW=${CPU_WINDOW:-30}
EXIT_SLEEP_MS=${EXIT_SLEEP_MS:-300}
PEERS=${PEERS-pueue pm2 supervisor}
INSTALL_PEERS=${INSTALL_PEERS:-1}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d -t taskdaemon-bench.XXXXXX)
TD=$ROOT/target/release/taskdaemon
WS_BIG=$TMP/ws-records
WS_MEM=$TMP/ws-memory
PUEUED_PID=""
WORKER_PID=""
SUPERVISORD_PID=""
PM2_HOME_DIR=""
INSTALL_PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }

# ------------------------------------------------------------------ cleanup

# Ends the supervised process groups of a workspace, then its daemon; by pid only.
# The daemon stays up until the shims have recorded the exits and left, so
# that it reaps them.
stop_workspace() {
  local ws=$1
  [[ -d $ws/.taskdaemon ]] || return 0
  local json pgids shims
  json=$("$TD" --workspace "$ws" ps --json 2>/dev/null || true)
  pgids=$(grep -o '"pgid": *[0-9]*' <<<"$json" | grep -o '[0-9]*$' || true)
  shims=$(grep -o '"shim_pid": *[0-9]*' <<<"$json" | grep -o '[0-9]*$' || true)
  for pgid in $pgids; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for pid in $shims; do
      if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        alive=1
        break
      fi
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in $shims; do kill -KILL "$pid" 2>/dev/null || true; done
  "$TD" --workspace "$ws" stop >/dev/null 2>&1 || true
}

cleanup() {
  local status=$?
  set +e
  for pid in "${INSTALL_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [[ -n $WORKER_PID ]] && kill "$WORKER_PID" 2>/dev/null
  stop_workspace "$WS_BIG"
  stop_workspace "$WS_MEM"
  if [[ -n $PUEUED_PID ]]; then
    pueue_env pueue reset --force >/dev/null 2>&1
    kill "$PUEUED_PID" 2>/dev/null
    wait "$PUEUED_PID" 2>/dev/null
  fi
  if [[ -n $PM2_HOME_DIR ]]; then
    PM2_HOME=$PM2_HOME_DIR pm2 kill >/dev/null 2>&1
  fi
  if [[ -n $SUPERVISORD_PID ]]; then
    kill "$SUPERVISORD_PID" 2>/dev/null
    wait "$SUPERVISORD_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers

# Prints "median p95 mean min" in ms of RUNS executions of a command.
timeit() {
  local runs=$1
  shift
  "$HELPER" timeit --runs "$runs" --warmup 5 -- "$@"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b > 0) printf "%.3gx", a / b; else print "n/a"}'; }
check() { # value op target -> ok / MISS
  awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
    ok = (op == "<=") ? (v <= t) : (v < t); print ok ? "ok" : "MISS" }'
}
field() { awk -v n="$2" '{print $n}' <<<"$1"; }

# CPU time (utime + stime, clock ticks) the given pids have used, summed.
cpu_ticks() {
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# ms of CPU per minute, from two cpu_ticks readings CPU_WINDOW seconds apart,
# divided over N processes (default 1). Resolution: one tick per window.
cpu_per_min() { # before after [count]
  awk -v d="$(($2 - $1))" -v hz="$(getconf CLK_TCK)" -v w="$CPU_WINDOW" -v n="${3:-1}" \
    'BEGIN {printf "%.1f", d * 1000 / hz * 60 / w / (n > 0 ? n : 1)}'
}
# ms of CPU per minute the given pids use together while left alone.
idle_cpu() {
  local before
  before=$(cpu_ticks "$@")
  sleep "$CPU_WINDOW"
  cpu_per_min "$before" "$(cpu_ticks "$@")"
}
line_of() { grep "^$2 " <<<"$1" | cut -d' ' -f2- || true; }

wait_for() { # seconds, command...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

daemon_pid() {
  "$TD" --workspace "$1" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'
}

# Resolves a command past pyenv's shell shims, which would add ~30 ms per call.
real_command() {
  local path
  if command -v pyenv >/dev/null 2>&1 && path=$(pyenv which "$1" 2>/dev/null); then
    echo "$path"
  else
    command -v "$1"
  fi
}

peer_wanted() { [[ " $PEERS " == *" $1 "* ]]; }

# ------------------------------------------------------------------ peers install (background, early)

start_install() { # name, check command, install command...
  local name=$1 probe=$2
  shift 2
  if ! peer_wanted "$name" || command -v "$probe" >/dev/null 2>&1; then return 0; fi
  if [[ $INSTALL_PEERS != 1 ]]; then return 0; fi
  log "installing $name in the background ($*)"
  ("$@" >"$TMP/install-$name.log" 2>&1) &
  INSTALL_PIDS+=("$!")
}
start_install pueue pueued cargo install pueue --locked
start_install pm2 pm2 npm install -g pm2
start_install supervisor supervisord python3 -m pip install --quiet supervisor

# ------------------------------------------------------------------ build

log "building (cargo build --release, bench helper)"
cargo build --release --quiet
HELPER=$(cargo bench -p taskdaemon-cli --bench seed_and_measure --no-run --message-format=json 2>/dev/null |
  grep '"name":"seed_and_measure"' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[[ -x $HELPER ]] || {
  echo "cannot build the bench helper" >&2
  exit 1
}

# ------------------------------------------------------------------ 1. CLI latency on a big store

log "seeding $RECORDS ended processes"
mkdir -p "$WS_BIG"
"$TD" --workspace "$WS_BIG" init >/dev/null
"$HELPER" seed --db "$WS_BIG/.taskdaemon/state.db" --count "$RECORDS"
"$TD" --workspace "$WS_BIG" start >/dev/null
log "spawning $RUNNING running sleeps beside them"
for _ in $(seq "$RUNNING"); do
  "$TD" --workspace "$WS_BIG" spawn --tool claude -- sleep 3600 >/dev/null 2>&1
done
sleep 1

log "timing status --json and rehydrate --peek ($RUNS runs each)"
T_STATUS=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" status --json)
T_REHYDRATE=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" rehydrate --peek)
T_PS=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" ps --json)
HF_STATUS=""
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$TMP/hf.json" \
    "$TD --workspace $WS_BIG status --json" >/dev/null 2>&1 &&
    HF_STATUS=$(awk -F': *' '/"median"/ {gsub(/,/, "", $2); printf "%.2f", $2 * 1000; exit}' "$TMP/hf.json")
fi

# ------------------------------------------------------------------ 3. exit detection (same big store)

log "exit detection ($EXIT_RUNS runs of sleep ${EXIT_SLEEP_MS}ms)"
EXIT_TD=$("$HELPER" exit-latency --exe "$TD" --workspace "$WS_BIG" --runs "$EXIT_RUNS" --sleep-ms "$EXIT_SLEEP_MS")
BIG_DAEMON_PID=$(daemon_pid "$WS_BIG")
BIG_DAEMON_RSS=$(rss_kb "$BIG_DAEMON_PID")
stop_workspace "$WS_BIG"

# ------------------------------------------------------------------ 2. memory

log "daemon memory: idle, then with $SUPERVISED supervised sleeps"
mkdir -p "$WS_MEM"
"$TD" --workspace "$WS_MEM" init >/dev/null
"$TD" --workspace "$WS_MEM" start >/dev/null
sleep 2
MEM_PID=$(daemon_pid "$WS_MEM")
IDLE_RSS=$(rss_kb "$MEM_PID")
IDLE_MEM=$("$HELPER" mem "$MEM_PID")
IDLE_THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$MEM_PID/status")
# An idle daemon (the ad-hoc queue watched, nothing running) and an idle
# claim worker (SQLite, single host) over the same window.
"$TD" --workspace "$WS_MEM" worker --queue bench-idle >"$TMP/worker.log" 2>&1 &
WORKER_PID=$!
sleep 2
log "idle CPU: daemon and claim worker over ${CPU_WINDOW}s"
cpu_daemon_before=$(cpu_ticks "$MEM_PID")
cpu_worker_before=$(cpu_ticks "$WORKER_PID")
sleep "$CPU_WINDOW"
CPU_IDLE_DAEMON=$(cpu_per_min "$cpu_daemon_before" "$(cpu_ticks "$MEM_PID")")
CPU_IDLE_WORKER=$(cpu_per_min "$cpu_worker_before" "$(cpu_ticks "$WORKER_PID")")
kill -TERM "$WORKER_PID" 2>/dev/null || true
wait "$WORKER_PID" 2>/dev/null || true
WORKER_PID=""
spawn_started=$SECONDS
SPAWN_FAILED=0
for _ in $(seq "$SUPERVISED"); do
  "$TD" --workspace "$WS_MEM" spawn -- sleep 3600 >/dev/null 2>"$TMP/spawn.err" ||
    SPAWN_FAILED=$((SPAWN_FAILED + 1))
done
((SPAWN_FAILED == 0)) || log "$SPAWN_FAILED spawns failed; last error: $(cat "$TMP/spawn.err")"
SPAWN_SECONDS=$((SECONDS - spawn_started))
sleep 3
LOADED_RSS=$(rss_kb "$MEM_PID")
LOADED_THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$MEM_PID/status")
PS_JSON=$("$TD" --workspace "$WS_MEM" ps --json)
SHIM_PIDS=$(grep -o '"shim_pid": *[0-9]*' <<<"$PS_JSON" | grep -o '[0-9]*$' | tr '\n' ' ')
# shellcheck disable=SC2086
SHIM_MEM=$("$HELPER" mem $SHIM_PIDS)
SHIM_COUNT=$(field "$SHIM_MEM" 4)
log "CPU with $SUPERVISED quiet processes: daemon (watchdog sampling) and shims over ${CPU_WINDOW}s"
# shellcheck disable=SC2086
cpu_shims_before=$(cpu_ticks $SHIM_PIDS)
cpu_daemon_before=$(cpu_ticks "$MEM_PID")
sleep "$CPU_WINDOW"
CPU_LOADED_DAEMON=$(cpu_per_min "$cpu_daemon_before" "$(cpu_ticks "$MEM_PID")")
# shellcheck disable=SC2086
CPU_SHIMS=$(cpu_per_min "$cpu_shims_before" "$(cpu_ticks $SHIM_PIDS)")
# shellcheck disable=SC2086
CPU_PER_SHIM=$(cpu_per_min "$cpu_shims_before" "$(cpu_ticks $SHIM_PIDS)" "$SHIM_COUNT")
T_STATUS_LOADED=$(timeit 50 "$TD" --workspace "$WS_MEM" status --json)
stop_workspace "$WS_MEM"

# ------------------------------------------------------------------ 4. peers

for pid in "${INSTALL_PIDS[@]}"; do wait "$pid" || true; done
INSTALL_PIDS=()
declare -A PEER_CLI PEER_RSS PEER_EXIT PEER_NOTE PEER_CPU

pueue_env() {
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run "$@"
}

bench_pueue() {
  mkdir -p "$TMP/pueue-home/config" "$TMP/pueue-home/data" "$TMP/pueue-home/run"
  chmod 700 "$TMP/pueue-home/run"
  # A plain command (not a function) so that $! is pueued itself.
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run pueued >"$TMP/pueued.log" 2>&1 &
  PUEUED_PID=$!
  sleep 2
  local before_client
  before_client=$(rss_kb "$PUEUED_PID")
  wait_for 20 pueue_env pueue status || {
    PEER_NOTE[pueue]="pueued did not start (see its log)"
    return
  }
  sleep 2
  PEER_RSS[pueue]=$(rss_kb "$PUEUED_PID")
  PEER_CPU[pueue]=$(idle_cpu "$PUEUED_PID")
  PEER_NOTE[pueue]="pueued RSS was $(mib "$before_client") MiB before its first client; the table shows it after"
  PEER_CLI[pueue]=$(pueue_env "$HELPER" timeit --runs "$PEER_RUNS" --warmup 5 -- pueue status)
  PEER_EXIT[pueue]=$(pueue_env "$HELPER" pueue-exit --runs "$EXIT_RUNS" --sleep-ms "$EXIT_SLEEP_MS")
  pueue_env pueue reset --force >/dev/null 2>&1 || true
  kill "$PUEUED_PID" 2>/dev/null || true
  wait "$PUEUED_PID" 2>/dev/null || true
  PUEUED_PID=""
}

bench_pm2() {
  PM2_HOME_DIR=$TMP/pm2-home
  mkdir -p "$PM2_HOME_DIR"
  PM2_HOME=$PM2_HOME_DIR pm2 ping >/dev/null 2>&1 || {
    PEER_NOTE[pm2]="pm2 daemon did not start"
    return
  }
  sleep 2
  PEER_RSS[pm2]=$(rss_kb "$(cat "$PM2_HOME_DIR/pm2.pid")")
  PEER_CPU[pm2]=$(idle_cpu "$(cat "$PM2_HOME_DIR/pm2.pid")")
  PEER_CLI[pm2]=$(PM2_HOME=$PM2_HOME_DIR "$HELPER" timeit --runs "$PEER_RUNS" --warmup 5 -- pm2 jlist)
  mkdir -p "$TMP/pm2-markers"
  PEER_EXIT[pm2]=$(PM2_HOME=$PM2_HOME_DIR NODE_PATH=$(npm root -g) \
    node "$ROOT/bench/pm2_exit.js" "$EXIT_RUNS" "$EXIT_SLEEP_MS" "$TMP/pm2-markers") ||
    PEER_NOTE[pm2]="exit detection failed"
  PM2_HOME=$PM2_HOME_DIR pm2 kill >/dev/null 2>&1 || true
  PM2_HOME_DIR=""
}

bench_supervisor() {
  local supd supc conf=$TMP/supervisor/supervisord.conf
  supd=$(real_command supervisord)
  supc=$(real_command supervisorctl)
  mkdir -p "$TMP/supervisor"
  cat >"$conf" <<EOF
[unix_http_server]
file=$TMP/supervisor/supervisor.sock
[supervisord]
logfile=$TMP/supervisor/supervisord.log
pidfile=$TMP/supervisor/supervisord.pid
nodaemon=true
user=root
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$TMP/supervisor/supervisor.sock
[program:exitbench]
command=/bin/sh -c "sleep $(awk -v ms="$EXIT_SLEEP_MS" 'BEGIN {print ms / 1000}'); exec date +%%s%%N > $TMP/supervisor/exit-marker"
autostart=false
autorestart=false
startsecs=0
EOF
  "$supd" -c "$conf" >"$TMP/supervisor/stdout.log" 2>&1 &
  SUPERVISORD_PID=$!
  wait_for 20 "$supc" -c "$conf" pid || {
    PEER_NOTE[supervisor]="supervisord did not start"
    return
  }
  sleep 2
  PEER_RSS[supervisor]=$(rss_kb "$SUPERVISORD_PID")
  PEER_CPU[supervisor]=$(idle_cpu "$SUPERVISORD_PID")
  # Exit code 3: the exit-bench program is defined but stopped.
  PEER_CLI[supervisor]=$("$HELPER" timeit --runs "$PEER_RUNS" --warmup 5 --ok-codes 0,3 -- "$supc" -c "$conf" status)
  local python
  python=$(head -n 1 "$supd" | sed 's/^#! *//')
  PEER_EXIT[supervisor]=$("$python" "$ROOT/bench/supervisor_exit.py" "$TMP/supervisor/supervisor.sock" \
    exitbench "$TMP/supervisor/exit-marker" "$EXIT_RUNS") || PEER_NOTE[supervisor]="exit detection failed"
  PEER_NOTE[supervisor]="${PEER_NOTE[supervisor]:-}${PEER_NOTE[supervisor]:+; }exit stamp not kept (supervisord records stop times in whole seconds)"
  kill "$SUPERVISORD_PID" 2>/dev/null || true
  wait "$SUPERVISORD_PID" 2>/dev/null || true
  SUPERVISORD_PID=""
}

for peer in $PEERS; do
  case $peer in
  pueue) probe=pueued ;;
  pm2) probe=pm2 ;;
  supervisor) probe=supervisord ;;
  *)
    log "unknown peer $peer"
    continue
    ;;
  esac
  if ! command -v "$probe" >/dev/null 2>&1; then
    PEER_NOTE[$peer]="NOT INSTALLED (install failed or INSTALL_PEERS=0; see $peer install log)"
    [[ -f $TMP/install-$peer.log ]] && tail -n 5 "$TMP/install-$peer.log" >&2
    continue
  fi
  log "peer: $peer"
  "bench_$peer" || PEER_NOTE[$peer]="benchmark failed"
done

# ------------------------------------------------------------------ report

row() { printf '%-46s %10s %10s   %-12s %s\n' "$@"; }
ms() { [[ -n $1 ]] && printf '%s ms' "$1" || printf 'n/a'; }

echo
echo "taskdaemon benchmark ($(uname -sr), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
echo "load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
echo
echo "== taskdaemon: CLI latency, store of $RECORDS ended + $RUNNING running processes, $RUNS runs =="
row "figure" "median" "p95" "target" "check"
row "status --json" "$(ms "$(field "$T_STATUS" 1)")" "$(ms "$(field "$T_STATUS" 2)")" "<= 5 ms" \
  "$(check "$(field "$T_STATUS" 1)" "<=" 5)"
row "rehydrate --peek" "$(ms "$(field "$T_REHYDRATE" 1)")" "$(ms "$(field "$T_REHYDRATE" 2)")" "<= 5 ms" \
  "$(check "$(field "$T_REHYDRATE" 1)" "<=" 5)"
row "ps --json (running only)" "$(ms "$(field "$T_PS" 1)")" "$(ms "$(field "$T_PS" 2)")" "" ""
[[ -n $HF_STATUS ]] && row "status --json, hyperfine -N cross-check" "$(ms "$HF_STATUS")" "" "" ""
row "status --json with $SUPERVISED running (50 runs)" "$(ms "$(field "$T_STATUS_LOADED" 1)")" \
  "$(ms "$(field "$T_STATUS_LOADED" 2)")" "" ""

echo
echo "== taskdaemon: memory (VmRSS; PSS/private from smaps_rollup) =="
printf '%-46s %10s   %s\n' "figure" "RSS" "detail"
printf '%-46s %10s   %s   target <= 5 MiB: %s\n' "daemon idle (empty workspace)" "$(mib "$IDLE_RSS") MiB" \
  "PSS $(mib "$(field "$IDLE_MEM" 2)") MiB, private $(mib "$(field "$IDLE_MEM" 3)") MiB, anon $(mib "$(field "$IDLE_MEM" 5)") MiB, $IDLE_THREADS threads" \
  "$(check "$(mib "$IDLE_RSS")" "<=" 5)"
printf '%-46s %10s   %s\n' "daemon, $RECORDS records + $RUNNING running" "$(mib "$BIG_DAEMON_RSS") MiB" \
  "after the exit-detection runs"
printf '%-46s %10s   %s\n' "daemon with $SUPERVISED supervised sleeps" "$(mib "$LOADED_RSS") MiB" \
  "$LOADED_THREADS threads; $SUPERVISED spawns took ${SPAWN_SECONDS}s ($SPAWN_FAILED failed)"
if ((SHIM_COUNT > 0)); then
  printf '%-46s %10s   %s\n' "shim, per process (sum RSS / $SHIM_COUNT)" \
    "$(mib $(($(field "$SHIM_MEM" 1) / SHIM_COUNT))) MiB" \
    "PSS $(mib $(($(field "$SHIM_MEM" 2) / SHIM_COUNT))) MiB, private $(mib $(($(field "$SHIM_MEM" 3) / SHIM_COUNT))) MiB, anon $(mib $(($(field "$SHIM_MEM" 5) / SHIM_COUNT))) MiB per shim; all shims: RSS $(mib "$(field "$SHIM_MEM" 1)") MiB, PSS $(mib "$(field "$SHIM_MEM" 2)") MiB"
fi

echo
echo "== CPU while idle: ms of CPU per minute (utime + stime over ${CPU_WINDOW}s; one tick = $(cpu_per_min 0 1) ms/min) =="
printf '%-46s %12s   %s\n' "process" "CPU ms/min" "target"
printf '%-46s %12s   %s\n' "taskdaemon daemon, idle (ad-hoc queue watched)" "$CPU_IDLE_DAEMON" \
  "<= 60 ms/min (0.1% of a core): $(check "$CPU_IDLE_DAEMON" "<=" 60)"
printf '%-46s %12s   %s\n' "taskdaemon worker, idle (SQLite claims)" "$CPU_IDLE_WORKER" \
  "<= 60 ms/min: $(check "$CPU_IDLE_WORKER" "<=" 60)"
printf '%-46s %12s   %s\n' "daemon with $SUPERVISED quiet processes" "$CPU_LOADED_DAEMON" \
  "the watchdog samples every group each [daemon] sample_interval"
printf '%-46s %12s   %s\n' "shims, all $SHIM_COUNT together" "$CPU_SHIMS" "per shim: $CPU_PER_SHIM ms/min"
for peer in $PEERS; do
  [[ -n ${PEER_CPU[$peer]:-} ]] && printf '%-46s %12s   %s\n' "$peer daemon, idle" "${PEER_CPU[$peer]}" \
    "taskdaemon idle / $peer idle: $(ratio "$CPU_IDLE_DAEMON" "${PEER_CPU[$peer]}")"
done

echo
echo "== taskdaemon: exit detection, ms after the command stamped its exit ($EXIT_RUNS runs) =="
row "figure" "median" "p95" "target" "check"
for name in recorded visible wait; do
  values=$(line_of "$EXIT_TD" "$name")
  case $name in
  recorded) label="finished_at stamped (ms resolution)" ;;
  visible) label="store shows it ended (0.5 ms polling)" ;;
  wait) label="taskdaemon wait returns" ;;
  esac
  row "$label" "$(ms "$(field "$values" 1)")" "$(ms "$(field "$values" 2)")" "< 50 ms" \
    "$(check "$(field "$values" 1)" "<" 50)"
done

echo
echo "== peers (CLI median over $PEER_RUNS runs on an idle daemon; exit detection over $EXIT_RUNS runs) =="
printf '%-12s %-20s %10s %10s %12s %14s %14s\n' "peer" "command" "CLI median" "CLI p95" "idle RSS" \
  "exit stamped" "exit visible"
printf '%-12s %-20s %10s %10s %12s %14s %14s\n' "taskdaemon" "status --json" \
  "$(ms "$(field "$T_STATUS" 1)")" "$(ms "$(field "$T_STATUS" 2)")" "$(mib "$IDLE_RSS") MiB" \
  "$(ms "$(field "$(line_of "$EXIT_TD" recorded)" 1)")" "$(ms "$(field "$(line_of "$EXIT_TD" visible)" 1)")"
declare -A PEER_CMD=([pueue]="pueue status" [pm2]="pm2 jlist" [supervisor]="supervisorctl status")
for peer in $PEERS; do
  [[ -n ${PEER_CMD[$peer]:-} ]] || continue
  if [[ -z ${PEER_CLI[$peer]:-} ]]; then
    printf '%-12s %s\n' "$peer" "${PEER_NOTE[$peer]:-not measured}"
    continue
  fi
  exit_line=${PEER_EXIT[$peer]:-}
  printf '%-12s %-20s %10s %10s %12s %14s %14s\n' "$peer" "${PEER_CMD[$peer]}" \
    "$(ms "$(field "${PEER_CLI[$peer]}" 1)")" "$(ms "$(field "${PEER_CLI[$peer]}" 2)")" \
    "$(mib "${PEER_RSS[$peer]:-0}") MiB" \
    "$(ms "$(field "$(line_of "$exit_line" recorded)" 1)")" \
    "$(ms "$(field "$(line_of "$exit_line" visible)" 1)")"
  [[ -n ${PEER_NOTE[$peer]:-} ]] && printf '%-12s note: %s\n' "" "${PEER_NOTE[$peer]}"
done

echo
echo "== ratios taskdaemon / peer (below 1 means taskdaemon is smaller or faster) =="
printf '%-12s %12s %12s %14s %14s\n' "peer" "CLI median" "idle RSS" "exit stamped" "exit visible"
for peer in $PEERS; do
  [[ -n ${PEER_CLI[$peer]:-} ]] || {
    printf '%-12s %s\n' "$peer" "${PEER_NOTE[$peer]:-not measured}"
    continue
  }
  exit_line=${PEER_EXIT[$peer]:-}
  stamped="n/a" visible="n/a"
  if [[ -n $exit_line ]]; then
    stamped=$(ratio "$(field "$(line_of "$EXIT_TD" recorded)" 1)" "$(field "$(line_of "$exit_line" recorded)" 1)")
    visible=$(ratio "$(field "$(line_of "$EXIT_TD" visible)" 1)" "$(field "$(line_of "$exit_line" visible)" 1)")
  fi
  printf '%-12s %12s %12s %14s %14s\n' "$peer" \
    "$(ratio "$(field "$T_STATUS" 1)" "$(field "${PEER_CLI[$peer]}" 1)")" \
    "$(ratio "$IDLE_RSS" "${PEER_RSS[$peer]:-0}")" "$stamped" "$visible"
done
echo
echo "notes: taskdaemon's CLI figures are on a store of $RECORDS records, the peers' on an empty daemon."
echo "       'exit stamped' is the end time the supervisor recorded; 'exit visible' is when a client saw it."

# ------------------------------------------------------------------ folder queues (issue 4)
TD=$TD bash "$ROOT/bench/queue.sh"

# ------------------------------------------------------------------ claims on a shared store (issue 6)
bash "$ROOT/bench/postgres.sh"

# ------------------------------------------------------------------ change feed (issue 11)
bash "$ROOT/bench/feed.sh"

# ------------------------------------------------------------------ git per spec (issue 15)
bash "$ROOT/bench/git.sh"

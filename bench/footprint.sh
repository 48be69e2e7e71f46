#!/usr/bin/env bash
# Footprint benchmark for issue 17: memory of waiting shims and of the daemon
# (idle and with SUPERVISED processes), `status --json` against `pueue
# status`, and `rehydrate` on a store of RECORDS records; beside pueue,
# pm2 and supervisord in the same run, with ratios to the figures issue 17
# started from.
#
#   bash bench/footprint.sh
#
# Knobs (environment): RUNS (CLI timings, 200), PEER_RUNS (100), RECORDS
# (10000), SUPERVISED (500), IDLE_STEADY (30: seconds between the two idle
# figures), PEERS ("pueue pm2 supervisor"), TD (the binary;
# default target/release/taskdaemon, built here with cargo when missing or
# BUILD=1). Needs hyperfine and python3.
#
# Figures only: targets are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-200}
PEER_RUNS=${PEER_RUNS:-100}
RECORDS=${RECORDS:-10000}
SUPERVISED=${SUPERVISED:-500}
PEERS=${PEERS-pueue pm2 supervisor}
TD=${TD:-$ROOT/target/release/taskdaemon}

# Issue 17's starting point (bench/run.sh on main before this work).
OLD_SHIM_PRIVATE=5.6 OLD_SHIM_PSS=5.7 OLD_DAEMON_LOADED=150 OLD_IDLE_RSS=12.1
OLD_IDLE_PRIVATE=10.2 OLD_STATUS=6.5 OLD_PUEUE_STATUS=1.7 OLD_REHYDRATE=17.8

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d -t taskdaemon-footprint.XXXXXX)
WS_MEM=$TMP/ws-memory
WS_BIG=$TMP/ws-records
PUEUED_PID="" SUPERVISORD_PID="" PM2_HOME_DIR=""

log() { printf '[footprint] %s\n' "$*" >&2; }

# Ends a workspace's supervised groups, waits for their shims, stops its daemon.
stop_workspace() {
  local ws=$1 json pgids shims
  [[ -d $ws/.taskdaemon ]] || return 0
  json=$("$TD" --workspace "$ws" ps --json 2>/dev/null || true)
  pgids=$(grep -o '"pgid": *[0-9]*' <<<"$json" | grep -o '[0-9]*$' || true)
  shims=$(grep -o '"shim_pid": *[0-9]*' <<<"$json" | grep -o '[0-9]*$' || true)
  for pgid in $pgids; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  for _ in $(seq 200); do
    local alive=0
    for pid in $shims; do
      if [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        alive=1
        break
      fi
    done
    ((alive)) || break
    sleep 0.1
  done
  "$TD" --workspace "$ws" stop >/dev/null 2>&1 || true
}

pueue_env() {
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run "$@"
}

# Starts an empty pueued in the bench's own home and waits until it answers.
start_pueued() {
  mkdir -p "$TMP/pueue-home/config" "$TMP/pueue-home/data" "$TMP/pueue-home/run"
  chmod 700 "$TMP/pueue-home/run"
  # Not through pueue_env: `$!` must be pueued's own pid, not a subshell's.
  HOME=$TMP/pueue-home XDG_CONFIG_HOME=$TMP/pueue-home/config XDG_DATA_HOME=$TMP/pueue-home/data \
    XDG_RUNTIME_DIR=$TMP/pueue-home/run pueued >>"$TMP/pueued.log" 2>&1 &
  PUEUED_PID=$!
  local i
  for i in $(seq 100); do
    pueue_env pueue status >/dev/null 2>&1 && break
    sleep 0.1
  done
}

stop_pueued() {
  kill "$PUEUED_PID" 2>/dev/null || true
  wait "$PUEUED_PID" 2>/dev/null || true
  PUEUED_PID=""
}

cleanup() {
  local status=$?
  set +e
  stop_workspace "$WS_MEM"
  stop_workspace "$WS_BIG"
  if [[ -n $PUEUED_PID ]]; then
    pueue_env pueue kill --all >/dev/null 2>&1
    pueue_env pueue reset --force >/dev/null 2>&1
    kill "$PUEUED_PID" 2>/dev/null
    wait "$PUEUED_PID" 2>/dev/null
  fi
  [[ -n $PM2_HOME_DIR ]] && PM2_HOME=$PM2_HOME_DIR pm2 kill >/dev/null 2>&1
  if [[ -n $SUPERVISORD_PID ]]; then
    kill "$SUPERVISORD_PID" 2>/dev/null
    wait "$SUPERVISORD_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mib() { awk -v kb="$1" 'BEGIN {printf "%.2f", kb / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b != "" && b > 0) printf "%.3gx", a / b; else print "n/a"}'; }
check() { awk -v v="$1" -v t="$2" 'BEGIN {print (v != "" && t != "" && v <= t) ? "ok" : "MISS"}'; }
field() { awk -v n="$2" '{print $n}' <<<"$1"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# "median p95 mean min" in ms of RUNS executions of a command (hyperfine -N:
# no shell in between, the same harness for every tool).
timeit() { # runs, command...
  local runs=$1
  shift
  hyperfine -N ${TIMEIT_IGNORE_FAILURE:+-i} --warmup 5 --runs "$runs" --export-json "$TMP/timeit.json" -- "$(printf '%q ' "$@")" >/dev/null 2>&1
  python3 -c '
import json, statistics, sys
t = sorted(x * 1000 for x in json.load(open(sys.argv[1]))["results"][0]["times"])
print("%.2f %.2f %.2f %.2f" % (statistics.median(t), t[int(len(t) * 0.95) - 1], statistics.mean(t), t[0]))
' "$TMP/timeit.json"
}
daemon_pid() { "$TD" --workspace "$1" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'; }
# "rss pss private count anon" (kB, summed) of pids, from smaps_rollup.
mem() {
  local pid
  for pid in "$@"; do cat "/proc/$pid/smaps_rollup" 2>/dev/null && echo "--"; done | awk '
    /^Rss:/ {r += $2} /^Pss:/ {p += $2} /^Private_(Clean|Dirty):/ {v += $2}
    /^Anonymous:/ {a += $2} /^--$/ {n++}
    END {printf "%d %d %d %d %d\n", r, p, v, n, a}'
}
real_command() {
  local path
  if command -v pyenv >/dev/null 2>&1 && path=$(pyenv which "$1" 2>/dev/null); then
    echo "$path"
  else
    command -v "$1"
  fi
}
peer_wanted() { [[ " $PEERS " == *" $1 "* ]]; }

# ------------------------------------------------------------------ build

if [[ ${BUILD:-0} == 1 || ! -x $TD ]]; then
  log "building (cargo build --release -p taskdaemon-cli)"
  cargo build --release --quiet -p taskdaemon-cli
fi
command -v hyperfine >/dev/null || {
  echo "footprint.sh needs hyperfine (apt-get install hyperfine)" >&2
  exit 1
}
BINARY_MIB=$(mib $(($(stat -c %s "$TD") / 1024)))

# ------------------------------------------------------------------ 1. idle daemon

log "idle daemon"
mkdir -p "$WS_MEM"
"$TD" --workspace "$WS_MEM" init >/dev/null
"$TD" --workspace "$WS_MEM" start >/dev/null
sleep 3
MEM_PID=$(daemon_pid "$WS_MEM")
IDLE=$(mem "$MEM_PID")
IDLE_THREADS=$(threads "$MEM_PID")
# The same daemon after IDLE_STEADY seconds more: the idle daemon drops its
# start-up code pages (see taskdaemon_supervisor::memory), and what its
# periodic checks run faults back in, 64 KiB at a time (the kernel's
# fault-around), so the first figure alone would flatter it.
IDLE_STEADY=${IDLE_STEADY:-30}
sleep "$IDLE_STEADY"
IDLE_LATER=$(mem "$MEM_PID")

# ------------------------------------------------------------------ 2. shims and daemon with SUPERVISED processes

log "spawning $SUPERVISED supervised sleeps"
spawn_started=$SECONDS
SPAWN_FAILED=0
for _ in $(seq "$SUPERVISED"); do
  "$TD" --workspace "$WS_MEM" spawn -- sleep 3600 >/dev/null 2>"$TMP/spawn.err" ||
    SPAWN_FAILED=$((SPAWN_FAILED + 1))
done
SPAWN_SECONDS=$((SECONDS - spawn_started))
((SPAWN_FAILED == 0)) || log "$SPAWN_FAILED spawns failed; last error: $(cat "$TMP/spawn.err")"
sleep 5
LOADED=$(mem "$MEM_PID")
LOADED_THREADS=$(threads "$MEM_PID")
PS_JSON=$("$TD" --workspace "$WS_MEM" ps --json)
SHIM_PIDS=$(grep -o '"shim_pid": *[0-9]*' <<<"$PS_JSON" | grep -o '[0-9]*$' | tr '\n' ' ')
# shellcheck disable=SC2086
SHIMS=$(mem $SHIM_PIDS)
SHIM_COUNT=$(field "$SHIMS" 4)
FIRST_SHIM=${SHIM_PIDS%% *}
SHIM_THREADS=$(threads "$FIRST_SHIM")
per_shim() { awk -v kb="$(field "$SHIMS" "$1")" -v n="$SHIM_COUNT" 'BEGIN {printf "%.2f", (n > 0 ? kb / n / 1024 : 0)}'; }
SHIM_RSS=$(per_shim 1) SHIM_PSS=$(per_shim 2) SHIM_PRIVATE=$(per_shim 3) SHIM_ANON=$(per_shim 5)
T_STATUS_LOADED=$(timeit 50 "$TD" --workspace "$WS_MEM" status --json)
stop_workspace "$WS_MEM"

# ------------------------------------------------------------------ 3. CLI on a big store

log "seeding $RECORDS ended processes"
mkdir -p "$WS_BIG"
"$TD" --workspace "$WS_BIG" init >/dev/null
# One real ended process as the template, cloned RECORDS times through import.
mkdir -p "$TMP/template"
"$TD" --workspace "$TMP/template" init >/dev/null
"$TD" --workspace "$TMP/template" spawn --tool claude -- true >/dev/null
"$TD" --workspace "$TMP/template" wait "$("$TD" --workspace "$TMP/template" ps --all --json |
  grep -o '"id": *"[^"]*"' | head -n 1 | cut -d'"' -f4)" >/dev/null || true
"$TD" --workspace "$TMP/template" export >"$TMP/template.jsonl"
stop_workspace "$TMP/template"
python3 "$ROOT/bench/footprint_seed.py" "$TMP/template.jsonl" "$RECORDS" >"$TMP/seed.jsonl"
"$TD" --workspace "$WS_BIG" import "$TMP/seed.jsonl" >/dev/null
"$TD" --workspace "$WS_BIG" start >/dev/null
for _ in $(seq 20); do "$TD" --workspace "$WS_BIG" spawn --tool claude -- sleep 3600 >/dev/null; done
sleep 1
log "timing status --json and rehydrate ($RUNS runs each)"
T_STATUS=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" status --json)
T_REHYDRATE=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" rehydrate --peek)
T_REHYDRATE_JSON=$(timeit "$RUNS" "$TD" --workspace "$WS_BIG" rehydrate --peek --json)
# `status --json` and `pueue status` in turn, one run of each per round,
# so drifting load on the machine weighs on both alike.
ALTERNATED=""
if [[ " $PEERS " == *" pueue "* ]] && command -v pueued >/dev/null; then
  log "timing status --json and pueue status in turn ($RUNS rounds)"
  start_pueued
  ALTERNATED=$(pueue_env python3 "$ROOT/bench/alternate.py" "$RUNS" \
    "$TD --workspace $WS_BIG status --json" "$(command -v pueue) status" | tr '\n' ' ')
  stop_pueued
fi
stop_workspace "$WS_BIG"

# ------------------------------------------------------------------ 4. peers

declare -A PEER_IDLE PEER_LOADED PEER_CLI PEER_NOTE

bench_pueue() {
  start_pueued
  sleep 2
  PEER_IDLE[pueue]=$(mem "$PUEUED_PID")
  PEER_CLI[pueue]=$(pueue_env timeit "$PEER_RUNS" "$(command -v pueue)" status)
  pueue_env pueue parallel "$SUPERVISED" >/dev/null
  for i in $(seq "$SUPERVISED"); do pueue_env pueue add -- sleep 3600 >/dev/null; done
  sleep 5
  # pueued runs each command under `sh -c`; its own figure is the daemon.
  PEER_LOADED[pueue]=$(mem "$PUEUED_PID")
  PEER_NOTE[pueue]="$SUPERVISED tasks: pueued is their parent (no per-process helper)"
  pueue_env pueue kill --all >/dev/null 2>&1 || true
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
  PEER_IDLE[pm2]=$(mem "$(cat "$PM2_HOME_DIR/pm2.pid")")
  PEER_CLI[pm2]=$(PM2_HOME=$PM2_HOME_DIR timeit 20 "$(command -v pm2)" jlist)
  PEER_NOTE[pm2]="not loaded with $SUPERVISED processes (one pm2 start per process takes minutes)"
  PM2_HOME=$PM2_HOME_DIR pm2 kill >/dev/null 2>&1 || true
  PM2_HOME_DIR=""
}

bench_supervisor() {
  local supd supc conf=$TMP/supervisor/supervisord.conf i
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
minfds=4096
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$TMP/supervisor/supervisor.sock
[program:sleeps]
command=sleep 3600
process_name=%(program_name)s_%(process_num)s
numprocs=$SUPERVISED
autostart=false
autorestart=false
startsecs=0
stdout_logfile=$TMP/supervisor/%(program_name)s_%(process_num)s.out
stderr_logfile=$TMP/supervisor/%(program_name)s_%(process_num)s.err
EOF
  "$supd" -c "$conf" >"$TMP/supervisor/stdout.log" 2>&1 &
  SUPERVISORD_PID=$!
  for i in $(seq 100); do
    "$supc" -c "$conf" pid >/dev/null 2>&1 && break
    sleep 0.2
  done
  sleep 2
  PEER_IDLE[supervisor]=$(mem "$SUPERVISORD_PID")
  # Exit code 3: programs defined but stopped.
  PEER_CLI[supervisor]=$(TIMEIT_IGNORE_FAILURE=1 timeit 20 "$supc" -c "$conf" status)
  "$supc" -c "$conf" start 'sleeps:*' >/dev/null 2>&1 || true
  sleep 5
  PEER_LOADED[supervisor]=$(mem "$SUPERVISORD_PID")
  PEER_NOTE[supervisor]="CLI over 20 runs, with $SUPERVISED programs defined; supervisord is their parent"
  "$supc" -c "$conf" stop all >/dev/null 2>&1 || true
  kill "$SUPERVISORD_PID" 2>/dev/null || true
  wait "$SUPERVISORD_PID" 2>/dev/null || true
  SUPERVISORD_PID=""
}

for peer in $PEERS; do
  case $peer in
  pueue) probe=pueued ;;
  pm2) probe=pm2 ;;
  supervisor) probe=supervisord ;;
  *) continue ;;
  esac
  if ! command -v "$probe" >/dev/null 2>&1; then
    PEER_NOTE[$peer]="NOT INSTALLED (bench/run.sh installs it)"
    continue
  fi
  log "peer: $peer"
  "bench_$peer" || PEER_NOTE[$peer]="benchmark failed"
done

# ------------------------------------------------------------------ report

row() { printf '%-44s %11s %11s %9s %-20s %s\n' "$@"; }
PUEUE_MEDIAN=$(field "${PEER_CLI[pueue]:-}" 1)
LOADED_MIB=$(mib "$(field "$LOADED" 1)")
IDLE_MIB=$(mib "$(field "$IDLE" 1)")
IDLE_PRIVATE_MIB=$(mib "$(field "$IDLE" 3)")
STATUS_MEDIAN=$(field "$T_STATUS" 1)
REHYDRATE_MEDIAN=$(field "$T_REHYDRATE" 1)

echo
echo "taskdaemon footprint ($(uname -sr), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); binary $BINARY_MIB MiB: $TD)"
echo "load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== memory (MiB; RSS from smaps_rollup, private = Private_Clean + Private_Dirty) =="
row "figure" "now" "before" "ratio" "target" "check"
row "shim private, per shim ($SHIM_COUNT waiting)" "$SHIM_PRIVATE" "$OLD_SHIM_PRIVATE" \
  "$(ratio "$SHIM_PRIVATE" "$OLD_SHIM_PRIVATE")" "<= 1 MiB" "$(check "$SHIM_PRIVATE" 1)"
row "shim PSS, per shim" "$SHIM_PSS" "$OLD_SHIM_PSS" "$(ratio "$SHIM_PSS" "$OLD_SHIM_PSS")" "" ""
row "shim RSS, per shim (binary pages shared)" "$SHIM_RSS" "" "" "" "anon $SHIM_ANON MiB, $SHIM_THREADS threads"
row "all shims, PSS" "$(mib "$(field "$SHIMS" 2)")" "" "" "" ""
row "daemon RSS with $SUPERVISED processes" "$LOADED_MIB" "$OLD_DAEMON_LOADED" \
  "$(ratio "$LOADED_MIB" "$OLD_DAEMON_LOADED")" "<= 40 MiB" "$(check "$LOADED_MIB" 40)"
row "  its PSS / private" "$(mib "$(field "$LOADED" 2)")" "$(mib "$(field "$LOADED" 3)")" "" "" \
  "$LOADED_THREADS threads; spawns took ${SPAWN_SECONDS}s ($SPAWN_FAILED failed)"
row "daemon RSS, idle" "$IDLE_MIB" "$OLD_IDLE_RSS" "$(ratio "$IDLE_MIB" "$OLD_IDLE_RSS")" "<= 5 MiB" \
  "$(check "$IDLE_MIB" 5)"
row "daemon RSS, idle $((IDLE_STEADY + 3)) s" "$(mib "$(field "$IDLE_LATER" 1)")" "" "" "<= 5 MiB" \
  "$(check "$(mib "$(field "$IDLE_LATER" 1)")" 5); private $(mib "$(field "$IDLE_LATER" 3)"), PSS $(mib "$(field "$IDLE_LATER" 2)")"
row "  its private" "$IDLE_PRIVATE_MIB" "$OLD_IDLE_PRIVATE" "$(ratio "$IDLE_PRIVATE_MIB" "$OLD_IDLE_PRIVATE")" "" \
  "PSS $(mib "$(field "$IDLE" 2)"), anon $(mib "$(field "$IDLE" 5)"); $IDLE_THREADS threads"
echo
echo "== CLI latency (ms, median of $RUNS; store of $RECORDS ended + 20 running processes) =="
row "figure" "now" "before" "ratio" "target" "check"
row "status --json" "$STATUS_MEDIAN" "$OLD_STATUS" "$(ratio "$STATUS_MEDIAN" "$OLD_STATUS")" \
  "<= pueue ($PUEUE_MEDIAN)" "$(check "$STATUS_MEDIAN" "$PUEUE_MEDIAN")"
row "  p95" "$(field "$T_STATUS" 2)" "" "" "" ""
if [[ -n $ALTERNATED ]]; then
  row "status --json, in turn with pueue" "$(field "$ALTERNATED" 1)" "" \
    "$(ratio "$(field "$ALTERNATED" 1)" "$(field "$ALTERNATED" 3)")" \
    "<= pueue ($(field "$ALTERNATED" 3))" "$(check "$(field "$ALTERNATED" 1)" "$(field "$ALTERNATED" 3)")"
fi
row "status --json, $SUPERVISED running (50 runs)" "$(field "$T_STATUS_LOADED" 1)" "" "" "" ""
row "rehydrate --peek" "$REHYDRATE_MEDIAN" "$OLD_REHYDRATE" "$(ratio "$REHYDRATE_MEDIAN" "$OLD_REHYDRATE")" \
  "<= 5 ms" "$(check "$REHYDRATE_MEDIAN" 5)"
row "rehydrate --peek --json" "$(field "$T_REHYDRATE_JSON" 1)" "" "" "" ""
echo
echo "== peers in the same run (MiB; CLI ms median over $PEER_RUNS runs, on an idle daemon) =="
printf '%-12s %-22s %9s %12s %12s %16s %16s\n' "peer" "CLI" "CLI ms" "idle RSS" "idle private" \
  "RSS, $SUPERVISED procs" "total PSS, $SUPERVISED"
printf '%-12s %-22s %9s %12s %12s %16s %16s\n' "taskdaemon" "status --json ($RECORDS)" "$STATUS_MEDIAN" \
  "$IDLE_MIB" "$IDLE_PRIVATE_MIB" "$LOADED_MIB" \
  "$(mib $(($(field "$LOADED" 2) + $(field "$SHIMS" 2))))"
declare -A PEER_CMD=([pueue]="pueue status" [pm2]="pm2 jlist" [supervisor]="supervisorctl status")
for peer in $PEERS; do
  [[ -n ${PEER_CMD[$peer]:-} ]] || continue
  if [[ -z ${PEER_IDLE[$peer]:-} ]]; then
    printf '%-12s %s\n' "$peer" "${PEER_NOTE[$peer]:-not measured}"
    continue
  fi
  loaded=${PEER_LOADED[$peer]:-}
  printf '%-12s %-22s %9s %12s %12s %16s %16s\n' "$peer" "${PEER_CMD[$peer]}" \
    "$(field "${PEER_CLI[$peer]:-}" 1)" "$(mib "$(field "${PEER_IDLE[$peer]}" 1)")" \
    "$(mib "$(field "${PEER_IDLE[$peer]}" 3)")" \
    "$([[ -n $loaded ]] && mib "$(field "$loaded" 1)" || echo n/a)" \
    "$([[ -n $loaded ]] && mib "$(field "$loaded" 2)" || echo n/a)"
  [[ -n ${PEER_NOTE[$peer]:-} ]] && printf '%-12s note: %s\n' "" "${PEER_NOTE[$peer]}"
done
echo
echo "== ratios taskdaemon / peer (below 1: taskdaemon is smaller or faster) =="
printf '%-12s %12s %12s %22s\n' "peer" "CLI median" "idle RSS" "total PSS, $SUPERVISED procs"
for peer in $PEERS; do
  [[ -n ${PEER_IDLE[$peer]:-} ]] || continue
  loaded=${PEER_LOADED[$peer]:-}
  printf '%-12s %12s %12s %22s\n' "$peer" \
    "$(ratio "$STATUS_MEDIAN" "$(field "${PEER_CLI[$peer]:-}" 1)")" \
    "$(ratio "$(field "$IDLE" 1)" "$(field "${PEER_IDLE[$peer]}" 1)")" \
    "$([[ -n $loaded ]] && ratio $(($(field "$LOADED" 2) + $(field "$SHIMS" 2))) "$(field "$loaded" 2)" || echo n/a)"
done
echo
echo "notes: the peers' CLI figures are on an empty daemon, taskdaemon's on $RECORDS records."
echo "       pueue's status before this work was $OLD_PUEUE_STATUS ms (same machine kind, another run)."

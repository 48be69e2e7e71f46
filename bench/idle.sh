#!/usr/bin/env bash
# Idle daemon memory over time (issue 17: idle RSS <= 5 MiB), for one or
# more binaries side by side in the same run (A/B on a shared machine):
# each starts a daemon in a fresh workspace at the same moment, and RSS,
# PSS, private memory (smaps_rollup) and thread count are printed at each
# of TIMES seconds after start.
#
#   bash bench/idle.sh [BINARY...]    (default: target/release/taskdaemon)
#
# Knobs (environment): TIMES ("3 33 63"), TRACE=1 (also `strace -f -c`
# the first daemon over the whole run, to list what wakes it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TIMES=${TIMES:-3 33 63}
BINARIES=("$@")
((${#BINARIES[@]})) || BINARIES=("$PWD/target/release/taskdaemon")
TMP=$(mktemp -d -t taskdaemon-idle.XXXXXX)
PIDS=() STRACE_PID=""

cleanup() {
  set +e
  [[ -n $STRACE_PID ]] && kill "$STRACE_PID" 2>/dev/null && wait "$STRACE_PID" 2>/dev/null
  for i in "${!BINARIES[@]}"; do
    "${BINARIES[$i]}" --workspace "$TMP/ws$i" stop >/dev/null 2>&1
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

daemon_pid() { "$1" --workspace "$2" status --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'; }
row() { # pid
  awk '/^Rss:/ {r = $2} /^Pss:/ {p = $2} /^Private_(Clean|Dirty):/ {v += $2} /^Anonymous:/ {a = $2}
    END {printf "rss %6.2f  pss %6.2f  private %6.2f  anon %6.2f MiB", r / 1024, p / 1024, v / 1024, a / 1024}' \
    "/proc/$1/smaps_rollup"
  printf '  threads %s\n' "$(awk '/^Threads:/ {print $2}' "/proc/$1/status")"
}

for i in "${!BINARIES[@]}"; do
  mkdir -p "$TMP/ws$i"
  "${BINARIES[$i]}" --workspace "$TMP/ws$i" init >/dev/null
done
for i in "${!BINARIES[@]}"; do
  "${BINARIES[$i]}" --workspace "$TMP/ws$i" start >/dev/null
  PIDS+=("$(daemon_pid "${BINARIES[$i]}" "$TMP/ws$i")")
done
STARTED=$SECONDS
if [[ ${TRACE:-0} == 1 ]]; then
  strace -f -c -o "$TMP/strace" -p "${PIDS[0]}" 2>/dev/null &
  STRACE_PID=$!
fi
echo "idle daemons ($(date -u +%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg))"
for t in $TIMES; do
  sleep $((t - (SECONDS - STARTED)))
  for i in "${!BINARIES[@]}"; do
    printf '%3ss  %-28s %s' "$t" "$(basename "${BINARIES[$i]}")" "$(row "${PIDS[$i]}")"
    echo
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n $STRACE_PID ]]; then
  kill -INT "$STRACE_PID" 2>/dev/null
  wait "$STRACE_PID" 2>/dev/null || true
  STRACE_PID=""
  echo "system calls of the first daemon over the run:"
  cat "$TMP/strace"
fi

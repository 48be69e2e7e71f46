#!/usr/bin/env bash
# Benchmark for the terminal UI (issue 16): frame render time with 10,000 and
# 100,000 tracked tasks, input-to-frame latency, change-to-frame latency, and
# the resident memory of the real `taskdaemon tui` on the big workspace.
#
#   bash bench/tui.sh
#
# Knobs (environment): SIZES ("10000 100000"), FRAMES (2000 per size).
# Needs tmux for the RSS of the real binary (skipped without it).
# Figures only: the goals are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SIZES=${SIZES:-10000 100000}
FRAMES=${FRAMES:-2000}
TMP=$(mktemp -d -t taskdaemon-tui.XXXXXX)
SOCKET=td-tui-bench-$$
cleanup() {
  tmux -L "$SOCKET" kill-server >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
TD=$ROOT/target/release/taskdaemon

log() { printf '[bench] %s\n' "$*" >&2; }

bench_exe() {
  cargo bench -p "$1" --bench "$2" --no-run --message-format=json 2>/dev/null |
    grep "\"name\":\"$2\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

log "building (cargo build --release, bench helpers)"
cargo build --release --quiet -p taskdaemon-cli
TRACK=$(bench_exe taskdaemon-cli tracking)
RENDER=$(bench_exe taskdaemon-tui render)
[[ -x $TRACK && -x $RENDER ]] || { log "bench helpers did not build"; exit 1; }

echo "goals: frame p99 < 16 ms, input to frame < 50 ms"
for n in $SIZES; do
  WS=$TMP/ws-$n
  mkdir -p "$WS"
  "$TD" --workspace "$WS" init >/dev/null
  log "seeding $n tasks"
  "$TRACK" seed --db "$WS/.taskdaemon/state.db" --tasks "$n" --events $((n * 2)) >/dev/null
  echo "== $n tracked tasks"
  "$RENDER" --workspace "$WS" --frames "$FRAMES"
done

if ! command -v tmux >/dev/null; then
  log "tmux missing: no RSS figure for the real binary"
  exit 0
fi
BIG=$TMP/ws-${SIZES##* }
log "RSS of the real TUI on $BIG"
tmux -L "$SOCKET" -f /dev/null new-session -d -x 120 -y 40 -s tui \
  "$TD --workspace $BIG tui; exec sleep 600"
START=$(date +%s.%N)
for _ in $(seq 1 600); do
  tmux -L "$SOCKET" capture-pane -p -t tui | grep -q "Processes (" && break
  sleep 0.05
done
FIRST=$(echo "$(date +%s.%N) - $START" | bc)
SHELL_PID=$(tmux -L "$SOCKET" display -p -t tui '#{pane_pid}')
TUI_PID=$(awk '{print $1}' "/proc/$SHELL_PID/task/$SHELL_PID/children" 2>/dev/null || echo "$SHELL_PID")
tmux -L "$SOCKET" send-keys -t tui 3
for _ in $(seq 1 200); do tmux -L "$SOCKET" send-keys -t tui j; done
sleep 1
printf 'real tui, %s tasks: first frame after %.2f s; %s; %s\n' "${SIZES##* }" "$FIRST" \
  "$(grep VmRSS "/proc/$TUI_PID/status" | tr -s ' ')" "$(grep VmHWM "/proc/$TUI_PID/status" | tr -s ' ')"
tmux -L "$SOCKET" send-keys -t tui q

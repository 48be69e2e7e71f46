#!/usr/bin/env bash
# Benchmark for issue 3 (tracked work, memory, history): a store with 100,000
# tasks and 1,000,000 events, timed through the CLI and in process, next to
# Taskwarrior 2.x holding the same tasks, in one invocation.
#
#   bash bench/tracking.sh
#
# Knobs (environment): TASKS (100000), EVENTS (1000000), RUNS (CLI timings,
# 100), PEER_RUNS (Taskwarrior timings, 20), PEERS ("taskwarrior"; empty for
# none), INSTALL_PEERS (1: apt-get install a missing peer; 0: skip it).
# Issue 20 (`ready`, `next`, `search` on NEXT_TASKS=20000 tasks, beside
# Taskwarrior and beads_rust's `br` when one is on PATH): always run;
# ONLY_NEXT=1 skips the 100,000-task part. TD_BIN, TIMEIT_BIN and TRACK_BIN
# name prebuilt binaries (taskdaemon, the seed_and_measure and tracking bench
# helpers) instead of building release ones.
#
# Figures only: targets are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TASKS=${TASKS:-100000}
EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-100}
PEER_RUNS=${PEER_RUNS:-20}
PEERS=${PEERS-taskwarrior}
INSTALL_PEERS=${INSTALL_PEERS:-1}
NEXT_TASKS=${NEXT_TASKS:-20000}
ONLY_NEXT=${ONLY_NEXT:-0}

TMP=$(mktemp -d -t taskdaemon-tracking.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
TD=${TD_BIN:-$ROOT/target/release/taskdaemon}
BIG=$TMP/big
SMALL=$TMP/small
TW_DATA=$TMP/taskwarrior

log() { printf '[bench] %s\n' "$*" >&2; }

bench_exe() {
  cargo bench -p taskdaemon-cli --bench "$1" --no-run --message-format=json 2>/dev/null |
    grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

if [[ -n ${TD_BIN:-} && -n ${TIMEIT_BIN:-} && -n ${TRACK_BIN:-} ]]; then
  # Binaries given (e.g. a debug build on a machine too loaded for a release one).
  TIMEIT=$TIMEIT_BIN TRACK=$TRACK_BIN
else
  log "building (cargo build --release, bench helpers)"
  cargo build --release --quiet
  TIMEIT=$(bench_exe seed_and_measure)
  TRACK=$(bench_exe tracking)
fi
[[ -x $TIMEIT && -x $TRACK ]] || { log "bench helpers did not build"; exit 1; }

HAVE_TW=0
if [[ " $PEERS " == *" taskwarrior "* ]]; then
  if ! command -v task >/dev/null && ((INSTALL_PEERS)); then
    log "installing taskwarrior (apt-get)"
    (apt-get install -y -qq taskwarrior >/dev/null 2>&1 || sudo -n apt-get install -y -qq taskwarrior >/dev/null 2>&1) || true
  fi
  command -v task >/dev/null && HAVE_TW=1 || log "taskwarrior unavailable: peer column left empty"
fi


# Issue 20: `ready`, `next` and `search` on NEXT_TASKS tasks, one run, beside
# Taskwarrior (`ready`, `next`, a search) and beads_rust (`br ready`) when present.
next_part() {
  local mid=$TMP/mid tw_mid=$TMP/taskwarrior-mid
  log "seeding $NEXT_TASKS tasks for the issue 20 figures"
  mkdir -p "$mid"
  "$TD" --workspace "$mid" init >/dev/null
  local tw_arg=()
  ((HAVE_TW)) && tw_arg=(--taskwarrior "$tw_mid")
  "$TRACK" seed --db "$mid/.taskdaemon/state.db" --tasks "$NEXT_TASKS" --events "$((NEXT_TASKS * 10))" "${tw_arg[@]}"
  local rare
  rare=$(sqlite3 "$mid/.taskdaemon/state.db" "SELECT name FROM tasks WHERE id = 'TASK-$((NEXT_TASKS / 2))'" 2>/dev/null | awk '{print $NF}' || true)
  rare=${rare:-jorjorjor}
  tdm() { ms "$RUNS" "$TD" --workspace "$mid" "$@"; }
  local ready next explain graph compact search
  ready=$(tdm task ready --json)
  next=$(tdm task next --json)
  explain=$(tdm task next --explain)
  graph=$(tdm task ready --graph --json)
  compact=$(tdm task list --format compact --limit 200)
  search=$(tdm search "$rare" --json)
  local tw_ready="" tw_next="" tw_search=""
  if ((HAVE_TW)); then
    : >"$TMP/taskrc-mid"
    twm() { ms "$PEER_RUNS" env TASKRC="$TMP/taskrc-mid" task "rc.data.location=$tw_mid" rc.gc=off rc.hooks=off \
      rc.confirmation=off rc.verbose=nothing rc.color=off "$@"; }
    tw_ready=$(twm ready limit:20)
    tw_next=$(twm next limit:1)
    tw_search=$(twm "/$rare/" all limit:20)
  fi
  local br_ready="" br_note="br not on PATH (beads_rust 0.6.0-0.7.6 need rustc 1.96 through vergen 10.0.3)"
  if command -v br >/dev/null; then
    br_note="br $(br --version 2>/dev/null | head -n 1), an empty workspace: seeding it is not scripted"
    (cd "$TMP" && br init >/dev/null 2>&1 || true)
    br_ready=$(cd "$TMP" && ms "$PEER_RUNS" br ready --json)
  fi
  echo
  echo "## Issue 20: ready, next, search on $NEXT_TASKS tasks"
  echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| CLI command (median / p95 ms) | taskdaemon | Taskwarrior 2.6 | peer / ours | target |"
  echo "|---|---|---|---|---|"
  echo "| task ready --json | $ready | ${tw_ready:--} | $(ratio "$(first "$ready")" "$(first "$tw_ready")") | < 5 ms |"
  echo "| task next --json | $next | ${tw_next:--} | $(ratio "$(first "$next")" "$(first "$tw_next")") | |"
  echo "| task next --explain | $explain | | | |"
  echo "| task ready --graph --json | $graph | | | |"
  echo "| task list --format compact --limit 200 | $compact | | | |"
  echo "| search (rare word '$rare') | $search | ${tw_search:--} | $(ratio "$(first "$search")" "$(first "$tw_search")") | |"
  echo "| beads_rust br ready | ${br_ready:--} | | | $br_note |"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", b / a; else print "-" }'; }
first() { echo "${1%% *}"; }
ms() { "$TIMEIT" timeit --runs "$1" --warmup 3 -- "${@:2}" | awk '{print $1, $2}'; }

if ((ONLY_NEXT)); then
  next_part
  exit 0
fi

log "seeding $TASKS tasks and $EVENTS events (and the same tasks for Taskwarrior)"
"$TD" --workspace "$BIG" init >/dev/null 2>&1 || { mkdir -p "$BIG"; "$TD" --workspace "$BIG" init >/dev/null; }
SEED_START=$(date +%s.%N)
"$TRACK" seed --db "$BIG/.taskdaemon/state.db" --tasks "$TASKS" --events "$EVENTS" --taskwarrior "$TW_DATA"
SEED_SECS=$(echo "$(date +%s.%N) - $SEED_START" | bc)
mkdir -p "$SMALL"
"$TD" --workspace "$SMALL" init >/dev/null
"$TRACK" seed --db "$SMALL/.taskdaemon/state.db" --tasks 1000 --events 10000
DB_MB=$(du -m "$BIG/.taskdaemon/state.db" | cut -f1)

# The rarest seeded word that still occurs, and a common one.
RARE=$(sqlite3 "$BIG/.taskdaemon/state.db" "SELECT name FROM tasks WHERE id = 'TASK-$((TASKS / 2))'" 2>/dev/null | awk '{print $NF}' || true)
RARE=${RARE:-jorjorjor}
COMMON=build

td() { ms "$RUNS" "$TD" --workspace "$BIG" "$@"; }

log "timing CLI commands ($RUNS runs each)"
declare -A FIG
FIG[ready]=$(td task ready --json)
FIG[ready_text]=$(td task ready)
FIG[search_rare]=$(td search "$RARE" --json)
FIG[search_common]=$(td search "$COMMON" --json)
FIG[list]=$(td task list --limit 20 --json)
FIG[resume]=$(td task resume --json)
FIG[rehydrate]=$(td rehydrate --peek)
FIG[history]=$(td history --task "TASK-$((TASKS / 2))" --json)

TW_READY="" TW_SEARCH=""
if ((HAVE_TW)); then
  log "timing Taskwarrior on the same tasks ($PEER_RUNS runs each)"
  : >"$TMP/taskrc"
  tw() { ms "$PEER_RUNS" env TASKRC="$TMP/taskrc" task "rc.data.location=$TW_DATA" rc.gc=off rc.hooks=off \
    rc.confirmation=off rc.verbose=nothing rc.color=off "$@"; }
  TW_READY=$(tw ready limit:20)
  TW_SEARCH=$(tw "/$RARE/" all limit:20)
fi

log "peak RSS of the CLI, $TASKS-task store against a 1,000-task store"
rss() { "$TRACK" rss --runs 3 -- "$TD" --workspace "$1" "${@:2}"; }
declare -A RSS_BIG RSS_SMALL
for cmd in "task ready" "search $COMMON" "history" "export" "task list" "rehydrate --peek"; do
  # shellcheck disable=SC2086
  RSS_BIG[$cmd]=$(rss "$BIG" $cmd)
  # shellcheck disable=SC2086
  RSS_SMALL[$cmd]=$(rss "$SMALL" $cmd)
done

log "in-process store timings"
INPROC=$("$TRACK" inproc --db "$BIG/.taskdaemon/state.db" --workspace "$BIG" --runs 200)


echo
echo "## Tracked work: $TASKS tasks, $EVENTS events ($DB_MB MiB store, seeded in ${SEED_SECS%.*}s)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| CLI command (median / p95 ms) | taskdaemon | Taskwarrior 2.6 | peer / ours | target |"
echo "|---|---|---|---|---|"
echo "| task ready --json | ${FIG[ready]} | ${TW_READY:--} | $(ratio "$(first "${FIG[ready]}")" "$(first "$TW_READY")") | < 10 ms |"
echo "| task ready (table) | ${FIG[ready_text]} | | | |"
echo "| search (rare word '$RARE') | ${FIG[search_rare]} | ${TW_SEARCH:--} | $(ratio "$(first "${FIG[search_rare]}")" "$(first "$TW_SEARCH")") | < 10 ms |"
echo "| search (common word '$COMMON') | ${FIG[search_common]} | | | < 10 ms |"
echo "| task list --limit 20 | ${FIG[list]} | | | |"
echo "| task resume --json | ${FIG[resume]} | | | |"
echo "| rehydrate --peek | ${FIG[rehydrate]} | | | |"
echo "| history --task (one task) | ${FIG[history]} | | | |"
echo
echo "| command | peak RSS, 1,000 tasks | peak RSS, $TASKS tasks | growth |"
echo "|---|---|---|---|"
for cmd in "task ready" "search $COMMON" "history" "export" "task list" "rehydrate --peek"; do
  echo "| $cmd | ${RSS_SMALL[$cmd]} KiB | ${RSS_BIG[$cmd]} KiB | $(ratio "${RSS_SMALL[$cmd]}" "${RSS_BIG[$cmd]}") |"
done
echo
echo "In process (target: < 2 ms p99 per durable state write; the fsync floor is the disk's own):"
echo '```'
echo "$INPROC"
echo '```'
next_part

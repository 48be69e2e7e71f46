#!/usr/bin/env bash
# CLI latency (issues 17 and 20): what one read-only command costs from exec
# to exit, for two builds side by side in the same run.
#
#   bash bench/cli.sh
#
# Times `--version` (the floor: process start and argument parsing), `task
# ready --json`, `task next --json` and `search` on NEXT_TASKS (20,000) seeded
# tracked tasks, and `status --json` and `rehydrate --peek` on RECORDS
# (10,000) ended processes. Each store is checkpointed after seeding, as a
# store is after its last writer closes. hyperfine runs the commands of both
# builds in one invocation per figure, so the machine's load falls on both.
#
# Knobs (environment): TD_BIN (default target/release/taskdaemon, built when
# missing), BEFORE_BIN (a second build to compare; none by default), RUNS
# (200), NEXT_TASKS, RECORDS, TIMEIT_BIN and TRACK_BIN (prebuilt
# seed_and_measure and tracking bench helpers; built in release otherwise).
# Needs hyperfine, python3 and sqlite3.
#
# Figures only: the goals are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-200}
NEXT_TASKS=${NEXT_TASKS:-20000}
RECORDS=${RECORDS:-10000}
TD=${TD_BIN:-$ROOT/target/release/taskdaemon}
BEFORE=${BEFORE_BIN:-}

TMP=$(mktemp -d -t taskdaemon-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
log() { printf '[cli] %s\n' "$*" >&2; }

bench_exe() {
  cargo bench -p taskdaemon-cli --bench "$1" --no-run --message-format=json 2>/dev/null |
    grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

[[ -x $TD ]] || cargo build --release --quiet -p taskdaemon-cli
TIMEIT=${TIMEIT_BIN:-$(bench_exe seed_and_measure)}
TRACK=${TRACK_BIN:-$(bench_exe tracking)}
[[ -x $TIMEIT && -x $TRACK ]] || { log "bench helpers did not build"; exit 1; }

log "seeding $NEXT_TASKS tracked tasks and $RECORDS ended processes"
TASKS_WS=$TMP/tasks RECORDS_WS=$TMP/records
mkdir -p "$TASKS_WS" "$RECORDS_WS"
"$TD" --workspace "$TASKS_WS" init >/dev/null
"$TD" --workspace "$RECORDS_WS" init >/dev/null
"$TRACK" seed --db "$TASKS_WS/.taskdaemon/state.db" --tasks "$NEXT_TASKS" --events "$((NEXT_TASKS * 10))"
"$TIMEIT" seed --db "$RECORDS_WS/.taskdaemon/state.db" --count "$RECORDS"
for ws in "$TASKS_WS" "$RECORDS_WS"; do
  sqlite3 "$ws/.taskdaemon/state.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
done
RARE=$(sqlite3 "$TASKS_WS/.taskdaemon/state.db" \
  "SELECT name FROM tasks WHERE id = 'TASK-$((NEXT_TASKS / 2))'" | awk '{print $NF}')
RARE=${RARE:-jorjorjor}

# One figure: hyperfine over each build, then "median p95 cpu" per build
# (milliseconds; cpu is the mean user + system time of one run).
figure() {
  local json=$TMP/figure.json builds=("$TD")
  [[ -n $BEFORE ]] && builds=("$BEFORE" "$TD")
  local commands=()
  for bin in "${builds[@]}"; do commands+=("$bin $*"); done
  hyperfine -N --style none --warmup 5 --runs "$RUNS" --export-json "$json" \
    "${commands[@]}" >/dev/null 2>&1
  python3 - "$json" <<'EOF'
import json, statistics, sys
cells = []
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(x * 1000 for x in r["times"])
    p95 = t[min(len(t) - 1, int(len(t) * 0.95))]
    cpu = (r["user"] + r["system"]) * 1000
    cells.append(f"{statistics.median(t):.2f} / {p95:.2f} / {cpu:.2f}")
print(" | ".join(cells))
EOF
}

header="| command (median / p95 / CPU ms) |"
rule="|---|"
[[ -n $BEFORE ]] && { header+=" before |"; rule+="---|"; }
header+=" this build | goal |"
rule+="---|---|"

log "timing ($RUNS runs per build per command)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -a ROWS
ROWS+=("| --version | $(figure --version) | the floor |")
ROWS+=("| task ready --json ($NEXT_TASKS tasks) | $(figure --workspace "$TASKS_WS" task ready --json) | < 5 ms |")
ROWS+=("| task next --json | $(figure --workspace "$TASKS_WS" task next --json) | |")
ROWS+=("| search '$RARE' --json | $(figure --workspace "$TASKS_WS" search "$RARE" --json) | |")
ROWS+=("| status --json ($RECORDS records) | $(figure --workspace "$RECORDS_WS" status --json) | pueue status |")
ROWS+=("| rehydrate --peek | $(figure --workspace "$RECORDS_WS" rehydrate --peek) | |")

echo
echo "## CLI latency, each figure a whole process"
echo "machine: $(nproc) cores, load $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "this build: $TD${BEFORE:+; before: $BEFORE}"
echo
echo "$header"
echo "$rule"
printf '%s\n' "${ROWS[@]}"

#!/usr/bin/env bash
# Benchmark for bounded logs (issue 19): does rotation slow a writer down?
# A command writes SIZE bytes as fast as it can; the figure is its wall time
# (spawn to recorded exit) in three setups, run in one invocation:
#   plain        the same command writing straight to a file (no taskdaemon)
#   unbounded    supervised, [logs] max_bytes = 0 (pumped, never rotated)
#   rotating     supervised, [logs] max_bytes = 16 MiB, backups = 3
#
#   bash bench/logs.sh            # SIZE=1G RUNS=3 by default
#
# Figures only: nothing here fails on a slow result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE=${SIZE:-1G}
RUNS=${RUNS:-3}
cargo build --release --locked -q -p taskdaemon-cli
TD=$PWD/target/release/taskdaemon
TMP=$(mktemp -d -t taskdaemon-logs.XXXXXX)
trap 'for ws in "$TMP"/ws-*; do "$TD" --workspace "$ws" stop >/dev/null 2>&1 || true; done; rm -rf "$TMP"' EXIT

WRITER="head -c $SIZE /dev/zero | tr '\\0' 'x' | fold -w 99"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_ms() { date +%s%3N; }

plain() {
  for _ in $(seq "$RUNS"); do
    local start; start=$(now_ms)
    sh -c "$WRITER > $TMP/plain.log"
    echo $(( $(now_ms) - start ))
  done | median
}

supervised() { # $1: the [logs] table
  local ws=$TMP/ws-$RANDOM
  mkdir -p "$ws"
  "$TD" --workspace "$ws" init >/dev/null
  python3 - "$ws/.taskdaemon/config.toml" "$1" <<'PY'
import re, sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r"\[logs\][^\[]*", table + "\n\n", text, count=1)
open(path, "w").write(text)
PY
  "$TD" --workspace "$ws" start >/dev/null
  for _ in $(seq "$RUNS"); do
    local start id; start=$(now_ms)
    id=$("$TD" --workspace "$ws" spawn -- sh -c "$WRITER" 2>/dev/null | tail -n1)
    "$TD" --workspace "$ws" wait "$id" >/dev/null
    echo $(( $(now_ms) - start ))
  done | median
  du -sh "$ws/.taskdaemon/procs" | cut -f1 > "$TMP/disk"
}

echo "writer: $SIZE of 100-byte lines, median of $RUNS runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
P=$(plain)
U=$(supervised $'[logs]\nmax_bytes = 0\nbackups = 3\ntotal_max_bytes = 0')
UD=$(cat "$TMP/disk")
R=$(supervised $'[logs]\nmax_bytes = 16777216\nbackups = 3\ntotal_max_bytes = 0')
RD=$(cat "$TMP/disk")
printf '%-10s %8s ms\n' plain "$P"
printf '%-10s %8s ms  (%s x plain; logs on disk %s)\n' unbounded "$U" "$(awk "BEGIN{printf \"%.2f\", $U/$P}")" "$UD"
printf '%-10s %8s ms  (%s x plain, %s x unbounded; logs on disk %s)\n' rotating "$R" \
  "$(awk "BEGIN{printf \"%.2f\", $R/$P}")" "$(awk "BEGIN{printf \"%.2f\", $R/$U}")" "$RD"

#!/usr/bin/env bash
# Benchmark for issue 5 (LLM loops): 50 and 500 concurrent loops against the
# fake LLM server, through the real daemon and in process. Prints iterations
# per second, engine overhead per iteration and per tool call (the model's
# and the validation command's time excluded) and the daemon's peak RSS.
#
#   bash bench/loops.sh            # LOOPS="50,500" by default
#
# Figures only: targets are printed beside them and never fail the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOOPS=${LOOPS:-50,500}

log() { printf '[bench] %s\n' "$*" >&2; }

log "building (cargo build --release, bench helper)"
cargo build --release --quiet -p taskdaemon-cli
EXE=$(cargo bench -p taskdaemon-cli --bench loops --no-run --message-format=json 2>/dev/null |
  grep '"name":"loops"' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[[ -x $EXE ]] || { log "bench helper did not build"; exit 1; }
log "running $LOOPS concurrent loops"
"$EXE" --td "$PWD/target/release/taskdaemon" --loops "$LOOPS"

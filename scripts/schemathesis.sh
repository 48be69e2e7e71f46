#!/usr/bin/env bash
# Fuzzes the HTTP API with Schemathesis against its own OpenAPI document
# (/api/openapi.json), served by a real daemon in a temporary workspace
# holding a few tasks. Fails on any 5xx, undocumented status or content
# type, or response that violates the schema.
#
#   bash scripts/schemathesis.sh [SECONDS]     # default 60
#
# Schemathesis is installed from PyPI into a venv under the cargo target dir
# (SCHEMATHESIS_VERSION). Only the read operations (GET) are fuzzed: a
# generated body must never start a program; the actions' bad bodies are
# covered by crates/taskdaemon-cli/tests/web.rs.
# Exit codes: 0 passed, 3 PyPI unreachable (the caller may skip), 1 failed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_BUDGET=${1:-60}
VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
VENV=$TARGET/schemathesis-venv
ST=$VENV/bin/st

if ! [[ -x $ST ]] || [[ "$("$ST" --version 2>/dev/null)" != *"$VERSION"* ]]; then
  python3 -m venv "$VENV"
  if ! "$VENV/bin/pip" install -q "schemathesis==$VERSION" >&2; then
    echo "schemathesis: cannot install schemathesis==$VERSION from PyPI" >&2
    exit 3
  fi
fi

cargo build -q -p taskdaemon-cli
BIN=$TARGET/debug/taskdaemon
WS=$(mktemp -d)
FUZZED=TASK-1
cleanup() {
  "$BIN" --workspace "$WS" kill "$FUZZED" >/dev/null 2>&1 || true
  "$BIN" --workspace "$WS" stop >/dev/null 2>&1 || true
  rm -rf "$WS"
}
trap cleanup EXIT

td() { "$BIN" --workspace "$WS" "$@"; }
td init >/dev/null
# A finished queue task, so a result is there to fetch (/tasks/{id}/result).
printf -- '---\nexecutor: command\ncommand: echo fuzzed\n---\n' >"$WS/tasks/ad-hoc/pending/task-fuzz.md"
td start --web 127.0.0.1:0 >/dev/null
for _ in $(seq 1 200); do
  [[ -e $WS/tasks/ad-hoc/results/task-fuzz.json ]] && break
  sleep 0.1
done
FUZZED=$(td spawn -- sh -c 'echo fuzz; sleep 600' 2>/dev/null)
td task add "Fuzzed task" >/dev/null
td remember "a decision" --kind decision >/dev/null 2>&1 || true
URL=$(cat "$WS/.taskdaemon/web.url")
TOKEN=$(td web token)

"$ST" run "$URL/api/openapi.json" \
  -H "Authorization: Bearer $TOKEN" \
  --exclude-path /api/v1/stream \
  --include-method GET \
  --max-time "$SECONDS_BUDGET" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

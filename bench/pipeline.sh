#!/usr/bin/env bash
# Benchmark for issue 15: one plan of SPECS independent specs x 2 phases,
# driven by the real daemon against the fake LLM server on a real git
# repository. Prints the wall time from approval to the plan's success, the
# scheduler's overhead per status transition (its passes' time, from the
# daemon's debug log, over the transitions made), the daemon's peak RSS and
# git's share of the time (git commands' summed durations over the wall
# time; specs run in parallel, so this can exceed 100%).
#
#   bash bench/pipeline.sh                 # release build
#   PROFILE=debug bash bench/pipeline.sh   # reuse the debug build
#
# Knobs: SPECS (50). Goals: < 1 ms per transition, RSS < 100 MiB.
# Figures only: nothing fails on them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SPECS=${SPECS:-50}
PROFILE=${PROFILE:-release}

log() { printf '[bench] %s\n' "$*" >&2; }

if [[ $PROFILE == release ]]; then
  cargo build --release --quiet -p taskdaemon-cli -p taskdaemon-fake-llm
  DIR=target/release
else
  cargo build --quiet -p taskdaemon-cli -p taskdaemon-fake-llm
  DIR=target/debug
fi
TD=$PWD/$DIR/taskdaemon
FAKE=$PWD/$DIR/taskdaemon-fake-llm

WS=$(mktemp -d -t td-bench-pipeline-XXXXXX)
FAKE_PID=
cleanup() {
  "$TD" --workspace "$WS" stop >/dev/null 2>&1 || true
  [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null || true
  rm -rf "$WS"
}
trap cleanup EXIT

cd "$WS"
git init --quiet --initial-branch=main
git -c user.name=bench -c user.email=bench@example.com commit --quiet --allow-empty -m base
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

python3 - "$SPECS" >script.json <<'PY'
import json, sys
n = int(sys.argv[1])
def tool(name, input):
    return {"kind": "turn", "blocks": [{"type": "tool_use", "name": name, "input": input}],
            "usage": {"input_tokens": 100, "output_tokens": 10}}
def text(t):
    return {"kind": "turn", "blocks": [{"type": "text", "text": t}],
            "usage": {"input_tokens": 100, "output_tokens": 10}}
routes = [
    {"when_offers": "submit_plan", "replies": [tool("submit_plan", {"title": "bench", "summary": "s", "body": "b"})]},
    {"when_offers": "create_spec", "replies":
        [tool("create_spec", {"name": f"s{i}", "title": f"spec {i}", "body": "b"}) for i in range(n)]
        + [tool("finish", {})]},
]
for i in range(n):
    routes.append({"when_offers": "create_phase", "when_prompt_contains": f"for spec `s{i}`", "replies": [
        tool("create_phase", {"name": f"p{k}", "title": f"phase {k}", "body": "b",
                              "validation": f"test -f s{i}-{k}.txt"}) for k in (1, 2)] + [tool("finish", {})]})
    for k in (1, 2):
        routes.append({"when_offers": "send_message", "when_prompt_contains": f"# Phase {k} of spec `s{i}`",
                       "replies": [tool("write_file", {"path": f"s{i}-{k}.txt", "content": "x\n"}), text("done")]})
print(json.dumps({"routes": routes}))
PY

"$FAKE" script.json >fake.port &
FAKE_PID=$!
for _ in $(seq 100); do [[ -s fake.port ]] && break; sleep 0.1; done
PORT=$(head -n 1 fake.port)
export ANTHROPIC_API_KEY=sk-bench ANTHROPIC_BASE_URL=http://127.0.0.1:$PORT
export TASKDAEMON_LOG="info,taskdaemon_daemon::pipeline=debug,taskdaemon_git=debug"

"$TD" --workspace "$WS" init >/dev/null
# The default rate limit (1,000 requests a minute) would be the wall time.
sed -i -e 's/^scheduler_interval = .*/scheduler_interval = "1s"/' \
  -e 's/^requests_per_minute = .*/requests_per_minute = 1000000/' .taskdaemon/config.toml
PLAN=$("$TD" --workspace "$WS" new-plan "bench" | tail -n 1)
"$TD" --workspace "$WS" start >/dev/null
PID=$("$TD" --workspace "$WS" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
for _ in $(seq 600); do
  [[ $("$TD" --workspace "$WS" plan show "$PLAN" --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("title"))') == bench ]] && break
  sleep 0.1
done
log "$PLAN submitted; approving and timing $SPECS specs x 2 phases"
START=$(date +%s.%N)
"$TD" --workspace "$WS" plan approve "$PLAN" >/dev/null
STATUS=
for _ in $(seq 6000); do
  STATUS=$("$TD" --workspace "$WS" plan show "$PLAN" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  [[ $STATUS == succeeded || $STATUS == failed || $STATUS == cancelled ]] && break
  sleep 0.2
done
END=$(date +%s.%N)
if [[ $STATUS != succeeded ]]; then
  "$TD" --workspace "$WS" plan show "$PLAN" --json | python3 -c '
import json, sys
tree = json.load(sys.stdin)
print("plan note:", tree.get("note"), file=sys.stderr)
for spec in tree["specs"]:
    if spec["status"] != "succeeded":
        print(spec["id"], spec["status"], spec.get("note"), file=sys.stderr)'
fi
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
"$TD" --workspace "$WS" stop >/dev/null 2>&1 || true

python3 - "$START" "$END" "$RSS_KB" "$SPECS" "$STATUS" .taskdaemon/daemon.log <<'PY'
import re, sys
start, end, rss_kb, specs, status, path = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
wall = end - start
passes = git_ms = 0.0
npasses = ngit = 0
full_us = full_n = 0
for line in open(path, errors="replace"):
    m = re.search(r"scheduler pass.*micros=(\d+)|micros=(\d+).*scheduler pass", line)
    if m:
        us = int(m.group(1) or m.group(2))
        passes += us; npasses += 1
        if "full=true" in line:
            full_us += us; full_n += 1
    m = re.search(r"elapsed_ms=([0-9.]+)", line)
    if m and "taskdaemon_git" in line:
        git_ms += float(m.group(1)); ngit += 1
# pending->running->succeeded for the plan, each spec and each phase.
transitions = 2 * (1 + specs + 2 * specs)
print(f"plan: {status}, {specs} specs x 2 phases")
print(f"wall time (approve -> succeeded): {wall:.2f} s")
print(f"scheduler: {npasses} passes, {passes/1000:.1f} ms in all, {passes/1000/transitions:.3f} ms per transition ({transitions} transitions; goal < 1 ms)")
print(f"  of which {full_n} full passes (every plan read from the store): {full_us/1000:.1f} ms; {npasses-full_n} from memory: {(passes-full_us)/1000:.1f} ms")
print(f"daemon peak RSS: {rss_kb/1024:.1f} MiB (goal < 100 MiB)")
print(f"git: {ngit} commands, {git_ms/1000:.2f} s summed, {100*git_ms/1000/wall:.0f}% of the wall time")
PY

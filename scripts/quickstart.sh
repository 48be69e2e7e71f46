#!/usr/bin/env bash
# Builds taskdaemon and runs its main job on the embedded default (SQLite, no setup):
# a workspace in a scratch directory, a supervised "build" that outlives a daemon
# crash, its exit code, and the rehydrate summary an agent would get after compaction.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's own progress (a bar on a terminal, one line per crate otherwise):
# the first release build compiles ~200 crates and takes a few minutes.
echo "Building target/release/taskdaemon (the first build takes a few minutes) ..."
cargo build --release
td="$PWD/target/release/taskdaemon"
demo=$(mktemp -d "${TMPDIR:-/tmp}/taskdaemon-demo.XXXXXX")
trap '"$td" --workspace "$demo" stop >/dev/null 2>&1 || true' EXIT
cd "$demo"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step taskdaemon init;                       "$td" init
step taskdaemon spawn --tool claude -- sh -c '...build...'
build=$("$td" spawn --tool claude --name build -- sh -c 'for i in 1 2 3; do echo "compiling step $i"; sleep 1; done; echo "error: 1 test failed" >&2; exit 1')
echo "$build"
step taskdaemon spawn --tool claude -- sleep 600
server=$("$td" spawn --tool claude --name server -- sleep 600)
echo "$server"
step taskdaemon ps;                         "$td" ps
step 'kill -9 <daemon pid>   # the daemon crashes; nothing it supervises does'
daemon_pid=$("$td" status --json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
kill -9 "$daemon_pid"
# SIGKILL is delivered asynchronously: wait (up to 10 s) until the process is
# really gone, so `status` does not catch the dying daemon still holding its lock.
for _ in $(seq 1 100); do
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
"$td" status
step "taskdaemon wait $build   # works without the daemon";  "$td" wait "$build" || echo "(exit code $?)"
step "taskdaemon logs $build --stderr";     "$td" logs "$build" --stderr
step taskdaemon rehydrate;                  "$td" rehydrate
step "taskdaemon kill $server   # restarts the daemon, which re-adopts the server"; "$td" kill "$server"
step 'taskdaemon ps --all';                 "$td" ps --all
step 'tracked work: taskdaemon task add "Fix the failing test" --after ... ; task start; remember'
export TASKDAEMON_SESSION=demo-session
fix=$("$td" task add "Fix the failing test" --priority high)
ship=$("$td" task add "Ship the release" --after "$fix")
"$td" task start "$fix"
"$td" task context "$fix" --file src/lib.rs
"$td" remember "keep the old API; add a new function instead" --kind decision --task "$fix"
step "taskdaemon task ready   # $ship waits for $fix";  "$td" task ready
step taskdaemon task resume;                "$td" task resume
step 'taskdaemon search API';               "$td" search API
step 'cat .auto-dev/tasks/current.json | head -20'; head -20 .auto-dev/tasks/current.json
step 'cat .claude/process_registry.json | head -12'; head -12 .claude/process_registry.json
echo; echo "Workspace left in $demo"

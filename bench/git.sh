#!/usr/bin/env bash
# Benchmark for issue 15: what git costs one spec of a plan, for the
# pipeline bench's "git's share of the time": creating its worktree (with a
# .worktreeinclude copy), committing a phase, rebasing on a target that
# moved, merging (fast-forward and merge commit into the checked-out
# target), removing the worktree and branch, and one MainWatcher poll.
#
#   bash bench/git.sh
#
# Knobs: GIT_ROUNDS (20 specs), GIT_FILES (200 files in the repository).
# Figures only: nothing fails on them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo bench --quiet -p taskdaemon-git --bench git

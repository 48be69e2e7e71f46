#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, and every unit, property and
# integration test (real processes, signals, SQLite files and sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast

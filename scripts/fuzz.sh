#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each
# (default 20), starting from the committed seeds in fuzz/seeds/<target>/.
# New inputs the fuzzer finds go to fuzz/corpus/<target>/ (not committed);
# a crash or hang is saved under fuzz/artifacts/<target>/ and fails the run,
# after every target has had its turn.
#
# cargo-fuzz needs no nightly here: with `--sanitizer none` it passes only
# stable -C flags (SanitizerCoverage through LLVM arguments). RUSTC_BOOTSTRAP
# covers a cargo-fuzz that adds a -Z flag. Builds are release with debug
# assertions and overflow checks, so an overflow is a crash, as in tests.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
# The build lives under the main target/ (target/fuzz), so whatever keeps
# target/ between CI runs keeps it too: a first build takes long (every
# dependency in release with coverage instrumentation), later ones seconds.
flags=(--sanitizer none --codegen-units 16 --target-dir ../target/fuzz)
cd fuzz
cargo fuzz build "${flags[@]}"
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  case "$target" in
    task_document | config_toml | loop_types) dict=dicts/yaml.dict ;;
    *) dict=dicts/json.dict ;;
  esac
  echo "== fuzz $target for ${seconds}s"
  # -timeout: an input taking over 10 s is a hang; -rss_limit_mb: a blow-up.
  if ! cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$dict" -print_final_stats=1; then
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes or hangs in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash or hang"

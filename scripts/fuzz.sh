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
# libFuzzer reports every new input; that chatter goes to a log per target
# (target/fuzz/logs/) so CI's output stays readable. A failing target's log
# tail is printed.
logs=../target/fuzz/logs
mkdir -p "$logs"
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  case "$target" in
    task_document | config_toml | loop_types) dict=dicts/yaml.dict ;;
    *) dict=dicts/json.dict ;;
  esac
  log="$logs/$target.log"
  # -timeout: an input taking over 10 s is a hang; -rss_limit_mb: a blow-up.
  if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$dict" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    echo "fuzz: $target ran ${seconds}s, ${runs:-?} inputs, no crash or hang"
  else
    echo "fuzz: $target FAILED; the end of $log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes or hangs in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash or hang"

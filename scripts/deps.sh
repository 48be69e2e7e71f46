#!/usr/bin/env bash
# The dependency audit: licences, sources and duplicate versions from cargo
# metadata (always), and RustSec advisories with `cargo audit` when it is
# installed and TASKDAEMON_ADVISORY_DB names a local copy of the advisory
# database (this machine cannot fetch it: github.com does not resolve).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/deps.py
if [[ -n ${TASKDAEMON_ADVISORY_DB:-} ]] && command -v cargo-audit >/dev/null; then
  cargo audit --no-fetch --db "$TASKDAEMON_ADVISORY_DB" --deny warnings
else
  echo "NOTICE: advisories not checked (needs cargo-audit and TASKDAEMON_ADVISORY_DB)" >&2
fi

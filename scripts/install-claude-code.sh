#!/usr/bin/env bash
# Installs the real Claude Code CLI (@anthropic-ai/claude-code) for the tests
# that run it against the local fake LLM server, and prints its path.
#
#   bash scripts/install-claude-code.sh     # -> .../target/claude-code/node_modules/.bin/claude
#
# Idempotent: a cache under the cargo target dir is reused while it holds the
# wanted version (CLAUDE_CODE_VERSION, pinned so CI sees one wire behaviour).
# Exit codes: 0 installed (path on stdout), 3 the npm registry is unreachable
# (the caller may skip, loudly), 1 anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${CLAUDE_CODE_VERSION:-2.1.197}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
PREFIX=$TARGET/claude-code
CLAUDE=$PREFIX/node_modules/.bin/claude

installed() {
  [[ -x $CLAUDE ]] && [[ "$("$CLAUDE" --version 2>/dev/null)" == "$VERSION "* ]]
}

if ! installed; then
  if ! command -v npm >/dev/null; then
    echo "install-claude-code: npm is not installed" >&2
    exit 3
  fi
  if ! timeout 30 npm ping >/dev/null 2>&1; then
    echo "install-claude-code: the npm registry is unreachable" >&2
    exit 3
  fi
  mkdir -p "$PREFIX"
  # The package's postinstall links the native binary for this platform.
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$VERSION" >&2
  installed || { echo "install-claude-code: $CLAUDE does not run after install" >&2; exit 1; }
fi
echo "$CLAUDE"

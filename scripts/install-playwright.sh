#!/usr/bin/env bash
# Installs playwright-core (the Playwright library without its browser
# downloads) for the dashboard's browser test, and prints the directory to
# put on NODE_PATH. The test drives Debian's chromium (/usr/bin/chromium).
#
#   bash scripts/install-playwright.sh     # -> .../target/playwright/node_modules
#
# Idempotent: a cache under the cargo target dir is reused while it holds the
# wanted version (PLAYWRIGHT_VERSION). Exit codes: 0 installed (path on
# stdout), 3 npm or its registry is unavailable (the caller may skip,
# loudly), 1 anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${PLAYWRIGHT_VERSION:-1.65.1}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
PREFIX=$TARGET/playwright
MODULES=$PREFIX/node_modules

installed() {
  [[ -f $MODULES/playwright-core/package.json ]] &&
    grep -q "\"version\": \"$VERSION\"" "$MODULES/playwright-core/package.json"
}

if ! installed; then
  if ! command -v npm >/dev/null; then
    echo "install-playwright: npm is not installed" >&2
    exit 3
  fi
  if ! timeout 30 npm ping >/dev/null 2>&1; then
    echo "install-playwright: the npm registry is unreachable" >&2
    exit 3
  fi
  mkdir -p "$PREFIX"
  # playwright-core never downloads browsers.
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "playwright-core@$VERSION" >&2
  installed || { echo "install-playwright: playwright-core@$VERSION is missing after install" >&2; exit 1; }
fi
echo "$MODULES"

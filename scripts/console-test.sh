#!/usr/bin/env bash
# The console's browser test: a devnet, an invocation and a refused request through the CLI, then
# node/tests/console/console.test.mjs drives the console in headless Chromium (Debian's chromium, playwright-core).
# Usage: scripts/console-test.sh [SIGIL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
sigil=${1:-${CARGO_TARGET_DIR:-target}/debug/sigil}
[ -x "$sigil" ] || { echo "console-test: no sigil binary at $sigil (cargo build -p sigil first)" >&2; exit 2; }
command -v chromium >/dev/null || { echo "console-test: chromium is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
(cd node/tests/console && npm ci --no-audit --no-fund --silent)

. scripts/devnet-lib.sh
devnet_up "$sigil"
key="$dir/pod/keys/caller.key"
"$sigil" invoke --api "$api" --key "$key" notes put --args '{"key":"console","value":"hello"}' >/dev/null 2>&1
task=$("$sigil" invoke --api "$api" --key "$key" notes get --args '{"key":"console"}' --receipt-out "$dir/r.cose" --json 2>/dev/null |
  python3 -c "import json,sys; print(json.load(sys.stdin)['request_hash'])")
"$sigil" invoke --api "$api" --key "$key" notes nope >/dev/null 2>&1 || true   # refused and audited
caller=$("$sigil" keys show "$key")
CONSOLE="$api/" RECEIPT="$dir/r.cose" TASK="$task" CALLER="$caller" CALLER_KEY="$key" AUDITOR_KEY="$dir/pod/keys/auditor.key" \
  SCREENSHOT="${SCREENSHOT:-}" \
  node node/tests/console/console.test.mjs

#!/usr/bin/env bash
# The test command: format check, clippy with warnings denied, the whole test suite, a short fuzz smoke run
# of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz smoke run (each target ${FUZZ_SECONDS:-10}s from the real vectors)"
./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

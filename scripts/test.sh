#!/usr/bin/env bash
# The test command: format check, clippy with warnings denied (the main workspace and the applets), the shipped
# feature set, the verifier crates for wasm32-unknown-unknown and at the MSRV, cargo-deny, the whole test suite
# (with the tidy test), the console's browser test, the network-fault test of a pod across network namespaces,
# and a short fuzz smoke run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --all --manifest-path applets/Cargo.toml -- --check
echo "== cargo clippy (warnings are errors)"
# Clippy only checks: nothing is linked, so RocksDB's C++ need not be built for it. Pointing librocksdb-sys at a
# library directory makes its build script print link flags instead of compiling RocksDB. (Clippy builds the
# build scripts' own dependencies, bindgen's among them, under other hashes than `cargo test` does, whatever the
# profile; so a clippy that compiled RocksDB compiled it a second time, about 20 minutes of a cold run.)
check_only=(env ROCKSDB_LIB_DIR="$CARGO_TARGET_DIR/no-rocksdb-when-only-checking" ROCKSDB_STATIC=1)
"${check_only[@]}" cargo clippy --workspace --all-targets --all-features --locked --profile test -- -D warnings
(cd applets && cargo clippy --target wasm32-wasip1 --release --locked -- -D warnings)
echo "== the shipped feature set builds (what \`cargo build -p sigil\` makes, no test-only features)"
"${check_only[@]}" cargo clippy -p sigil --locked --profile test -- -D warnings
echo "== the verifier crates build for the browser (wasm32-unknown-unknown) and at the declared MSRV"
RUSTFLAGS="-D warnings" cargo check --target wasm32-unknown-unknown -p sigil-primitives -p sigil-attest -p sigil-ledger --locked
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
cargo "+$msrv" check -p sigil-primitives -p sigil-attest -p sigil-ledger --locked
echo "== cargo deny (licences, duplicate versions, sources)"
cargo deny --all-features --locked check bans licenses sources
echo "== cargo test"
log=$(mktemp); trap 'rm -f "$log"' EXIT
cargo test --workspace --all-features --locked 2>&1 | tee "$log"
# Totals over every test binary, printed last as the plain "N passed, N failed" line.
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } } END { printf "%d passed, %d failed", p, f }' "$log")
echo "== the console in headless Chromium"
./scripts/console-test.sh "$CARGO_TARGET_DIR/debug/sigil"
echo "== infra: Terraform, cloud-init and the systemd unit, checked offline (infra/check.py, with its self-test)"
"$HOME/.cache/sigil-venv/bin/python" infra/check.py --self-test
echo "== a pod across network namespaces, with links cut, degraded and restored (infra/local/faults.sh)"
status=0
./infra/local/faults.sh "$CARGO_TARGET_DIR/debug/sigil" || status=$?
if [ "$status" -eq 2 ]; then
  echo "(skipped: network namespaces are not available here)"
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
# A smoke run: each target a few seconds from the real vectors (hundreds of thousands of inputs each), to keep a
# cold CI under 45 minutes; scripts/fuzz.sh 300 is the long run.
echo "== fuzz smoke run (each target ${FUZZ_SECONDS:-3}s from the real vectors)"
FUZZ_PROFILE="${FUZZ_PROFILE:-smoke}" ./scripts/fuzz.sh "${FUZZ_SECONDS:-3}"
echo
echo "$totals"

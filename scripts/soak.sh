#!/usr/bin/env bash
# The soak (not in CI): a 4-node pod of `sigil node run` processes under honest load at half the throughput it
# measured quietly, with a node killed and restarted every minute and a stranger flooding garbage, slow
# connections and token requests; then every acknowledged receipt is verified and the nodes' roots compared
# (node/tests/it/soak.rs). The nodes run the release `sigil` when one is built (cargo build --release -p sigil),
# else the debug one; the load comes from the test build. Usage: scripts/soak.sh [SECONDS]
# (the loaded part; default 600, plus about two minutes around it). SOAK_PROPOSE_MS=N sets the nodes' round-0
# propose timeout (default 1000), which is what each turn of a killed proposer costs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
if [ -z "${SIGIL_BIN:-}" ] && [ -x "$CARGO_TARGET_DIR/release/sigil" ]; then
  export SIGIL_BIN="$CARGO_TARGET_DIR/release/sigil"
fi
echo "soak: the nodes run ${SIGIL_BIN:-the debug sigil of the test build}"
SOAK_SECONDS="${1:-600}" cargo test -p sigil --all-features --locked --test it soak::soak -- --ignored --nocapture

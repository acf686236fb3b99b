#!/usr/bin/env bash
# The main job, as far as it exists: build `sigil`, run a local pod (`sigil devnet`: consensus only until the node
# issue brings its HTTP API and applets), verify the real AMD SEV-SNP and Intel TDX evidence bundled in
# attest/testdata plus simulated evidence, verify an example receipt, and run the example applets in the enclave
# runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
cargo build --release --locked --bin sigil
sigil="$CARGO_TARGET_DIR/release/sigil"
v=attest/testdata
run() { echo; echo "\$ sigil $*"; "$sigil" "$@" || echo "(exit $?)"; }
echo "== Real evidence from AMD and Intel hardware (see attest/testdata/SOURCES.md)"
run attest verify "$v/sev-snp/virtee-milan-v2.report.hex" --cert "$v/sev-snp/virtee-milan-v2.vcek.der" --now 2025-01-01T00:00:00Z
run attest verify "$v/sev-snp/gsg-milan-v2.report.bin" --cert "$v/sev-snp/gsg-milan-v2.vcek.der" --now 2025-01-01T00:00:00Z
run attest verify "$v/tdx/dcapqvl-b0c06f-v4.quote.bin" --collateral "$v/tdx/dcapqvl-b0c06f-v4.collateral.json" --now 2025-07-01T00:00:00Z
echo
echo "== Simulated TEE (INSECURE; refused unless the policy opts in)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$sigil" attest collect --sim --report-data "$(printf '%0128x' 42)" --out "$tmp/sim.cbor"
printf '[sim]\nallow = true\n' > "$tmp/sim.toml"
run attest verify "$tmp/sim.cbor"
run attest verify "$tmp/sim.cbor" --policy "$tmp/sim.toml"
echo
echo "== A ledger receipt, verified offline with nothing but the pod's genesis (example log, TEST keys)"
"$sigil" receipt example --out "$tmp/example"
run receipt verify "$tmp/example/receipt.cose" --genesis "$tmp/example/genesis.cbor"
echo
echo "== Applets in the enclave runtime (built from applets/ for wasm32-wasip1; nothing is signed or committed)"
(cd applets && cargo build --release --locked --quiet --target wasm32-wasip1)
w="$CARGO_TARGET_DIR/wasm32-wasip1/release"
run applet check applets/notes/sigil.toml "$w/notes.wasm"
run applet run applets/notes/sigil.toml "$w/notes.wasm" put --args '{"key":"hello","value":"world"}' --state "$tmp/state.json"
run applet run applets/notes/sigil.toml "$w/notes.wasm" get --args '{"key":"hello"}' --state "$tmp/state.json"
run applet run applets/runaway/sigil.toml "$w/runaway.wasm" spin
run applet run applets/runaway/sigil.toml "$w/runaway.wasm" egress --args http://169.254.169.254/latest/meta-data/
echo
echo "== A local pod: 4 nodes on 127.0.0.1 agreeing through Malachite consensus (simulated TEEs), then resumed"
run devnet --nodes 4 --data "$tmp/pod" --for 6
run devnet --nodes 4 --data "$tmp/pod" --for 4
echo
echo "Next: sigil devnet --help, sigil node run --help, sigil attest verify --help, sigil receipt verify --help,"
echo "sigil applet run --help; docs/consensus.md, docs/attestation.md, docs/receipts.md, docs/applets.md."
echo "The devnet's HTTP API, deployed applets and devnet.json arrive with the node issue."

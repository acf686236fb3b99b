#!/usr/bin/env bash
# The main job, until `sigil devnet` exists (it comes with the node issue): build `sigil` and verify the real
# AMD SEV-SNP and Intel TDX evidence bundled in attest/testdata, plus simulated evidence, showing each verdict;
# verify an example receipt; run the example applets in the enclave runtime.
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
echo "Next: sigil attest verify --help, sigil receipt verify --help, sigil applet run --help, docs/attestation.md,"
echo "docs/receipts.md, docs/applets.md."
echo "sigil devnet (a local pod) is not built yet: it arrives with the consensus and node issues."

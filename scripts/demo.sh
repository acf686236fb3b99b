#!/usr/bin/env bash
# A tour: build `sigil`, verify the real AMD SEV-SNP and Intel TDX evidence bundled in attest/testdata plus
# simulated evidence, verify an example receipt, run the example applets locally, then start a devnet and invoke
# an applet through its API, verify the receipt offline, and read the audit log.
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
echo "== A local pod: 4 nodes on 127.0.0.1 (simulated TEEs), applets deployed, a signed invocation, its receipt"
"$sigil" devnet --nodes 4 --data "$tmp/pod" >"$tmp/devnet.out" 2>"$tmp/devnet.err" &
devnet=$!
trap 'kill $devnet 2>/dev/null; wait $devnet 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 240); do [ -f "$tmp/pod/devnet.json" ] && break; sleep 0.5; done
cat "$tmp/devnet.out"
api=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['api'][0])" "$tmp/pod/devnet.json")
run invoke --api "$api" --key "$tmp/pod/keys/caller.key" notes put --args '{"key":"hello","value":"world"}' --receipt-out "$tmp/r.cose"
run invoke --api "$api" --key "$tmp/pod/keys/caller.key" notes get --args '{"key":"hello"}'
run receipt verify "$tmp/r.cose" --genesis "$tmp/pod/genesis.cbor"
run audit --api "$api" --key "$tmp/pod/keys/auditor.key"   # the record answers a key: the auditor reads it all
echo
echo "== MCP: the pod's applets as tools, called by the official MCP Python SDK (OAuth with the caller's key)"
run mcp pin --api "$api" --out "$tmp/node.pem"
py="${HOME}/.cache/sigil-venv/bin/python"
summary=$(cat <<'PY'
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["event"] == "initialized":
        a = e["attestation"]
        print("initialized:", e["server"], e["protocol"], "- node", a["node"], "of pod", a["pod"] + ":", a["platform"], a["verdict"])
    elif e["event"] == "tools":
        print("tools:", ", ".join(t["name"] for t in e["tools"]))
    else:
        r = e["meta"]["io.sigil/receipt"]
        print(e["tool"] + ":", e["text"][0][:90], "(entry", r["index"], "task", r["request_hash"][:16] + "...,", len(r["receipt"]), "base64 chars of receipt)")
PY
)
if [ -x "$py" ]; then
  "$py" node/tests/mcp/interop.py "$api/mcp" "$tmp/node.pem" "$tmp/pod/keys/caller.key" demo "$api/oauth/devnet" \
    '[["tools.create_ticket",{"title":"Printer on fire","body":"3rd floor","priority":"high"}],["tools.search_tickets",{"query":"printer"}]]' |
    python3 -c "$summary"
else
  echo "(the MCP Python SDK is not installed: scripts/setup.sh installs it)"
fi
echo
echo "Next: ./scripts/devnet.sh (a devnet that stays up), sigil devnet --help, sigil invoke --help,"
echo "docs/node.md, docs/mcp.md, docs/consensus.md, docs/attestation.md, docs/receipts.md, docs/applets.md."

#!/usr/bin/env bash
# Runs the attestation, ledger and enclave-runtime benchmarks and prints each measurement as a ratio to its
# baseline from the same run.
#   scripts/bench.sh [criterion args...]     e.g. scripts/bench.sh --measurement-time 5
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "${CARGO_TARGET_DIR:=$HOME/.cache/sigil-target}"
# Absolute: criterion writes its reports under $CARGO_TARGET_DIR from the package directory.
CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
export CARGO_TARGET_DIR
cargo bench -p sigil-attest --bench verify --locked -- "$@"
cargo bench -p sigil-ledger --bench ledger --features rocksdb --locked -- "$@"
# A bench binary of its own (p50/p99 need every sample): prints its ratios to raw wasmtime itself.
cargo bench -p sigil-runtime --bench invoke --locked
crit="$CARGO_TARGET_DIR/criterion"
median() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$crit/$1/new/estimates.json"; }
ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f"{a/1000:9.1f} us  {a/b:5.2f}x of baseline ({b/1000:.1f} us)")' "$1" "$2"; }
echo
echo "median, and ratio to the baseline measured in this run:"
sev=$(median "snp/sev_crate_baseline")
floor=$(median "snp/ring_p384_verify_floor")
dcap=$(median "tdx/dcap_qvl_verify_baseline")
printf '%-28s %s\n' "snp verify, chain cold" "$(ratio "$(median "snp/verify_chain=cold")" "$sev")"
printf '%-28s %s\n' "snp verify, chain cached" "$(ratio "$(median "snp/verify_chain=cached")" "$sev")"
printf '%-28s %s\n' "  (cached, vs P-384 floor)" "$(ratio "$(median "snp/verify_chain=cached")" "$floor")"
printf '%-28s %s\n' "tdx verify, collateral" "$(ratio "$(median "tdx/verify_collateral")" "$dcap")"
printf '%-28s %s\n' "tdx verify, offline" "$(ratio "$(median "tdx/verify_offline")" "$dcap")"
printf '%-28s %s\n' "merkle append" "$(ratio "$(median "merkle/append")" "$(median "merkle/sha256_leaf")")"
printf '%-28s %s\n' "receipt verify (4 validators)" "$(ratio "$(median "receipt/verify_validators=4")" "$(median "receipt/ed25519_verify_x4")")"
printf '%-28s %s\n' "inclusion proof, 2^20 leaves" "$(ratio "$(median "merkle/inclusion_proof_size=2_20")" "$(median "merkle/sha256_leaf")")"
mem=$(median "store/append_block_kv=memory,entries=100")
rocks=$(median "store/append_block_kv=rocksdb,entries=100")
printf '%-28s %s\n' "block of 100, RocksDB" "$(ratio "$rocks" "$mem")"
python3 -c 'import sys; m,r=float(sys.argv[1]),float(sys.argv[2]); print(f"appends/s: memory {100e9/m:,.0f}, RocksDB (synced per block of 100) {100e9/r:,.0f}")' "$mem" "$rocks"

#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer coverage instrumentation (stable Rust: the same flags cargo-fuzz
# passes) and runs each for a short time from the seed corpus of real vectors. Any crash fails the run.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# FUZZ_PROFILE=smoke builds with fuzz/Cargo.toml's smoke profile (faster to build, slower to run: CI's smoke run).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-15}"; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(snp_report tdx_quote azure_hcl bundle verify_any ledger_entry checkpoint proof_malleability receipt applet_manifest http_response signed_request write_set client_assertion ovmf tdvf pod_codec pod_block tpm_quote event_log)
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}/fuzz}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the instrumentation out of build scripts and proc macros (as cargo-fuzz does).
host=$(rustc -vV | sed -n 's/^host: //p')
profile="${FUZZ_PROFILE:-release}"
cargo build --profile "$profile" --locked --bins --target "$host"
v=../attest/testdata
for t in "${targets[@]}"; do
  corpus="corpus/$t"; mkdir -p "$corpus"
  case "$t" in
    snp_report) cp "$v"/sev-snp/*.report.bin "$corpus"/ ;;
    tdx_quote) cp "$v"/tdx/*.quote.bin "$corpus"/ ;;
    azure_hcl) cp "$v"/sev-snp-azure/*.hcl.bin "$v"/tdx/*.hcl.bin "$corpus"/ ;;
    bundle|verify_any) cp "$v"/sev-snp/*.report.bin "$v"/tdx/*.quote.bin "$v"/sev-snp-azure/*.hcl.bin "$corpus"/ ;;
    ledger_entry) python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))" ../ledger/testdata/conformance/genesis.cbor.hex > "$corpus/genesis.cbor" ;;
    checkpoint) printf 'pod.example\n42\nn4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\nsigil-validators n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n\n\xe2\x80\x94 node-0 AAAAAAAAAAAA\n' > "$corpus/note" ;;
    receipt) python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))" ../ledger/testdata/conformance/receipt.cose.hex > "$corpus/receipt.cose" ;;
    applet_manifest) for f in ../applets/*/sigil.toml; do cp "$f" "$corpus/$(basename "$(dirname "$f")").toml"; done ;;
    http_response) printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' > "$corpus/chunked"
                   printf 'HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nok' > "$corpus/redirect" ;;
    signed_request) python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))" ../ledger/testdata/conformance/signed-request.cbor.hex > "$corpus/request.cbor"
                    python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))" ../ledger/testdata/conformance/delegated-request.cbor.hex > "$corpus/delegated.cbor" ;;
    ovmf|tdvf) [ -f /usr/share/ovmf/OVMF.fd ] && tail -c 8192 /usr/share/ovmf/OVMF.fd > "$corpus/ovmf-tail.bin" ;;
    client_assertion) cp ../ledger/testdata/conformance/client-assertion.jwt "$corpus/seed.jwt" ;;
    write_set) printf '\xa3\x65lists\x80\x65reads\x81\x83\x65notes\x41k\x03\x66writes\x81\x83\x65notes\x41k\x41v' > "$corpus/ws" ;;
    pod_block|pod_codec) python3 -c "
import struct, sys
key = lambda k: bytes([0x60 + len(k)]) + k.encode()
b32 = lambda: bytes([0x58, 32]) + bytes(32)
block = (bytes([0xa7]) + key('pod') + b'\\x61p' + key('height') + b'\\x02' + key('entries') + b'\\x80'
         + key('time_ms') + b'\\x1b' + struct.pack('>Q', 1764000000500) + key('proposer') + b32()
         + key('parent_root') + b32() + key('parent_size') + b'\\x01')
sys.stdout.buffer.write(block)" > "$corpus/block.cbor" ;;
    tpm_quote) python3 -c "
import json, sys
q = json.load(open(sys.argv[1]))['quote']
open(sys.argv[2] + '/attest', 'wb').write(bytes(q['message']))
open(sys.argv[2] + '/signature', 'wb').write(bytes([0, 0x14, 0, 0x0b, 1, 0]) + bytes(q['signature']))" "$v"/sev-snp-azure/azure-genoa-v3.evidence.json "$corpus" ;;
    event_log) cp "$v"/eventlogs/*.bin "$corpus"/ ;;
    proof_malleability) printf '\x10\x02\x07\x00\x00\x03\x05\x99' > "$corpus/seed" ;;
  esac
  echo "== fuzz $t for ${secs}s"
  mkdir -p artifacts; log=$(mktemp)
  status=0
  "$CARGO_TARGET_DIR/$host/$profile/$t" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t-" "$corpus" >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY)|panicked|ERROR" "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/:" >&2
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
done

#!/usr/bin/env bash
# What an idle pod writes: runs a 4-node devnet with no traffic for SECONDS (default 120) after a warm-up, and
# reports the heights it committed and the growth of each node's data directory, then a day's worth at that rate.
# Not in CI (it only measures). Usage: scripts/idle-growth.sh [SIGIL_BINARY] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
sigil=${1:-${CARGO_TARGET_DIR:-target}/release/sigil}
seconds=${2:-120}
[ -x "$sigil" ] || { echo "idle-growth: no sigil binary at $sigil (cargo build --release -p sigil)" >&2; exit 2; }
. scripts/devnet-lib.sh
devnet_up "$sigil"
height() { curl -sk "$api/healthz" | python3 -c "import json,sys; print(json.load(sys.stdin)['height'])"; }
bytes() { du -sb "$dir/pod" | cut -f1; }
sleep 10 # the deployments settle; RocksDB flushes its first memtables
h0=$(height); b0=$(bytes); t0=$(date +%s.%N)
sleep "$seconds"
h1=$(height); b1=$(bytes); t1=$(date +%s.%N)
python3 - "$h0" "$h1" "$b0" "$b1" "$t0" "$t1" <<'PY'
import sys
h0, h1, b0, b1 = (int(x) for x in sys.argv[1:5])
t = float(sys.argv[6]) - float(sys.argv[5])
blocks, grown = h1 - h0, b1 - b0
print(f"idle {t:.0f} s: {blocks} blocks ({blocks / t:.1f}/s), data of 4 nodes +{grown / 1e6:.2f} MB "
      f"({grown / max(blocks, 1) / 4:.0f} B per block per node)")
day = 86400 / t
print(f"a day at this rate: {blocks * day:,.0f} blocks, {grown * day / 4 / 1e9:.2f} GB per node")
PY

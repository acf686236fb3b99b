#!/usr/bin/env bash
# README command one: set up, build `sigil` (release), and run `sigil devnet`: a local pod of 4 nodes on 127.0.0.1
# with simulated TEEs, the example applets deployed, the HTTPS API and console up, DIR/devnet.json written.
# Arguments go to `sigil devnet` (default --data sigil-devnet); Ctrl-C stops it, running it again resumes the pod.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
echo "building sigil (release; the first build takes a while)..."
cargo build --release --locked --bin sigil
exec "$CARGO_TARGET_DIR/release/sigil" devnet "$@"

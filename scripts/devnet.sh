#!/usr/bin/env bash
# README command one: set up what building needs, build `sigil` (release), put it on PATH (~/.cargo/bin, where
# rustup puts cargo), and run `sigil devnet`: a local pod of 4 nodes on 127.0.0.1 with simulated TEEs, the
# example applets deployed, the HTTPS API and console up, DIR/devnet.json written. Arguments go to `sigil devnet`
# (default --data sigil-devnet); Ctrl-C stops it, running it again resumes the pod.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh build
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
echo "building sigil (release; the first build takes a while)..."
cargo build --release --locked -p sigil --bin sigil
bin="${CARGO_HOME:-$HOME/.cargo}/bin"
mkdir -p "$bin"
install -m 0755 "$CARGO_TARGET_DIR/release/sigil" "$bin/sigil"
echo "installed $bin/sigil ($(du -h "$bin/sigil" | cut -f1))"
exec "$bin/sigil" devnet "$@"

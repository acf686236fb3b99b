#!/usr/bin/env bash
# Installs what building and testing Sigil needs on a fresh Debian machine. Idempotent; quiet when done.
#   scripts/setup.sh          everything the tests need (what CI runs)
#   scripts/setup.sh build    only what building and running `sigil` needs (scripts/devnet.sh)
set -euo pipefail
mode="${1:-test}"
case "$mode" in build|test) ;; *) echo "usage: scripts/setup.sh [build|test]" >&2; exit 2 ;; esac
need_apt=()
# Debian packages the build needs: libclang for librocksdb-sys (bindgen), clang to compile RocksDB; chromium for the
# console's browser test (driven by playwright-core from npm, with the machine's Node.js); ovmf, a real firmware
# build for the differential tests of `sigil measure snp`; iproute2, nftables and curl for infra/local/faults.sh (a pod
# across network namespaces); cloud-init and systemd (systemd-analyze) for infra/check.py; swtpm and tpm2-tools, a
# real TPM 2.0 and an independent TPM stack, for the Azure vTPM collection test; osslsigncode, an independent
# Authenticode implementation, for `sigil measure tdx`'s kernel digest; the node image's inputs and its boot test
# (infra/image): systemd's EFI stub, a static busybox, mtools and sfdisk for its disk, binutils (objcopy, strip), and
# QEMU to boot it with OVMF and swtpm.
APT_PACKAGES=(libclang-dev clang)
[ "$mode" = build ] || APT_PACKAGES+=(chromium ovmf iproute2 nftables curl cloud-init systemd swtpm swtpm-tools tpm2-tools osslsigncode systemd-boot-efi busybox-static mtools fdisk binutils qemu-system-x86)
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 2; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
# Applets (applets/) compile to WebAssembly for the enclave runtime (sigil-example-applets builds them into
# `sigil`). The tests also check the verifier crates for the browser target (wasm32-unknown-unknown) and with the
# declared minimum Rust version (rust-version in Cargo.toml), and the dependency tree with cargo-deny.
targets=(wasm32-wasip1)
[ "$mode" = build ] || targets+=(wasm32-unknown-unknown)
for target in "${targets[@]}"; do
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done
if [ "$mode" = build ]; then
  echo "setup: ok for building ($(cargo --version))"
  exit 0
fi
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml")
rustup toolchain list 2>/dev/null | grep -q "^$msrv" || rustup toolchain install "$msrv" --profile minimal --no-self-update
# cargo-deny checks the dependency tree (deny.toml); built once from crates.io into ~/.cargo/bin.
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION"; then
  echo "setup: installing cargo-deny $CARGO_DENY_VERSION (built from crates.io, a few minutes once)"
  cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi
command -v npm >/dev/null || { echo "setup: npm (Node.js) not found; the console test needs it" >&2; exit 2; }
(cd "$(dirname "$0")/../node/tests/console" && npm ci --no-audit --no-fund --silent)
# Implementations we did not write, for interoperability and differential tests: the official MCP Python SDK (a
# client of the node's MCP endpoint), IBM's sev-snp-measure (expected SNP launch digests) and python-hcl2 (the
# Terraform checks of infra/check.py).
venv="${HOME}/.cache/sigil-venv"
PY_PACKAGES=("mcp==2.3.0" "sev-snp-measure==0.0.13" "python-hcl2==8.1.4")
have_all() {
  for p in "${PY_PACKAGES[@]}"; do
    "$venv/bin/pip" show "${p%%==*}" 2>/dev/null | grep -qx "Version: ${p##*==}" || return 1
  done
}
if ! have_all; then
  echo "setup: installing ${PY_PACKAGES[*]} into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
# The node image's kernel: Debian's cloud kernel, extracted into ~/.cache/sigil-image (infra/image, its boot test).
"$(dirname "$0")/image-inputs.sh"
echo "setup: ok ($(cargo --version), node $(node --version))"

#!/usr/bin/env bash
# Fetches the inputs of Sigil's node image that are not on the machine: Debian's cloud kernel, extracted to
# ~/.cache/sigil-image/vmlinuz (with the package's name and SHA-256 in vmlinuz.source). Idempotent.
#   scripts/image-inputs.sh            # the current linux-image-cloud-amd64 of this machine's Debian release
# The other inputs (systemd's EFI stub, busybox-static, mtools, sfdisk, OVMF, QEMU, swtpm) are Debian packages
# scripts/setup.sh installs; the sigil binary is yours. See docs/measure.md, "The node image".
set -euo pipefail
cache="${SIGIL_IMAGE_CACHE:-$HOME/.cache/sigil-image}"
[ -s "$cache/vmlinuz" ] && exit 0
mkdir -p "$cache"
work=$(mktemp -d); chmod 755 "$work"; trap 'rm -rf "$work"' EXIT
# The metapackage names the current kernel package; take that one.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
[ -n "$pkg" ] || { echo "image-inputs: no linux-image-cloud-amd64 in apt's lists (apt-get update?)" >&2; exit 2; }
(cd "$work" && apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null)
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/x"
cp "$work"/x/boot/vmlinuz-* "$cache/vmlinuz"
printf '%s %s\n' "$(basename "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)" > "$cache/vmlinuz.source"
echo "image-inputs: $(cat "$cache/vmlinuz.source") -> $cache/vmlinuz"

#!/usr/bin/env bash
# Boots Sigil's node image (infra/image/build.py) under QEMU with Debian's OVMF and a swtpm vTPM, answers the
# image's challenge prompt, and prints the evidence bundle (hex) the image's sigil produced.
#
#   infra/image/boot.sh IMAGE_DIR STATE_DIR CHALLENGE_HEX > evidence.hex
#
# STATE_DIR holds the vTPM: on first use an endorsement key and a restricted RSA attestation key are made with
# tpm2-tools and the AK is made persistent at 0x81010002, as a platform provisions its vTPM; its TPM name is written
# to STATE_DIR/ak.name (hex), for the verifier's [vtpm] ak_names. QEMU runs without KVM (TCG) and without network;
# the serial console is logged to STATE_DIR/console.log. Exits non-zero if the image printed no evidence.
#
# SIGIL_BOOT_APPEND=TEXT boots the UKI as QEMU's -kernel with TEXT as its load options instead of from the disk:
# what a host that overrides the image's command line does (systemd's stub takes it, and measures it into PCR 12).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 IMAGE_DIR STATE_DIR CHALLENGE_HEX" >&2; exit 2; }
image=$1 state=$2 challenge=$3
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
for f in "$image/disk.raw" "$ovmf_code" "$ovmf_vars"; do
  [ -f "$f" ] || { echo "$0: $f is missing (scripts/setup.sh installs ovmf; infra/image/build.py makes disk.raw)" >&2; exit 2; }
done
for c in swtpm tpm2_createak qemu-system-x86_64; do
  command -v "$c" >/dev/null || { echo "$0: $c is not installed (scripts/setup.sh)" >&2; exit 2; }
done
mkdir -p "$state"
state=$(cd "$state" && pwd)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ ! -s "$state/ak.name" ]; then
  port=$(free_port); ctrl=$((port + 1))
  swtpm socket --tpm2 --tpmstate dir="$state" --flags not-need-init,startup-clear \
    --server type=tcp,port="$port",bindaddr=127.0.0.1 --ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  t=(-T "swtpm:host=127.0.0.1,port=$port")
  flush() { tpm2_flushcontext "${t[@]}" -t; tpm2_flushcontext "${t[@]}" -s; }
  tpm2_createek "${t[@]}" -c "$state/ek.ctx" -G rsa -u "$state/ek.pub" >/dev/null; flush
  tpm2_createak "${t[@]}" -C "$state/ek.ctx" -c "$state/ak.ctx" -G rsa -g sha256 -s rsassa -n "$state/ak.name.bin" >/dev/null
  flush
  tpm2_evictcontrol "${t[@]}" -C o -c "$state/ak.ctx" 0x81010002 >/dev/null
  tpm2_shutdown "${t[@]}" -c
  kill "$pid"; wait "$pid" 2>/dev/null || true; pids=()
  od -An -v -tx1 "$state/ak.name.bin" | tr -d ' \n' > "$state/ak.name"
fi

rm -f "$state/sock"
swtpm socket --tpm2 --tpmstate dir="$state" --ctrl type=unixio,path="$state/sock" &
pids+=("$!")
for _ in $(seq 50); do [ -S "$state/sock" ] && break; sleep 0.1; done
cp "$ovmf_vars" "$state/vars.fd"

if [ -n "${SIGIL_BOOT_APPEND:-}" ]; then
  boot=(-kernel "$image/sigil.efi" -append "$SIGIL_BOOT_APPEND")
else
  boot=(-drive "file=$image/disk.raw,format=raw,if=virtio,snapshot=on")
fi
# The image asks "challenge?" on the console and reads one line; QEMU's serial port is this script's pipe.
mkfifo "$state/in.$$"
exec 4<>"$state/in.$$"
rm -f "$state/in.$$"
qemu-system-x86_64 -machine q35 -m 2048 -smp 1 -nographic -no-reboot -monitor none -net none \
  -drive if=pflash,format=raw,unit=0,readonly=on,file="$ovmf_code" \
  -drive if=pflash,format=raw,unit=1,file="$state/vars.fd" \
  -chardev socket,id=chrtpm,path="$state/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0 \
  "${boot[@]}" \
  -serial stdio <&4 >"$state/console.log" 2>&1 &
qemu=$!; pids+=("$qemu")
answered=0
for _ in $(seq 600); do
  if [ $answered -eq 0 ] && grep -q "sigil-image: challenge?" "$state/console.log" 2>/dev/null; then
    echo "$challenge" >&4; answered=1
  fi
  kill -0 "$qemu" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$qemu" 2>/dev/null; then
  echo "$0: the image did not finish within 300 s; its console (last lines of $state/console.log):" >&2
  tr -d '\r' < "$state/console.log" | tail -20 >&2
  exit 1
fi
wait "$qemu" || true
sleep 0.2
evidence=$(tr -d '\r' < "$state/console.log" | sed -n '/-----BEGIN SIGIL EVIDENCE-----/,/-----END SIGIL EVIDENCE-----/p' | sed '1d;$d' | tr -d '\n')
if ! [[ "$evidence" =~ ^[0-9a-f]+$ ]]; then
  echo "$0: the image printed no evidence; its console (last lines of $state/console.log):" >&2
  tr -d '\r' < "$state/console.log" | tail -20 >&2
  exit 1
fi
echo "$evidence"

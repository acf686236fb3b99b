#!/usr/bin/env python3
"""Builds Sigil's measured node image, reproducibly: same inputs, same bytes.

    infra/image/build.py --kernel VMLINUZ --sigil BINARY --out DIR [--cmdline TEXT]

What it makes in DIR:
  initrd.img   a newc cpio (gzip -6, mtime 0, zero-padded to 512 bytes): /init (infra/image/init), busybox, sigil and the shared libraries
               it loads, every file owned by root, mode 0755 or 0644, mtime SOURCE_DATE_EPOCH, sorted by path
  cmdline      the kernel command line
  vmlinuz      the kernel, as given (for direct boot: QEMU -kernel/-initrd/-append, SEV-SNP kernel hashes)
  sigil.efi    the Unified Kernel Image: systemd's EFI stub with .osrel, .cmdline, .linux and .initrd sections
  disk.raw     a GPT disk with one EFI system partition holding sigil.efi as \\EFI\\BOOT\\BOOTX64.EFI: what a
               cloud imports as a custom image (Azure, GCP), or QEMU boots with OVMF
  manifest.json  the SHA-256 of every input and output

Inputs come from Debian packages (scripts/image-inputs.sh fetches the kernel; busybox-static, systemd-boot-efi
and mtools are installed by scripts/setup.sh) and the sigil binary. Reproducible: no timestamps but
SOURCE_DATE_EPOCH (default 1700000000), fixed GUIDs and FAT serial, sorted archives. A test builds twice and
compares (node/tests/it/image.rs).
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STUB = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# Fixed identities: the disk must not differ between two builds of the same inputs.
DISK_GUID = "5349474C-0000-4000-8000-000000000001"
ESP_GUID = "5349474C-0000-4000-8000-000000000002"
FAT_SERIAL = "0x5349474C"
MIB = 1 << 20


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def shared_libraries(binary):
    """The shared objects `binary` loads, as (path in the image, file on this machine)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0 and "not a dynamic executable" in (out.stdout + out.stderr):
        return []
    if out.returncode != 0:
        sys.exit(f"ldd {binary}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                libs.append(target)
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    return sorted(set(libs))


def newc(files, mtime):
    """A newc cpio of `files` ({path in archive: (mode, bytes or symlink target)}), sorted, root-owned."""
    out = bytearray()

    def record(ino, name, mode, data, nlink):
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, 0, 0, len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % v for v in fields) + nb)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    # Every directory a file needs, then everything in path order.
    entries = dict(files)
    for path in list(files):
        parent = os.path.dirname(path)
        while parent:
            entries.setdefault(parent, (0o040755, b""))
            parent = os.path.dirname(parent)
    for ino, path in enumerate(sorted(entries), start=1):
        mode, data = entries[path]
        record(ino, path, mode, data, 2 if mode & 0o040000 else 1)
    record(0, "TRAILER!!!", 0, b"", 1)
    return bytes(out)


def initrd(args, mtime):
    files = {}

    def add(path_in_image, source, executable):
        with open(source, "rb") as f:
            files[path_in_image.lstrip("/")] = (0o100755 if executable else 0o100644, f.read())

    add("init", os.path.join(HERE, "init"), True)
    add("bin/busybox", args.busybox, True)
    add("bin/sigil", args.sigil, True)
    for lib in shared_libraries(args.sigil):
        add(lib, os.path.realpath(lib), True)
    for d in ["dev", "proc", "sys", "run", "tmp", "var/lib/sigil"]:
        files[d] = (0o040755, b"")
    files["etc/os-release"] = (0o100644, os_release(args).encode())
    packed = gzip.compress(newc(files, mtime), 6, mtime=0)
    # Zero padding to the PE file alignment: the kernel skips zeros after an archive, and the UKI's last section
    # then ends on a 512-byte boundary.
    return packed + b"\0" * (-len(packed) % 512)


def os_release(args):
    out = subprocess.run([args.sigil, "--version"], capture_output=True, text=True)
    version = out.stdout.split()
    if out.returncode != 0 or len(version) != 2 or version[0] != "sigil":
        sys.exit(f"{args.sigil} --version: {out.stdout.strip() or out.stderr.strip()!r}: not a sigil binary for this machine")
    v = version[1]
    return f'ID=sigil\nNAME="Sigil node"\nVERSION_ID={v}\nPRETTY_NAME="Sigil node {v}"\n'


def uki(args, out, initrd_path, cmdline_path, osrel_path):
    """systemd's stub with the four sections at the addresses ukify would give them (after the stub's own)."""
    stub = args.stub
    # Section addresses: past the stub's image, each aligned to 4 KiB and after the previous one.
    dump = subprocess.run(["objdump", "-h", stub], capture_output=True, text=True, check=True).stdout
    end = 0
    for line in dump.splitlines():
        p = line.split()
        if len(p) >= 4 and p[0].isdigit():
            end = max(end, int(p[3], 16) + int(p[2], 16))
    cmd = ["objcopy"]
    vma = end
    for name, path in [(".osrel", osrel_path), (".cmdline", cmdline_path), (".linux", args.kernel), (".initrd", initrd_path)]:
        vma = (vma + 0xFFF) & ~0xFFF
        cmd += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={vma:#x}"]
        vma += os.path.getsize(path)
    subprocess.run(cmd + [stub, out], check=True)
    pin_pe_header(out, args.mtime)


def pin_pe_header(path, mtime):
    """objcopy stamps the PE header with the time it ran: set TimeDateStamp to SOURCE_DATE_EPOCH and recompute
    the header's CheckSum (the 16-bit one's-complement sum of the file, less the field, plus the length)."""
    import array
    import struct
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[pe:pe + 4] != b"PE\0\0":
            sys.exit(f"{path}: not a PE image")
        struct.pack_into("<I", data, pe + 8, mtime & 0xFFFFFFFF)
        checksum_at = pe + 24 + 64
        struct.pack_into("<I", data, checksum_at, 0)
        words = array.array("H", bytes(data[: len(data) & ~1]))
        total = sum(words) + (data[-1] if len(data) % 2 else 0)
        folded = total % 0xFFFF or (0xFFFF if total else 0)
        struct.pack_into("<I", data, checksum_at, folded + len(data))
        f.seek(0)
        f.write(data)


def disk(uki_path, out, mtime):
    """GPT with one FAT32 EFI system partition that holds the UKI as the removable-media boot path."""
    esp_size = ((os.path.getsize(uki_path) + 48 * MIB) // MIB) * MIB
    # mtools writes FAT timestamps in local time: UTC, so the machine's time zone cannot change the disk.
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(mtime), MTOOLS_SKIP_CHECK="1", TZ="UTC")
    with tempfile.TemporaryDirectory() as tmp:
        esp = os.path.join(tmp, "esp.img")
        with open(esp, "wb") as f:
            f.truncate(esp_size)
        sectors = esp_size // 512
        subprocess.run(["mformat", "-i", esp, "-F", "-N", FAT_SERIAL[2:], "-v", "SIGIL-ESP", "-T", str(sectors), "::"],
                       check=True, env=env)
        subprocess.run(["mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"], check=True, env=env)
        staged = os.path.join(tmp, "BOOTX64.EFI")
        shutil.copyfile(uki_path, staged)
        os.utime(staged, (mtime, mtime))
        subprocess.run(["mcopy", "-m", "-i", esp, staged, "::/EFI/BOOT/BOOTX64.EFI"], check=True, env=env)
        total = MIB + esp_size + MIB
        with open(out, "wb") as f:
            f.truncate(total)
        layout = (f"label: gpt\nlabel-id: {DISK_GUID}\nfirst-lba: 2048\n"
                  f"start=2048, size={sectors}, type={ESP_TYPE}, uuid={ESP_GUID}, name=\"ESP\"\n")
        subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out], input=layout, text=True,
                       check=True, capture_output=True)
        with open(out, "r+b") as f, open(esp, "rb") as e:
            f.seek(MIB)
            shutil.copyfileobj(e, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", required=True, help="the kernel (vmlinuz, an EFI-stub bzImage)")
    ap.add_argument("--sigil", required=True, help="the sigil binary")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--cmdline", default="console=ttyS0 panic=-1 quiet", help="kernel command line, measured")
    ap.add_argument("--busybox", default="/bin/busybox", help="a static busybox (Debian's busybox-static)")
    ap.add_argument("--stub", default=STUB, help="systemd's EFI stub (Debian's systemd-boot-efi)")
    ap.add_argument("--initrd", help="use this initrd (one this script made) instead of making it again")
    args = ap.parse_args()
    for what, path in [("--kernel", args.kernel), ("--sigil", args.sigil), ("--busybox", args.busybox),
                       ("--stub", args.stub)]:
        if not os.path.isfile(path):
            sys.exit(f"{what} {path}: no such file (scripts/setup.sh and scripts/image-inputs.sh install the inputs)")
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
    args.mtime = mtime
    os.makedirs(args.out, exist_ok=True)
    o = lambda name: os.path.join(args.out, name)
    if args.initrd:
        shutil.copyfile(args.initrd, o("initrd.img"))
    else:
        with open(o("initrd.img"), "wb") as f:
            f.write(initrd(args, mtime))
    with open(o("cmdline"), "w") as f:
        f.write(args.cmdline)
    shutil.copyfile(args.kernel, o("vmlinuz"))
    with tempfile.TemporaryDirectory() as tmp:
        osrel = os.path.join(tmp, "os-release")
        with open(osrel, "w") as f:
            f.write(os_release(args))
        uki(args, o("sigil.efi"), o("initrd.img"), o("cmdline"), osrel)
    disk(o("sigil.efi"), o("disk.raw"), mtime)
    manifest = {
        "source_date_epoch": mtime,
        "cmdline": args.cmdline,
        "inputs": {k: sha256(v) for k, v in [("kernel", args.kernel), ("sigil", args.sigil), ("busybox", args.busybox),
                                             ("stub", args.stub), ("init", os.path.join(HERE, "init"))]},
        # The shared libraries copied from this machine (ldd's view): part of the initrd, so of PCR 4 and 11.
        "libraries": {lib: sha256(os.path.realpath(lib)) for lib in shared_libraries(args.sigil)},
        "tools": {t: subprocess.run([t, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
                  for t in ["objcopy", "mformat", "sfdisk"]},
        "zlib": __import__("zlib").ZLIB_RUNTIME_VERSION,
        "outputs": {n: sha256(o(n)) for n in ["initrd.img", "cmdline", "vmlinuz", "sigil.efi", "disk.raw"]},
    }
    with open(o("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(manifest["outputs"], indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

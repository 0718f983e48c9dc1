#!/usr/bin/env bash
# Builds the tiny bootable guest that the VM integration tests run under libvirt/QEMU (TCG):
#   OUTDIR/vmlinuz         the Debian kernel as packaged (bzImage)
#   OUTDIR/vmlinux         the same kernel as an ELF image, booted through PVH: under TCG it
#                          reaches init about twice as fast because the xz decompressor is skipped
#   OUTDIR/initrd.img      busybox + virtio/ACPI modules + qemu-guest-agent + rootfs/ (our /init)
#   OUTDIR/kernel.release  the kernel's release string (uname -r in the guest)
# Usage: build.sh [OUTDIR]   (default /var/cache/virthost-test-guest)
#
# Nothing is installed on the host: the kernel and qemu-guest-agent .debs are fetched with
# `apt-get download` and unpacked. Host tools: apt-get, dpkg-deb, busybox-static (the guest's
# userland and cpio), kmod (depmod/modprobe to resolve module dependencies), gzip and python3
# (its lzma module decompresses the kernel). Work is cached: a step is skipped when its outputs
# exist and are newer than every input (this script and rootfs/). Everything written is
# world-readable, since QEMU runs as libvirt-qemu.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "${1:-/var/cache/virthost-test-guest}")
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
MODULES=(virtio_pci virtio_console virtio_blk virtio_net virtio_balloon virtio_rng button evdev)

umask 022
mkdir -p "$OUT/dl"
chmod 0755 "$OUT"
# Concurrent test runs on one machine share OUTDIR: build one at a time.
exec 9>"$OUT/.lock"
flock 9

log() { echo "build.sh: $*" >&2; }

# fresh INPUT... -- OUTPUT...: true when every output exists, is non-empty and is newer than
# every input (directories count with all they contain).
fresh() {
    local inputs=() f
    while [ "$1" != -- ]; do
        inputs+=("$1")
        shift
    done
    shift
    for f in "$@"; do
        [ -s "$f" ] || return 1
        [ -z "$(find "${inputs[@]}" -newer "$f" -print -quit)" ] || return 1
    done
}
KERNEL_OUT=("$OUT/vmlinuz" "$OUT/vmlinux" "$OUT/kernel.release")
kernel_fresh() { fresh "$HERE/build.sh" -- "${KERNEL_OUT[@]}"; }
initrd_fresh() { fresh "$HERE/build.sh" "$HERE/rootfs" -- "$OUT/initrd.img"; }

# Prints the path of a cached .deb for PACKAGE, downloading it first when needed.
fetch_deb() {
    local pkg=$1 deb
    deb=$(find "$OUT/dl" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
    if [ -z "$deb" ]; then
        log "downloading $pkg"
        # The sandbox user _apt could not write into OUTDIR: download as the caller.
        if ! (cd "$OUT/dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
            log "apt-get download $pkg failed; refreshing the package lists"
            apt-get -o DPkg::Lock::Timeout=900 update -q >&2
            (cd "$OUT/dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
        fi
        deb=$(find "$OUT/dl" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
    fi
    [ -n "$deb" ] || { log "no .deb for $pkg"; exit 1; }
    echo "$deb"
}

if kernel_fresh && initrd_fresh; then
    exit 0
fi

for tool in apt-get dpkg-deb depmod modprobe gzip; do
    command -v "$tool" >/dev/null || { log "missing host tool: $tool"; exit 1; }
done
BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    log "$BUSYBOX must be the static busybox (Debian package busybox-static)"
    exit 1
fi

WORK=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- the kernel -------------------------------------------------------------------------------
# linux-image-amd64 is the metapackage; its dependency names the versioned image package.
kdeb=$(find "$OUT/dl" -maxdepth 1 -name 'linux-image-*-amd64_*.deb' -print -quit)
if [ -z "$kdeb" ]; then
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$kpkg" ]; then
        apt-get -o DPkg::Lock::Timeout=900 update -q >&2
        kpkg=$(apt-cache depends linux-image-amd64 |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    kdeb=$(fetch_deb "$kpkg")
fi
KROOT=$WORK/kernel
log "unpacking $(basename "$kdeb")"
dpkg-deb -x "$kdeb" "$KROOT"
KVER=$(ls "$KROOT/lib/modules")
# The package ships no modules.dep (the postinst makes it); make one for modprobe below.
depmod -b "$KROOT" "$KVER"

if ! kernel_fresh; then
    log "extracting vmlinux from vmlinuz ($KVER)"
    cp "$KROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
    "$PYTHON" - "$WORK/vmlinuz" "$WORK/vmlinux" <<'PY'
"""Finds the compressed payload inside a bzImage and writes it out decompressed (an ELF)."""
import lzma
import sys
import zlib

image = open(sys.argv[1], "rb").read()
payload = None
xz_at = image.find(b"\xfd7zXZ\x00")
if xz_at >= 0:
    payload = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[xz_at:])
else:
    gz_at = image.find(b"\x1f\x8b\x08\x00")
    if gz_at >= 0:
        payload = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(image[gz_at:])
if payload is None or not payload.startswith(b"\x7fELF"):
    sys.exit("build.sh: no xz/gzip-compressed ELF kernel found in " + sys.argv[1])
with open(sys.argv[2], "wb") as out:
    out.write(payload)
PY
    echo "$KVER" >"$WORK/kernel.release"
    chmod 0644 "$WORK/vmlinuz" "$WORK/vmlinux" "$WORK/kernel.release"
    mv -f "$WORK/vmlinuz" "$WORK/vmlinux" "$WORK/kernel.release" "$OUT/"
fi
if initrd_fresh; then
    exit 0
fi

# --- the initramfs ----------------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,lib/modules,lib64,var}
ln -s ../run "$ROOT/var/run"
cp "$BUSYBOX" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"

# Modules, dependencies first, flat in /lib/modules and listed in load order in /etc/modules.
: >"$ROOT/etc/modules"
declare -A seen=()
for mod in "${MODULES[@]}"; do
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue # "builtin NAME" needs nothing
        name=$(basename "$path")
        [ -z "${seen[$name]:-}" ] || continue
        seen[$name]=1
        cp "$path" "$ROOT/lib/modules/$name"
        echo "$name" >>"$ROOT/etc/modules"
    done < <(modprobe -d "$KROOT" -S "$KVER" --show-depends "$mod")
done

# qemu-guest-agent and the shared libraries it links (the host is Debian 12 like the package).
qdeb=$(fetch_deb qemu-guest-agent)
dpkg-deb -x "$qdeb" "$WORK/qga"
cp "$WORK/qga/usr/sbin/qemu-ga" "$ROOT/sbin/qemu-ga"
if ldd "$WORK/qga/usr/sbin/qemu-ga" | grep -q 'not found'; then
    log "qemu-ga needs libraries this host lacks:"
    ldd "$WORK/qga/usr/sbin/qemu-ga" | grep 'not found' >&2
    exit 1
fi
for lib in $(ldd "$WORK/qga/usr/sbin/qemu-ga" | grep -o '/[^ ]*'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done

# Our own files: /init, the /sbin/shutdown shim, the ACPI handler, os-release, hostname.
cp -R "$HERE/rootfs/." "$ROOT/"
chmod 0755 "$ROOT/init" "$ROOT/sbin/shutdown" "$ROOT"/etc/acpi/*/*
echo "BUILD_ID=\"$KVER\"" >>"$ROOT/etc/os-release"

log "packing initrd.img"
(cd "$ROOT" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) |
    gzip -1 >"$WORK/initrd.img"
chmod 0644 "$WORK/initrd.img"
mv -f "$WORK/initrd.img" "$OUT/initrd.img"
chmod -R a+rX "$OUT"
log "done: $OUT"

#!/usr/bin/env bash
# Build the guest's busybox initramfs.
#   qemu/guest/build-initramfs.sh OUTDIR
# Writes OUTDIR/initramfs.cpio.gz: a newc cpio, gzip-compressed, holding /bin/busybox (from
# Debian's busybox-static:arm64), /bin/sh, /init (qemu/guest/init), /dev/console, and the kernel
# modules fetch-kernel.sh put in OUTDIR/modules/ as /lib/modules/wurley/<name>.ko with
# /lib/modules/wurley/modules.load (their load order) and kernel-version. Without
# OUTDIR/modules/ (run fetch-kernel.sh first) the archive has no modules and a warning is given:
# only the guest's disk test needs them.
# The archive is written by this script itself (no cpio, no mknod, so no root needed for the
# device node), with owner 0:0, fixed inode numbers and mtime SOURCE_DATE_EPOCH (default 0),
# and `gzip -n`: the same busybox, init and modules give the same bytes.
# busybox is cached in OUTDIR/busybox-static/ and downloaded again only when apt's candidate
# version changes; with apt unreachable the cached copy is used.
# Environment: BUSYBOX_DEB=/path/busybox-static_*_arm64.deb uses that package instead of apt.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
outdir=$1
pkg=busybox-static
me=build-initramfs
# shellcheck source=qemu/guest/lib.sh
. "$here/lib.sh"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cache=$outdir/busybox-static
init_src=$here/init
[ -f "$init_src" ] || die "missing $init_src"

have_cache() { [ -s "$cache/busybox" ] && [ -s "$cache/version" ]; }

install_from_deb() {   # install_from_deb DEB: extract bin/busybox into the cache
    local deb=$1 work ver
    ver=$(dpkg-deb -f "$deb" Version)
    work=$(mktemp -d "$outdir/.extract.XXXXXX")
    tmpdirs+=("$work")
    dpkg-deb -x "$deb" "$work/root"
    [ -s "$work/root/bin/busybox" ] || die "no bin/busybox in $deb"
    # An aarch64 ELF: "\x7fELF", class 2 (64-bit), e_machine 0xb7 at 18.
    if [ "$(od -An -tx1 -N5 "$work/root/bin/busybox" | tr -d ' \n')" != 7f454c4602 ] ||
        [ "$(od -An -tx1 -j18 -N2 "$work/root/bin/busybox" | tr -d ' \n')" != b700 ]; then
        die "bin/busybox in $deb is not an aarch64 ELF"
    fi
    mkdir -p "$cache"
    rm -f "$cache/version"
    install -m 0755 "$work/root/bin/busybox" "$cache/busybox"
    echo "$ver" >"$cache/version"
    log "busybox-static:arm64 $ver cached in $cache"
}

fetch_busybox() {
    local ver dl deb
    if [ -n "${BUSYBOX_DEB:-}" ]; then
        [ -f "$BUSYBOX_DEB" ] || die "BUSYBOX_DEB=$BUSYBOX_DEB: no such file"
        if have_cache && [ "$(cat "$cache/version")" = "$(dpkg-deb -f "$BUSYBOX_DEB" Version)" ]; then
            return 0
        fi
        install_from_deb "$BUSYBOX_DEB"
        return 0
    fi
    apt_lock "$outdir"
    if ! arm64_apt_ready; then
        have_cache && { log "apt cannot fetch arm64 packages; using the cached busybox"; return 0; }
        $is_ubuntu && ubuntu_help "$pkg" "run: BUSYBOX_DEB=/path/to/busybox-static_<ver>_arm64.deb $0 $outdir"
        exit 1
    fi
    ver=$(apt_candidate "$pkg")
    if [ -z "$ver" ] && is_root; then
        log "$pkg:arm64 is not in the package lists"
        apt_update
        ver=$(apt_candidate "$pkg")
    fi
    if [ -z "$ver" ]; then
        have_cache && { log "apt cannot resolve $pkg:arm64; using the cached busybox $(cat "$cache/version")"; return 0; }
        is_root || log "the package lists may be stale: try 'sudo apt-get update'"
        die "apt cannot resolve $pkg:arm64"
    fi
    if have_cache && [ "$(cat "$cache/version")" = "$ver" ]; then
        return 0
    fi
    dl=$(mktemp -d "$outdir/.download.XXXXXX")
    tmpdirs+=("$dl")
    if ! deb=$(apt_download "$pkg" "$ver" "$dl"); then
        if is_root && ! $apt_updated; then
            apt_update
            ver=$(apt_candidate "$pkg")
            if [ -n "$ver" ] && have_cache && [ "$(cat "$cache/version")" = "$ver" ]; then return 0; fi
        fi
        if [ -z "$ver" ] || ! deb=$(apt_download "$pkg" "$ver" "$dl"); then
            have_cache && { log "download failed (offline?); using the cached busybox"; return 0; }
            die "apt-get download $pkg:arm64 failed"
        fi
    fi
    install_from_deb "$deb"
}

fetch_busybox

# The kernel modules: OUTDIR/modules/modules.load names them, in load order.
moddir=$outdir/modules
mods=()
if [ -s "$moddir/modules.load" ]; then
    while read -r ko; do
        [ -s "$moddir/$ko" ] || die "$moddir/modules.load names $ko, which is missing: run fetch-kernel.sh"
        mods+=("$ko")
    done <"$moddir/modules.load"
    if [ "$(cat "$moddir/kernel-version" 2>/dev/null)" != "$(cat "$outdir/kernel-version" 2>/dev/null)" ]; then
        die "$moddir/ is for kernel '$(cat "$moddir/kernel-version" 2>/dev/null)'," \
            "$outdir/Image for '$(cat "$outdir/kernel-version" 2>/dev/null)': run fetch-kernel.sh"
    fi
else
    log "warning: no $moddir/modules.load (run fetch-kernel.sh): the initramfs gets no kernel modules"
fi

# --- newc cpio writer ------------------------------------------------------------------------
mtime=${SOURCE_DATE_EPOCH:-0}
ino=0
pad() { [ "$1" -eq 0 ] || head -c "$1" /dev/zero; }
entry() {   # entry NAME MODE(octal, with type bits) SIZE RDEVMAJOR RDEVMINOR; then the data follows
    local name=$1 mode=$2 size=$3 rmaj=$4 rmin=$5 nlink=1 namesize
    ino=$((ino + 1))
    [ $((mode & 0170000)) -eq $((0040000)) ] && nlink=2
    namesize=$((${#name} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$ino" "$mode" 0 0 "$nlink" "$mtime" "$size" 0 0 "$rmaj" "$rmin" "$namesize" 0
    printf '%s\0' "$name"
    pad $(((4 - (110 + namesize) % 4) % 4))
}
dir() { entry "$1" $((0040000 | $2)) 0 0 0; }
file() {    # file NAME MODE SOURCE
    local size
    size=$(stat -c %s "$3")
    entry "$1" $((0100000 | $2)) "$size" 0 0
    cat "$3"
    pad $(((4 - size % 4) % 4))
}
symlink() { # symlink NAME TARGET
    entry "$1" $((0120777)) "${#2}" 0 0
    printf '%s' "$2"
    pad $(((4 - ${#2} % 4) % 4))
}
chardev() { entry "$1" $((0020000 | $2)) 0 "$3" "$4"; }
trailer() { ino=-1; entry 'TRAILER!!!' 0 0 0 0; }

archive() {
    dir . 0755
    dir bin 0755
    file bin/busybox 0755 "$cache/busybox"
    symlink bin/sh busybox
    dir dev 0755
    chardev dev/console 0600 5 1
    chardev dev/null 0666 1 3
    dir etc 0755
    file init 0755 "$init_src"
    dir lib 0755
    dir lib/modules 0755
    dir lib/modules/wurley 0755
    if [ ${#mods[@]} -gt 0 ]; then
        local ko
        for ko in "${mods[@]}"; do
            file "lib/modules/wurley/$ko" 0644 "$moddir/$ko"
        done
        file lib/modules/wurley/modules.load 0644 "$moddir/modules.load"
        file lib/modules/wurley/kernel-version 0644 "$moddir/kernel-version"
    fi
    dir proc 0555
    dir root 0700
    dir sbin 0755
    dir sys 0555
    dir tmp 01777
    dir usr 0755
    dir usr/bin 0755
    dir usr/sbin 0755
    trailer
}

out=$outdir/initramfs.cpio.gz
archive | gzip -n -9 >"$out.tmp"
mv -f "$out.tmp" "$out"
log "wrote $out ($(stat -c %s "$out") bytes, busybox $(cat "$cache/version"), ${#mods[@]} modules, sha256 $(sha256sum "$out" | cut -c1-16))"

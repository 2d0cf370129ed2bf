#!/usr/bin/env bash
# Fetch the guest Linux kernel: Debian's arm64 cloud kernel, as a raw arm64 Image.
#   qemu/guest/fetch-kernel.sh OUTDIR
# Writes OUTDIR/Image (raw arm64 Image, magic "ARM\x64" at 0x38), OUTDIR/kernel-version (its
# `uname -r`, e.g. 6.1.0-35-cloud-arm64) and OUTDIR/kernel-package ("<package> <version>").
#
# The version is whatever apt resolves through the meta-package linux-image-cloud-arm64:arm64
# (no ABI number is pinned here). On a host that is not arm64 the arm64 foreign architecture is
# enabled first (dpkg --add-architecture arm64; apt-get update), which needs root; without root
# the exact commands are printed and the script stops.
# Idempotent: if OUTDIR/Image exists and matches what apt resolves, or apt cannot resolve or
# download anything (offline), the existing Image is kept (and touched, for make).
# Environment: KERNEL_DEB=/path/linux-image-*.deb uses that package instead of apt (any host).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
outdir=$1
meta=linux-image-cloud-arm64
me=fetch-kernel
# shellcheck source=qemu/guest/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

have_image() { [ -s "$outdir/Image" ] && [ -s "$outdir/kernel-version" ]; }

# Turn a vmlinuz (raw Image, gzip-compressed Image, or EFI zboot image) into a raw arm64 Image.
unpack_image() {
    local in=$1 out=$2 head
    head=$(od -An -tx1 -N4 "$in" | tr -d ' \n')
    if [ "$(od -An -tx1 -j56 -N4 "$in" | tr -d ' \n')" = 41524d64 ]; then
        cp "$in" "$out"                                     # raw Image: "ARM\x64" at 0x38
    elif [ "${head:0:4}" = 1f8b ]; then
        gzip -dc <"$in" >"$out"                             # gzip-compressed Image
    elif [ "$head" = 4d5a0000 ] && [ "$(dd if="$in" bs=1 skip=4 count=4 2>/dev/null)" = zimg ]; then
        # EFI zboot: "MZ\0\0zimg", payload offset and size (LE32) at 8 and 12, method at 24.
        local off size method
        off=$(od -An -tu4 -j8 -N4 "$in" | tr -d ' ')
        size=$(od -An -tu4 -j12 -N4 "$in" | tr -d ' ')
        method=$(dd if="$in" bs=1 skip=24 count=8 2>/dev/null | tr -d '\0')
        case $method in
            gzip) tail -c +"$((off + 1))" "$in" | head -c "$size" | gzip -dc >"$out" ;;
            zstd) tail -c +"$((off + 1))" "$in" | head -c "$size" | zstd -dc >"$out" ;;
            xzkern|lzma) tail -c +"$((off + 1))" "$in" | head -c "$size" | xz -dc >"$out" ;;
            *) die "EFI zboot image compressed with '$method': not supported" ;;
        esac
    else
        die "$in is neither a raw arm64 Image, gzip, nor EFI zboot (starts with $head)"
    fi
}

# Extract boot/vmlinuz-* from a linux-image .deb and install it into OUTDIR.
install_from_deb() {
    local deb=$1 pkgver=$2 work vmlinuz kver magic
    work=$(mktemp -d "$outdir/.extract.XXXXXX")
    tmpdirs+=("$work")
    dpkg-deb -x "$deb" "$work/root"
    vmlinuz=$(find "$work/root/boot" -maxdepth 1 -name 'vmlinuz-*' -type f | sort | head -n1)
    [ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $deb"
    kver=${vmlinuz##*/vmlinuz-}
    unpack_image "$vmlinuz" "$work/Image"
    magic=$(od -An -tx1 -j56 -N4 "$work/Image" | tr -d ' \n')
    [ "$magic" = 41524d64 ] || die "unpacked kernel has no arm64 Image magic (got $magic)"
    echo "$kver" >"$work/kernel-version"
    echo "$pkgver" >"$work/kernel-package"
    # Image last: its presence with a matching kernel-package means the set is complete.
    rm -f "$outdir/Image"
    mv -f "$work/kernel-version" "$outdir/kernel-version"
    mv -f "$work/kernel-package" "$outdir/kernel-package"
    mv -f "$work/Image" "$outdir/Image"
    log "installed $outdir/Image: Linux $kver ($pkgver; $(stat -c %s "$outdir/Image") bytes)"
}

if [ -n "${KERNEL_DEB:-}" ]; then
    [ -f "$KERNEL_DEB" ] || die "KERNEL_DEB=$KERNEL_DEB: no such file"
    pkgver="$(dpkg-deb -f "$KERNEL_DEB" Package) $(dpkg-deb -f "$KERNEL_DEB" Version)"
    if have_image && [ "$(cat "$outdir/kernel-package" 2>/dev/null)" = "$pkgver" ]; then
        log "up to date: $outdir/Image is $(cat "$outdir/kernel-version") ($pkgver)"
        touch "$outdir/Image"
        exit 0
    fi
    install_from_deb "$KERNEL_DEB" "$pkgver"
    exit 0
fi

keep() {   # keep REASON: if there is an Image, say why it is kept and exit 0; else return
    have_image || return 0
    log "$1; keeping $outdir/Image ($(cat "$outdir/kernel-version"))"
    touch "$outdir/Image"      # newer than this script: make need not ask again
    exit 0
}

apt_lock "$outdir"
if ! arm64_apt_ready; then
    keep "apt cannot fetch arm64 packages here"
    $is_ubuntu && ubuntu_help "$meta" "run: KERNEL_DEB=/path/to/linux-image-<abi>-cloud-arm64_<ver>_arm64.deb $0 $outdir"
    exit 1
fi

# linux-image-cloud-arm64:arm64 -> "linux-image-<abi>-cloud-arm64 <version>" (apt's candidate).
resolve() {
    local dep ver
    dep=$(apt-cache depends "$meta:arm64" 2>/dev/null |
        sed -n 's/^ *|\{0,1\}Depends: <\{0,1\}\(linux-image-[0-9][^:> ]*\).*/\1/p' | head -n1)
    [ -n "$dep" ] || return 1
    ver=$(apt_candidate "$dep")
    [ -n "$ver" ] || return 1
    echo "$dep $ver"
}

if ! pkgver=$(resolve) && is_root; then
    log "$meta:arm64 is not in the package lists"
    apt_update                 # lists may predate the arm64 architecture, or be missing
fi
pkgver=$(resolve) || {
    keep "apt cannot resolve $meta:arm64"
    $is_ubuntu && { ubuntu_help "$meta" "run: KERNEL_DEB=/path/to/linux-image-<abi>-cloud-arm64_<ver>_arm64.deb $0 $outdir"; exit 1; }
    is_root || log "the package lists may be stale: try 'sudo apt-get update'"
    die "apt cannot resolve $meta:arm64 (is Debian's main archive in the apt sources?)"
}

exit_if_up_to_date() {
    if have_image && [ "$(cat "$outdir/kernel-package" 2>/dev/null)" = "$pkgver" ]; then
        log "up to date: $outdir/Image is $(cat "$outdir/kernel-version") ($pkgver)"
        touch "$outdir/Image"
        exit 0
    fi
}
exit_if_up_to_date

log "$meta:arm64 resolves to ${pkgver% *} ${pkgver#* }"
dl=$(mktemp -d "$outdir/.download.XXXXXX")
tmpdirs+=("$dl")
if ! deb=$(apt_download "${pkgver% *}" "${pkgver#* }" "$dl"); then
    # A stale list names a version the mirror no longer has: refresh once and retry.
    if is_root && ! $apt_updated; then
        apt_update
        pkgver=$(resolve) || { keep "apt cannot resolve $meta:arm64"; die "apt cannot resolve $meta:arm64"; }
        exit_if_up_to_date
    fi
    deb=$(apt_download "${pkgver% *}" "${pkgver#* }" "$dl") ||
        { keep "download failed (offline?)"; die "apt-get download ${pkgver% *}:arm64 failed"; }
fi
install_from_deb "$deb" "$pkgver"

#!/usr/bin/env bash
# Fetch the guest Linux kernel: Debian's arm64 cloud kernel, as a raw arm64 Image.
#   qemu/guest/fetch-kernel.sh OUTDIR
# Writes OUTDIR/Image (raw arm64 Image, magic "ARM\x64" at 0x38), OUTDIR/kernel-version (its
# `uname -r`, e.g. 6.1.0-35-cloud-arm64), OUTDIR/kernel-package ("<package> <version>") and
# OUTDIR/modules/: the kernel modules the guest loads itself (the `modules` list below, plus what
# they depend on), each as <name>.ko (uncompressed), with
#   modules.load     their file names in load order (dependencies first), one a line: what
#                    build-initramfs.sh copies into the initramfs and qemu/guest/init insmods;
#   wanted           the `modules` list they were resolved from;
#   kernel-version   the kernel they belong to.
# The .deb has no modules.dep (depmod writes it at install time), so the dependencies are read
# from each module's own .modinfo `depends=`; modules built into the kernel are left out.
#
# The version is whatever apt resolves through the meta-package linux-image-cloud-arm64:arm64
# (no ABI number is pinned here). On a host that is not arm64 the arm64 foreign architecture is
# enabled first (dpkg --add-architecture arm64; apt-get update), which needs root; without root
# the exact commands are printed and the script stops.
# Idempotent: if OUTDIR/Image and OUTDIR/modules/ exist and match what apt resolves (and the
# `modules` list), or apt cannot resolve or download anything (offline), the existing Image is
# kept (and touched, for make; not touched when the modules are missing or stale, so that make
# tries again: they are only a warning then, since only the disk test needs them).
# Environment: KERNEL_DEB=/path/linux-image-*.deb uses that package instead of apt (any host).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
outdir=$1
meta=linux-image-cloud-arm64
me=fetch-kernel
# Modules for qemu/guest/init's disk test (a virtio-mmio block device); their dependencies are
# added. Changing this list makes `make guest` run this script and rebuild the initramfs.
modules="virtio_ring virtio virtio_mmio virtio_blk"
# shellcheck source=qemu/guest/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

have_image() { [ -s "$outdir/Image" ] && [ -s "$outdir/kernel-version" ]; }

# OUTDIR/modules/ is complete, for this kernel and this `modules` list.
have_modules() {
    local m=$outdir/modules ko
    [ -s "$m/modules.load" ] && [ "$(cat "$m/wanted" 2>/dev/null)" = "$modules" ] &&
        [ "$(cat "$m/kernel-version" 2>/dev/null)" = "$(cat "$outdir/kernel-version" 2>/dev/null)" ] ||
        return 1
    while read -r ko; do [ -s "$m/$ko" ] || return 1; done <"$m/modules.load"
}

# The value of FIELD in the .modinfo strings of module KO ("" if none). Reads the whole file
# (no early exit that would break the pipe under pipefail).
modinfo_field() {
    LC_ALL=C tr '\0' '\n' <"$1" |
        LC_ALL=C awk -v f="$2=" '!done && index($0, f) == 1 { print substr($0, length(f) + 1); done = 1 }'
}

# resolve_modules ROOT KVER OUT: copy the `modules` and everything they depend on from the
# extracted package ROOT into the directory OUT, and write OUT/modules.load, wanted, kernel-version.
resolve_modules() {
    local root=$1 kver=$2 out=$3 moddir ko name n
    moddir=$root/lib/modules/$kver
    [ -d "$moddir/kernel" ] || die "no lib/modules/$kver/kernel in the package"
    declare -A file_of=() state=()
    # Module names use '_' where file names may use '-' (virtio-rng.ko is virtio_rng).
    while IFS= read -r -d '' ko; do
        n=${ko##*/}
        n=${n%%.ko*}
        file_of[${n//-/_}]=$ko
    done < <(find "$moddir/kernel" -type f \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) -print0)
    mkdir -p "$out"
    : >"$out/modules.load"
    add_module() {   # depth-first: dependencies are written to modules.load before the module
        local name=$1 src dst deps dep vermagic
        case ${state[$name]:-} in
            loaded) return 0 ;;
            busy) die "module dependency cycle through $name" ;;
        esac
        src=${file_of[$name]:-}
        if [ -z "$src" ]; then
            if grep -qE "/${name//_/[-_]}\.ko(\.[a-z]+)?\$" "$moddir/modules.builtin" 2>/dev/null; then
                log "module $name is built into $kver: nothing to load"
                state[$name]=loaded
                return 0
            fi
            die "module $name is neither in the package nor built into $kver"
        fi
        state[$name]=busy
        dst=$out/$name.ko
        case $src in
            *.ko) cp "$src" "$dst" ;;
            *.ko.xz) xz -dc <"$src" >"$dst" ;;
            *.ko.zst) zstd -qdc <"$src" >"$dst" ;;
            *.ko.gz) gzip -dc <"$src" >"$dst" ;;
        esac
        [ "$(modinfo_field "$dst" name)" = "$name" ] || die "${src#"$root"/}: its .modinfo does not name it $name"
        vermagic=$(modinfo_field "$dst" vermagic)
        [ "${vermagic%% *}" = "$kver" ] || die "${src#"$root"/}: vermagic '$vermagic' is not for $kver"
        deps=$(modinfo_field "$dst" depends)
        [[ $deps =~ ^[A-Za-z0-9_,-]*$ ]] || die "${src#"$root"/}: unreadable depends= '$deps'"
        for dep in ${deps//,/ }; do
            add_module "${dep//-/_}"
        done
        echo "$name.ko" >>"$out/modules.load"
        state[$name]=loaded
    }
    for name in $modules; do
        add_module "$name"
    done
    echo "$modules" >"$out/wanted"
    echo "$kver" >"$out/kernel-version"
    log "modules for $kver, in load order: $(tr '\n' ' ' <"$out/modules.load")"
}

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
    resolve_modules "$work/root" "$kver" "$work/modules"
    echo "$kver" >"$work/kernel-version"
    echo "$pkgver" >"$work/kernel-package"
    # Image last: its presence with a matching kernel-package means the set is complete.
    rm -f "$outdir/Image"
    rm -rf "$outdir/modules"
    mv -f "$work/modules" "$outdir/modules"
    mv -f "$work/kernel-version" "$outdir/kernel-version"
    mv -f "$work/kernel-package" "$outdir/kernel-package"
    mv -f "$work/Image" "$outdir/Image"
    log "installed $outdir/Image: Linux $kver ($pkgver; $(stat -c %s "$outdir/Image") bytes)"
}

if [ -n "${KERNEL_DEB:-}" ]; then
    [ -f "$KERNEL_DEB" ] || die "KERNEL_DEB=$KERNEL_DEB: no such file"
    pkgver="$(dpkg-deb -f "$KERNEL_DEB" Package) $(dpkg-deb -f "$KERNEL_DEB" Version)"
    if have_image && have_modules && [ "$(cat "$outdir/kernel-package" 2>/dev/null)" = "$pkgver" ]; then
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
    if ! have_modules; then
        # Not touched: make runs this again next time. Only the disk test needs the modules.
        log "warning: $outdir/modules/ is missing or stale (modules: $modules):" \
            "the guest's disk test fails until this script runs with apt online"
        exit 0
    fi
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
    if have_image && have_modules && [ "$(cat "$outdir/kernel-package" 2>/dev/null)" = "$pkgver" ]; then
        log "up to date: $outdir/Image is $(cat "$outdir/kernel-version") ($pkgver)"
        touch "$outdir/Image"
        exit 0
    fi
}
exit_if_up_to_date

log "$meta:arm64 resolves to ${pkgver% *} ${pkgver#* }"
if have_image && [ "$(cat "$outdir/kernel-package" 2>/dev/null)" = "$pkgver" ]; then
    log "$outdir/modules/ is missing or stale: extracting the package again"
fi
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

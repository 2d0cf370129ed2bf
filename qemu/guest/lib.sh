# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # `me` is set by the caller; globals are read by it
# Helpers shared by fetch-kernel.sh and build-initramfs.sh: getting arm64 Debian packages with
# apt on an x86_64 (or arm64) Debian host. Source it after setting `me` (the log prefix).

log() { echo "$me: $*" >&2; }
die() { log "$*"; exit 1; }

tmpdirs=()
cleanup() { [ ${#tmpdirs[@]} -eq 0 ] || rm -rf "${tmpdirs[@]}"; }
trap cleanup EXIT

is_root() { [ "$(id -u)" -eq 0 ]; }

os_id=unknown
os_like=
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    os_id=$(. /etc/os-release && echo "${ID:-unknown}")
    # shellcheck disable=SC1091
    os_like=$(. /etc/os-release && echo "${ID_LIKE:-}")
fi
is_ubuntu=false
case " $os_id $os_like " in *" ubuntu "*) is_ubuntu=true ;; esac

# What to tell an Ubuntu user. $1: the Debian package wanted; $2: how to supply it by hand.
ubuntu_help() {
    cat >&2 <<EOF
$me: this host is Ubuntu ($os_id). The guest uses Debian's arm64 package $1.
  Ubuntu serves arm64 packages from ports.ubuntu.com, not from its main mirrors, so
  'dpkg --add-architecture arm64' alone would make 'apt-get update' fail; and Ubuntu's archive
  has no Debian cloud kernel. Run this on Debian 12 (bookworm) or newer, or download the .deb
  by hand from https://packages.debian.org/bookworm/arm64/$1 and $2.
EOF
}

apt_updated=false
apt_update() {
    log "apt-get update"
    apt-get update -qq || log "warning: apt-get update reported errors"
    apt_updated=true
}

# Serialise the scripts' apt work (make -j runs both at once, and apt-get update takes a lock).
apt_lock() {
    exec 9>"$1/.apt.lock"
    flock 9
}

# Make sure apt knows the arm64 architecture, enabling it as root on Debian.
# Returns 1 (after explaining what to do) when that cannot be done here.
arm64_apt_ready() {
    if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
        log "needs apt-get and dpkg (a Debian host)"
        return 1
    fi
    [ "$(dpkg --print-architecture)" = arm64 ] && return 0
    dpkg --print-foreign-architectures | grep -qx arm64 && return 0
    if $is_ubuntu; then
        return 1
    fi
    if ! is_root; then
        log "apt does not know the arm64 architecture yet. Run these as root, then run this again:"
        echo "    sudo dpkg --add-architecture arm64" >&2
        echo "    sudo apt-get update" >&2
        return 1
    fi
    log "enabling the arm64 foreign architecture: dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt_update
}

# Candidate version of PKG:arm64 from the local package lists ("" if unknown).
apt_candidate() {
    local v
    v=$(apt-cache policy "$1:arm64" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n1)
    [ "$v" = "(none)" ] && v=
    echo "$v"
}

# apt_download PKG VERSION DIR: download PKG:arm64=VERSION into DIR; prints the .deb's path.
apt_download() {
    local pkg=$1 ver=$2 dir=$3 deb
    chmod 0755 "$dir"
    # As root apt downloads as the _apt user: let it write into DIR (avoids the "unsandboxed" warning).
    if is_root && id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
    log "apt-get download $pkg:arm64=$ver"
    (cd "$dir" && apt-get download -q "$pkg:arm64=$ver" 2>&1 | sed "s/^/$me: /" >&2; exit "${PIPESTATUS[0]}") ||
        return 1
    deb=$(find "$dir" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
    [ -n "$deb" ] || return 1
    echo "$deb"
}

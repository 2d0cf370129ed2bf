#!/usr/bin/env bash
# Install what building and booting Wurley needs, if it is missing: QEMU (aarch64), dtc/fdtput,
# llvm-objcopy, cpio, and the Rust target from rust-toolchain.toml. Debian/Ubuntu only.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v qemu-system-aarch64 >/dev/null || need_pkgs+=(qemu-system-arm)
command -v dtc >/dev/null || need_pkgs+=(device-tree-compiler)
command -v fdtput >/dev/null || need_pkgs+=(device-tree-compiler)
command -v llvm-objcopy >/dev/null || need_pkgs+=(llvm)
command -v cpio >/dev/null || need_pkgs+=(cpio)

if [ ${#need_pkgs[@]} -gt 0 ]; then
    # shellcheck disable=SC2207
    pkgs=($(printf '%s\n' "${need_pkgs[@]}" | sort -u))
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        echo "deps: installing ${pkgs[*]} with sudo"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    else
        echo "deps: missing packages: ${pkgs[*]}" >&2
        echo "deps: run this, then try again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
        exit 1
    fi
fi

if ! command -v rustup >/dev/null; then
    echo "deps: rustup is missing; install Rust with rustup (https://rustup.rs), then try again" >&2
    exit 1
fi
target=$(sed -n 's/^targets *= *\["\([^"]*\)".*/\1/p' rust-toolchain.toml)
if ! rustup target list --installed | grep -qx "$target"; then
    echo "deps: adding Rust target $target"
    rustup target add "$target"
fi

#!/usr/bin/env bash
# Boot Wurley under QEMU's virt machine.
#   qemu/run.sh IMAGE [extra QEMU arguments...]
# Environment: SMP (CPUs, default 2), MEM (RAM, default 1G), CPU (default max,pauth-impdef=on:
# QEMU's architected pointer-auth emulation is about 3x slower), BOOTARGS (the hypervisor's
# -append), INITRD (the boot bundle).
# Quit QEMU with Ctrl-A X.
set -euo pipefail
image=$1; shift
args=(
    -M virt,virtualization=on,gic-version=3
    -cpu "${CPU:-max,pauth-impdef=on}"
    -smp "${SMP:-2}" -m "${MEM:-1G}"
    -no-reboot -nic none
    -kernel "$image"
)
# Interactive with a terminal; plain stdio without one, so scripted use works unattended.
if [ -t 0 ]; then
    args+=(-nographic)
else
    args+=(-display none -serial stdio -monitor none)
fi
[ -n "${BOOTARGS:-}" ] && args+=(-append "$BOOTARGS")
[ -n "${INITRD:-}" ] && args+=(-initrd "$INITRD")
exec qemu-system-aarch64 "${args[@]}" "$@"

#!/usr/bin/env bash
# Boot the guest kernel and initramfs directly under QEMU, without Wurley: the reference run
# that Linux under the hypervisor is compared with.
#   qemu/guest/run-bare.sh [BOOTARG...] [-- QEMU-ARG...]
# e.g. qemu/guest/run-bare.sh wurley.test=ipi
# BOOTARGs are appended to the kernel command line. Environment:
#   KERNEL     kernel Image            (default target/guest/Image)
#   INITRD     initramfs               (default target/guest/initramfs.cpio.gz)
#   VCPUS      CPUs                    (default 2: what the guest gets under the hypervisor)
#   GUEST_MEM  memory                  (default 512M: likewise)
#   CPU        QEMU CPU model          (default max,pauth-impdef=on)
#   BOOTARGS   base command line       (default "console=ttyAMA0 rdinit=/init")
#   TEST       adds wurley.test=$TEST  (boot, clock, ipi, reboot; see qemu/guest/init)
#   TIMEOUT    seconds before QEMU is killed (exit status 124); default none
# The machine matches qemu/run.sh (virt, virtualization=on, GICv3), so the kernel starts at EL2
# as it would on hardware with no hypervisor. With a terminal on stdin QEMU runs -nographic
# (quit with Ctrl-A X); otherwise the console is plain stdio with no monitor, so piped input
# goes to the guest and nothing waits for a terminal. QEMU exits when the guest powers off or
# reboots (-no-reboot); its exit status is this script's.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

kernel=${KERNEL:-$root/target/guest/Image}
initrd=${INITRD:-$root/target/guest/initramfs.cpio.gz}
bootargs=${BOOTARGS:-console=ttyAMA0 rdinit=/init}
[ -n "${TEST:-}" ] && bootargs+=" wurley.test=$TEST"
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    bootargs+=" $1"
    shift
done
[ "${1:-}" = -- ] && shift

for f in "$kernel" "$initrd"; do
    if [ ! -f "$f" ]; then
        echo "run-bare: missing $f (make target/guest/Image target/guest/initramfs.cpio.gz)" >&2
        exit 1
    fi
done

args=(
    -M "virt,virtualization=on,gic-version=3"
    -cpu "${CPU:-max,pauth-impdef=on}"
    -smp "${VCPUS:-2}" -m "${GUEST_MEM:-512M}"
    -nic none -no-reboot
    -kernel "$kernel" -initrd "$initrd"
    -append "$bootargs"
)
# A closed stdin would let QEMU's stdio console read whatever file then gets descriptor 0.
if { exec 3<&0; } 2>/dev/null; then exec 3<&-; else exec </dev/null; fi
if [ -t 0 ]; then
    args+=(-nographic)
    wrap=(timeout --foreground)
else
    args+=(-display none -serial stdio -monitor none)
    wrap=(timeout)
fi
if [ -n "${TIMEOUT:-}" ]; then
    exec "${wrap[@]}" "$TIMEOUT" qemu-system-aarch64 "${args[@]}" "$@"
fi
exec qemu-system-aarch64 "${args[@]}" "$@"

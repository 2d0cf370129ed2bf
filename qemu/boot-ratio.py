#!/usr/bin/env python3
"""Linux boot-to-userspace time under Wurley against the same kernel booted bare by QEMU.

Alternates runs (Wurley, bare, Wurley, ...) so host load affects both alike, measures wall time
from starting QEMU to the guest's `WURLEY-GUEST-UP` line, and prints the median of each and the
ratio. Both runs use the same QEMU machine and CPU model, the same kernel, initramfs, command
line, vCPU count and guest memory.

    qemu/boot-ratio.py [--runs 5] [--vcpus 1 2]

Needs `make build guest` first.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = b"WURLEY-GUEST-UP"
GUEST = os.path.join(ROOT, "target", "guest")
BOOTARGS = "console=ttyAMA0 rdinit=/init wurley.test=boot"


def timed(cmd, env):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    seen = None
    buf = b""
    for chunk in iter(lambda: proc.stdout.read1(4096), b""):
        buf = (buf + chunk)[-4096:]
        if seen is None and MARKER in buf:
            seen = time.monotonic() - start
    proc.wait(timeout=300)
    if seen is None:
        sys.exit(f"no {MARKER.decode()} from: {' '.join(cmd)}")
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vcpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--mem", default="512M")
    args = ap.parse_args()
    kernel = os.path.join(GUEST, "Image")
    initrd = os.path.join(GUEST, "initramfs.cpio.gz")
    image = os.path.join(ROOT, "target", "wurley.bin")
    print(f"kernel {open(os.path.join(GUEST, 'kernel-version')).read().strip()}, "
          f"{args.runs} alternating runs each, median wall time to {MARKER.decode()}")
    for vcpus in args.vcpus:
        bundle = os.path.join(ROOT, "target", f"ratio-{vcpus}.dtb")
        subprocess.run([os.path.join(ROOT, "qemu", "mkbundle.sh"), bundle, kernel, initrd,
                        BOOTARGS, str(vcpus), args.mem], check=True)
        env = dict(os.environ, SMP=str(vcpus), MEM="1G", INITRD=bundle, BOOTARGS="")
        hyp_cmd = [os.path.join(ROOT, "qemu", "run.sh"), image]
        bare_env = dict(os.environ, VCPUS=str(vcpus), GUEST_MEM=args.mem, KERNEL=kernel,
                        INITRD=initrd, BOOTARGS=BOOTARGS)
        bare_cmd = [os.path.join(ROOT, "qemu", "guest", "run-bare.sh")]
        hyp, bare = [], []
        for _ in range(args.runs):
            hyp.append(timed(hyp_cmd, env))
            bare.append(timed(bare_cmd, bare_env))
        h, b = statistics.median(hyp), statistics.median(bare)
        print(f"vcpus={vcpus}: wurley {h:.2f} s {[round(x, 2) for x in hyp]}, "
              f"bare {b:.2f} s {[round(x, 2) for x in bare]}, ratio {h / b:.3f}")


if __name__ == "__main__":
    main()

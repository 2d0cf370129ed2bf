"""Linux boot to userspace under Wurley against the same kernel booted bare by QEMU.

The same Debian kernel, initramfs, command line (`wurley.test=boot`), vCPU count, guest memory,
QEMU machine and CPU model; Wurley runs on as many CPUs as the VM has vCPUs. Runs alternate
(Wurley, bare, Wurley, ...) so that host load hits both alike. Two modes:

* `icount`: `-icount shift=0,sleep=off`, one vCPU thread. The guest-visible time is the kernel's
  own timestamp on `Run /init as init process` (its clock starts when the kernel registers the
  counter, so neither the hypervisor's boot nor the kernel's first instructions count); it is
  deterministic, every run gives the same value. Host wall time is reported too.
* `wall`: QEMU's default multi-threaded TCG, as `make run` boots: host wall time from starting
  QEMU to the `WURLEY-GUEST-UP` marker.
"""
import os
import re
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "target", "guest")
MARKER = b"WURLEY-GUEST-UP"
RUN_INIT_RE = re.compile(rb"\[\s*(\d+\.\d+)\] Run /init as init process")
BOOTARGS = "console=ttyAMA0 rdinit=/init wurley.test=boot"
ICOUNT = ["-icount", "shift=0,sleep=off"]


def timed(cmd, env, timeout=300):
    """Start QEMU, stop it at the marker: (wall seconds to the marker, kernel time of Run /init)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    buf, wall = b"", None
    try:
        while wall is None and time.monotonic() - start < timeout:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
            if MARKER in buf[-8192:]:
                wall = time.monotonic() - start
    finally:
        proc.kill()
        proc.wait()
    if wall is None:
        tail = buf.decode(errors="replace")[-2000:]
        raise RuntimeError(f"no {MARKER.decode()} from {' '.join(cmd)}:\n{tail}")
    m = RUN_INIT_RE.search(buf)
    return wall, float(m.group(1)) if m else None


def boot_pair(out, hyp_image, vcpus, mem, runs, icount, log=print):
    """`runs` alternating boots of each kind; the samples and medians."""
    kernel = os.path.join(GUEST, "Image")
    initrd = os.path.join(GUEST, "initramfs.cpio.gz")
    bundle = os.path.join(out, f"linux-{vcpus}.dtb")
    subprocess.run([os.path.join(ROOT, "qemu", "mkbundle.sh"), bundle, kernel, initrd,
                    BOOTARGS, str(vcpus), mem], check=True)
    extra = ICOUNT if icount else []
    hyp_cmd = [os.path.join(ROOT, "qemu", "run.sh"), hyp_image] + extra
    hyp_env = dict(os.environ, SMP=str(vcpus), MEM="1G", INITRD=bundle, BOOTARGS="")
    bare_cmd = [os.path.join(ROOT, "qemu", "guest", "run-bare.sh"), "--"] + extra
    bare_env = dict(os.environ, VCPUS=str(vcpus), GUEST_MEM=mem, KERNEL=kernel, INITRD=initrd,
                    BOOTARGS=BOOTARGS)
    for k in ("TEST", "TIMEOUT"):
        bare_env.pop(k, None)
    samples = {"wurley": [], "bare": []}
    for _ in range(runs):
        samples["wurley"].append(timed(hyp_cmd, hyp_env))
        samples["bare"].append(timed(bare_cmd, bare_env))
    res = {"vcpus": vcpus, "mode": "icount" if icount else "wall", "runs": runs}
    for kind, s in samples.items():
        res[kind] = {"wall_s": [round(w, 3) for w, _ in s],
                     "wall_median_s": round(statistics.median(w for w, _ in s), 3)}
        kt = [k for _, k in s if k is not None]
        if len(kt) == len(s):
            res[kind]["kernel_s"] = kt
            res[kind]["kernel_median_s"] = statistics.median(kt)
    res["wall_ratio"] = round(res["wurley"]["wall_median_s"] / res["bare"]["wall_median_s"], 3)
    if "kernel_median_s" in res["wurley"] and "kernel_median_s" in res["bare"]:
        res["kernel_ratio"] = round(
            res["wurley"]["kernel_median_s"] / res["bare"]["kernel_median_s"], 3)
    log(f"  {res['mode']} vcpus={vcpus}: wall ratio {res['wall_ratio']}"
        + (f", guest-visible ratio {res['kernel_ratio']}" if "kernel_ratio" in res else ""))
    return res


def run_all(out, hyp_image, runs, mem="512M", log=print):
    out = os.path.abspath(out)
    return [boot_pair(out, hyp_image, v, mem, runs, icount, log)
            for icount in (True, False) for v in (1, 2)]

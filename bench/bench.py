#!/usr/bin/env python3
"""`make bench`: Wurley's benchmarks, reported on the console, in target/bench/results.json and
in docs/benchmarks.md with the chart docs/benchmarks.svg.

    bench/bench.py [--reps N] [--boot-runs N] [--no-boot] [--no-profile] [--no-docs]
    bench/bench.py --report-only    # rewrite the docs from target/bench/results.json

1. The EL1 benchmark guest's operations under `-icount shift=0` (microbench.py);
2. an instruction trace of the null hypercall (insntrace.py);
3. the footprint: image sizes, RAM held, lines of Rust (footprint.py);
4. Linux boot under Wurley against bare QEMU (linux_boot.py).

Needs `make build guest` first (the Makefile's `bench` target does it). Timings are reported,
never asserted; the exit status is non-zero only when something failed to run (a guest printed
BENCH-ERROR or did not finish, a boot never reached userspace).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import footprint
import linux_boot
import microbench
import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HYP_ELF = os.path.join(ROOT, "target", microbench.GUEST_TARGET, "release", "wurley")
HYP_IMAGE = os.path.join(ROOT, "target", "wurley.bin")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    qemu = subprocess.run(["qemu-system-aarch64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cpu": cpu, "cores": os.cpu_count(), "load": load, "qemu": qemu,
            "commit": commit or "unknown"}


def write_docs(res):
    with open(os.path.join(ROOT, "bench", "hotspots.md")) as f:
        hotspots = f.read()
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as f:
        f.write(report.markdown(res, hotspots))
    report.svg(res["operations"], os.path.join(ROOT, "docs", "benchmarks.svg"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=1000, help="samples per operation")
    ap.add_argument("--boot-runs", type=int, default=5, help="Linux boots of each kind")
    ap.add_argument("--no-boot", action="store_true", help="skip the Linux boot ratio")
    ap.add_argument("--no-profile", action="store_true", help="skip the instruction trace")
    ap.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.* alone")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite docs/benchmarks.* from the last results.json, run nothing")
    args = ap.parse_args()
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            res = json.load(f)
        write_docs(res)
        print(report.console(res))
        return 0
    for f in (HYP_IMAGE, HYP_ELF):
        if not os.path.exists(f):
            sys.exit(f"missing {f}: run `make build guest` (or `make bench`)")
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()

    print(f"operations ({args.reps} samples each, -icount shift=0):")
    micro = microbench.run_all(HYP_IMAGE, args.out, args.reps)
    res = {"machine": machine(), "reps": args.reps, "cntfrq": micro["cntfrq"],
           "calibration": {"insns": micro["calib"][0], "ticks": micro["calib"][1]}
           if micro["calib"] else None, "problems": micro["problems"]}
    res["operations"], res["insns_per_tick"] = report.operations(micro)
    res["raw"] = micro["results"]

    if not args.no_profile:
        print("instruction trace of the null hypercall:")
        try:
            res["profile"] = microbench.profile(HYP_IMAGE, HYP_ELF, args.out)
            print(f"  {res['profile']['el2_instructions_per_call']} EL2 instructions per call")
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            res["problems"].append(f"instruction trace: {e}")

    with open(os.path.join(args.out, "solo.log")) as f:
        fp = footprint.measure(HYP_ELF, HYP_IMAGE, f.read())
    rm = footprint.rm_elf()
    if rm:
        fp["rm_elf_kib"] = round(os.path.getsize(rm) / 1024, 1)
        fp["rm_loadable_kib"] = round((fp["rm"]["text"] + fp["rm"]["rodata"]
                                       + fp["rm"]["data"]) / 1024, 1)
    fp["hypervisor_own_kib"] = round((fp["hypervisor_image_bytes"]
                                      - (os.path.getsize(rm) if rm else 0)) / 1024, 1)
    res["footprint"] = fp

    if not args.no_boot:
        print(f"Linux boot, {args.boot_runs} alternating runs each:")
        try:
            res["boot"] = linux_boot.run_all(args.out, HYP_IMAGE, args.boot_runs)
        except RuntimeError as e:
            res["problems"].append(f"Linux boot: {e}")

    res["elapsed_s"] = round(time.monotonic() - started, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    if not args.no_docs:
        write_docs(res)
    print()
    print(report.console(res))
    print(f"\nresults: {os.path.relpath(os.path.join(args.out, 'results.json'), ROOT)}"
          + ("" if args.no_docs else ", docs/benchmarks.md, docs/benchmarks.svg")
          + f" ({res['elapsed_s']} s)")
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""The EL1 benchmark guest (tests/guests/bench-guest) under QEMU: its scenarios, boot bundles,
runs and the `BENCH` lines they print.

Each scenario is one boot of the hypervisor with a bundle of bench-guest VMs on a machine with
`smp` CPUs (vCPUs are placed on CPUs in manifest order, so with one CPU everything shares it and
with two the second VM or vCPU gets CPU 1). Under `-icount shift=0` virtual time advances by 1 ns
per instruction executed (by any CPU), so the guest's counter ticks are instruction counts:
`insns_per_tick` comes from the guest's calibration loop (`BENCH-CALIB`).
"""
import os
import re
import subprocess

import insntrace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST_TARGET = "aarch64-unknown-none-softfloat"
MACHINE = ["-M", "virt,virtualization=on,gic-version=3", "-cpu", "max,pauth-impdef=on",
           "-m", "1G", "-display", "none", "-serial", "stdio", "-no-reboot", "-nic", "none"]
ICOUNT = ["-icount", "shift=0,sleep=off"]

BENCH_RE = re.compile(r"BENCH (\S+) ((?:\S+=\S+ ?)+)")
CALIB_RE = re.compile(r"BENCH-CALIB insns=(\d+) ticks=(\d+)")
INFO_RE = re.compile(r"BENCH-INFO (\S+) cntfrq=(\d+)")
DONE_RE = re.compile(r"BENCH-DONE (\S+) errors=(\d+)")
# The IPA of the register the proxy owner emulates (VMMIO) for the proxied VM: clear of its RAM
# and emulated devices, inside the runtime's Device mapping.
PROXY_DEV = 0x0a00_0000


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build_guest(out):
    """Build bench-guest and write its raw Image to `out`/bench-guest.bin."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "bench-guest", "--target",
                    GUEST_TARGET], cwd=ROOT, check=True)
    elf = os.path.join(target_dir(), GUEST_TARGET, "release", "bench-guest")
    image = os.path.join(out, "bench-guest.bin")
    subprocess.run(["llvm-objcopy", "-O", "binary", elf, image], check=True)
    return image


def vm(name, image, bootargs, vcpus=1, caps=False, console=False, scheduled_by=None):
    lines = [f'kernel = /incbin/("{image}");', "memory-size = <0x0 0x1000000>;",
             f'bootargs = "{bootargs}";', f"vcpus = <{vcpus}>;"]
    if caps:
        lines += ['capabilities = "partition", "cspace", "vic";', "object-memory = <0x100000>;"]
    if console:
        lines.append("console;")
    if scheduled_by:
        lines.append(f'scheduled-by = "{scheduled_by}";')
    return f"{name} {{ " + " ".join(lines) + " };"


PAIR_LINKS = """
        chat { compatible = "wurley,msgqueue-pair"; vms = "ping", "pong"; };
        ab { compatible = "wurley,doorbell"; sender = "ping"; receiver = "pong"; };
        ba { compatible = "wurley,doorbell"; sender = "pong"; receiver = "ping"; };"""


def scenarios(image, reps):
    """(name, CPUs, VM nodes, links, roles that must finish) of every measurement run."""
    r = f"reps={reps}"
    return [
        ("solo", 1, [vm("solo", image, f"role=solo {r}", caps=True, console=True)], "",
         ["solo"]),
        ("pair-same-cpu", 1,
         [vm("ping", image, f"role=ping {r} where=same_cpu yield=1", console=True),
          vm("pong", image, "role=pong")], PAIR_LINKS, ["ping", "pong"]),
        ("pair-cross-cpu", 2,
         [vm("ping", image, f"role=ping {r} where=cross_cpu", console=True),
          vm("pong", image, "role=pong")], PAIR_LINKS, ["ping", "pong"]),
        ("ipi-same-cpu", 1,
         [vm("ipi", image, f"role=ipi {r} where=same_cpu", vcpus=2, console=True)], "",
         ["ipi"]),
        ("ipi-cross-cpu", 2,
         [vm("ipi", image, f"role=ipi {r} where=cross_cpu", vcpus=2, console=True)], "",
         ["ipi"]),
        ("proxy", 1,
         [vm("owner", image, f"role=owner guest=proxied dev={PROXY_DEV:#x}", console=True),
          vm("proxied", image, f"role=proxied {r} dev={PROXY_DEV:#x}", scheduled_by="owner")],
         "", ["owner", "proxied"]),
    ]


def bundle(out, name, vms, links):
    """Write and compile the bundle of one scenario; its path."""
    text = ("/dts-v1/;\n/ {\n    compatible = \"wurley,bundle-v1\";\n    vms {\n        "
            + "\n        ".join(vms) + "\n    };\n")
    if links:
        text += "    links {" + links + "\n    };\n"
    text += "};\n"
    dts = os.path.join(out, f"{name}.dts")
    dtb = os.path.join(out, f"{name}.dtb")
    with open(dts, "w") as f:
        f.write(text)
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", dtb, dts], check=True)
    return dtb


def qemu_cmd(hyp_image, dtb, smp, icount=True, extra=()):
    return (["qemu-system-aarch64"] + MACHINE + ["-smp", str(smp), "-monitor", "none"]
            + (ICOUNT if icount else []) + ["-kernel", hyp_image, "-initrd", dtb] + list(extra))


def run(hyp_image, dtb, smp, icount=True, timeout=300):
    """Boot one scenario to the end (the last VM powers the machine off); the console text."""
    p = subprocess.run(qemu_cmd(hyp_image, dtb, smp, icount), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.stdout.decode(errors="replace").replace("\r", "")


def parse(log, roles):
    """The results of one run: {name: {field: float}}, calibration, problems."""
    res = {"results": {}, "calib": None, "cntfrq": None, "problems": []}
    for line in log.splitlines():
        line = re.sub(r"^\[[^\]]+\] ", "", line)
        if m := CALIB_RE.search(line):
            res["calib"] = (int(m.group(1)), int(m.group(2)))
        elif m := INFO_RE.search(line):
            res["cntfrq"] = int(m.group(2))
        elif line.startswith("BENCH-ERROR"):
            res["problems"].append(line)
        elif m := BENCH_RE.match(line):
            fields = dict(kv.split("=", 1) for kv in m.group(2).split())
            res["results"][m.group(1)] = {k: float(v) for k, v in fields.items()}
    for role in roles:
        m = re.search(rf"BENCH-DONE {role} errors=(\d+)", log)
        if not m:
            res["problems"].append(f"role {role}: no BENCH-DONE")
        elif m.group(1) != "0":
            res["problems"].append(f"role {role}: {m.group(0)}")
    for bad in ("*** PANIC", "*** EL2 EXCEPTION", "guest exception"):
        if bad in log:
            res["problems"].append(f"the log holds {bad!r}")
    return res


def run_all(hyp_image, out, reps, log=print):
    """Every scenario under icount; merged results, calibration and problems."""
    out = os.path.abspath(out)
    image = build_guest(out)
    merged = {"results": {}, "calib": None, "cntfrq": None, "problems": []}
    for name, smp, vms, links, roles in scenarios(image, reps):
        dtb = bundle(out, name, vms, links)
        text = run(hyp_image, dtb, smp)
        with open(os.path.join(out, f"{name}.log"), "w") as f:
            f.write(text)
        res = parse(text, roles)
        log(f"  {name}: {len(res['results'])} results"
            + (f", PROBLEMS: {res['problems']}" if res["problems"] else ""))
        merged["results"].update(res["results"])
        merged["problems"] += [f"{name}: {p}" for p in res["problems"]]
        merged["calib"] = merged["calib"] or res["calib"]
        merged["cntfrq"] = merged["cntfrq"] or res["cntfrq"]
    return merged


def loaded_span(elf):
    """Bytes from the image's start to the end of its last loaded section."""
    out = subprocess.run(["llvm-size", "-A", "-d", elf], capture_output=True, text=True,
                         check=True).stdout
    end = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[2]):
            end = max(end, int(parts[2]) + int(parts[1]))
    return end


def one_insn_per_tb():
    """QEMU's option for one instruction per translation block: `-singlestep` until 8.0, then
    `-accel tcg,one-insn-per-tb=on` (8.1 renamed it; 9.0 dropped the old name)."""
    out = subprocess.run(["qemu-system-aarch64", "--version"], capture_output=True,
                         text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    if m and (int(m.group(1)), int(m.group(2))) >= (8, 1):
        return ["-accel", "tcg,one-insn-per-tb=on"]
    return ["-singlestep"]


def profile(hyp_image, hyp_elf, out, count=20000, load_base=0x4020_0000):
    """Instruction trace of the null-hypercall path (role profile): insntrace's analysis, with
    the hypervisor loaded at `load_base` (QEMU virt's address for an arm64 Image)."""
    out = os.path.abspath(out)
    image = os.path.join(out, "bench-guest.bin")
    dtb = bundle(out, "profile",
                 [vm("profile", image, f"role=profile count={count}", console=True)], "")
    sock, log = os.path.join(out, "monitor.sock"), os.path.join(out, "trace.log")
    cmd = (["qemu-system-aarch64"] + MACHINE + one_insn_per_tb()
           + ["-smp", "1", "-monitor", f"unix:{sock},server,nowait", "-d", "nochain", "-D", log,
              "-kernel", hyp_image, "-initrd", dtb])
    insntrace.run_trace(cmd, sock, log)
    res = insntrace.analyse(log, hyp_elf, load_base, loaded_span(hyp_elf))
    os.unlink(log)
    return res

"""Footprint: image sizes of the hypervisor and the resource manager, the RAM the hypervisor holds
(from its boot log), and the lines of Rust in the EL2 kernel.

Sections are grouped from `llvm-size -A`: text (`.text*`, `.vectors`...: executable), rodata
(read-only data, `.rela*`, `.eh_frame*`, `.got*`...), data and bss. The resource manager is
embedded in the hypervisor's rodata; its own ELF (built by the hypervisor's build script) is
measured separately. The RAM figures are the hypervisor's own log lines (`RAM held by the
hypervisor`; per VM `VM <name>: ... hypervisor memory for it`, logged when the VM is assembled
at its first power-on, with its objects' charges and the VM record, and for a VM the resource
manager built `VM <name>: retired; its translation tables: ...` with the tables' peak).
"""
import glob
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "aarch64-unknown-none-softfloat"


def sections(elf):
    """{text, rodata, data, bss, total}: bytes of the allocated sections of `elf`."""
    out = subprocess.run(["llvm-size", "-A", "-d", elf], capture_output=True, text=True,
                         check=True).stdout
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[0].startswith(".") or not parts[1].isdigit():
            continue
        name, size, addr = parts[0], int(parts[1]), int(parts[2])
        if addr == 0 and not name.startswith((".text", ".bss")):
            continue  # not loaded (debug info, comments, symbol tables)
        if name.startswith((".text", ".vectors", ".init", ".head")):
            sizes["text"] += size
        elif name.startswith((".bss", ".sbss", ".stack", ".tbss")):
            sizes["bss"] += size
        elif name.startswith((".data", ".sdata", ".tdata")):
            sizes["data"] += size
        else:
            sizes["rodata"] += size
    sizes["total"] = sum(sizes.values())
    return sizes


def rm_elf():
    """The resource manager ELF the last hypervisor build embedded (the newest one)."""
    found = glob.glob(os.path.join(ROOT, "target", TARGET, "release", "build", "wurley-*", "out",
                                   "rm-build", TARGET, "release", "wurley-rm"))
    return max(found, key=os.path.getmtime) if found else None


def rust_lines(src):
    """Lines of Rust under `src`, outside tests: files named tests.rs or under a tests/ or
    fixtures directory are skipped, and a file's `#[cfg(test)]` module is cut off. Returns
    (all lines, code lines without blanks and comments)."""
    total = code = 0
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        rel = os.path.relpath(path, src)
        parts = rel.split(os.sep)
        if "tests" in parts[:-1] or parts[-1] in ("tests.rs", "fixtures.rs"):
            continue
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) \
                    and re.match(r"\s*(pub(\(\w+\))? )?mod \w+", lines[i + 1]):
                lines = lines[:i]
                break
        total += len(lines)
        code += sum(1 for ln in lines if ln.strip() and not ln.strip().startswith("//"))
    return total, code


def ram(log):
    """The hypervisor's RAM figures from a boot log."""
    res = {"vms": {}}
    if m := re.search(r"RAM held by the hypervisor: (\d+) KiB \(image (\d+) KiB, frames (\d+) "
                      r"KiB\)", log):
        res["at_boot_kib"], res["image_kib"], res["frames_kib"] = map(int, m.groups())
    if m := re.search(r"heap: (\d+) KiB", log):
        res["heap_kib"] = int(m.group(1))
    for m in re.finditer(r"VM (\S+): (\d+) MiB of RAM; hypervisor memory for it: (\d+) KiB of "
                         r"frames, (\d+) KiB of heap(?: \(frames for its translation tables; "
                         r"heap: (\d+) KiB charged for its objects, (\d+) KiB for the VM "
                         r"record\))?", log):
        vm = {"ram_mib": int(m.group(2)), "frames_kib": int(m.group(3)),
              "heap_kib": int(m.group(4))}
        if m.group(5) is not None:
            vm["objects_kib"], vm["record_kib"] = int(m.group(5)), int(m.group(6))
        res["vms"][m.group(1)] = vm
    # A VM the resource manager built: its tables when it was retired and at their largest
    # (memory mapped after it started).
    for m in re.finditer(r"VM (\S+): retired; its translation tables: (\d+) KiB of frames, at "
                         r"most (\d+) KiB", log):
        if m.group(1) in res["vms"]:
            res["vms"][m.group(1)]["frames_peak_kib"] = int(m.group(3))
    return res


def measure(hyp_elf, hyp_image, boot_log):
    res = {"hypervisor": sections(hyp_elf), "hypervisor_image_bytes": os.path.getsize(hyp_image)}
    rm = rm_elf()
    if rm:
        res["rm"] = sections(rm)
    res["ram"] = ram(boot_log)
    res["rust_lines"], res["rust_code_lines"] = rust_lines(os.path.join(ROOT, "src"))
    return res

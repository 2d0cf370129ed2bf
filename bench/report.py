"""What `make bench` reports: the operations table and its targets, the console summary,
docs/benchmarks.md and the chart docs/benchmarks.svg (drawn here, no plotting library).

Every figure comes from the results dict bench.py assembles (also written as JSON); the hot-spot
history is hand-written in bench/hotspots.md and copied into the document.
"""
import html
import os

import insntrace

# (result name, what it measures, group, target in instructions or None). One direction of a
# round trip is half of it (the guests report both).
ROWS = [
    ("null_unimplemented", "Null hypercall: unassigned number (ERROR_UNIMPLEMENTED), SMCCC",
     "hypercall", 150),
    ("null_identify", "Null hypercall: hypervisor_identify, SMCCC", "hypercall", 150),
    ("null_identify_native", "hypervisor_identify, native HVC #0x6000", "hypercall", None),
    ("msgq_1B_same_cpu", "msgq 1 B VM to VM, same CPU: send to receive done in the peer's "
     "vIRQ handler", "msgq", None),
    ("msgq_240B_same_cpu", "msgq 240 B VM to VM, same CPU (as above)", "msgq", 1000),
    ("msgq_1B_cross_cpu", "msgq 1 B VM to VM, across CPUs (as above)", "msgq", None),
    ("msgq_240B_cross_cpu", "msgq 240 B VM to VM, across CPUs (as above)", "msgq", None),
    ("msgq_sendrecv_1B", "msgq send + receive, 1 B, one VM, hypercalls only", "msgq", None),
    ("msgq_sendrecv_240B", "msgq send + receive, 240 B, one VM, hypercalls only", "msgq", None),
    ("msgq_local_1B", "msgq 1 B send to the same VM's vIRQ handler receiving", "msgq", None),
    ("msgq_local_240B", "msgq 240 B send to the same VM's vIRQ handler receiving", "msgq", None),
    ("doorbell_same_cpu", "Doorbell send to the peer's vIRQ handler running, same CPU",
     "doorbell", 1500),
    ("doorbell_cross_cpu", "Doorbell send to the peer's vIRQ handler running, across CPUs",
     "doorbell", 1500),
    ("doorbell_sendrecv", "Doorbell send + receive, one VM, hypercalls only", "doorbell", None),
    ("doorbell_local", "Doorbell send to the same VM's vIRQ handler", "doorbell", None),
    ("vipi_same_cpu", "Virtual IPI: ICC_SGI1R write to the handler on the target vCPU, "
     "both vCPUs on one CPU", "ipi", None),
    ("vipi_cross_cpu", "Virtual IPI, target vCPU on another CPU", "ipi", None),
    ("timer_spin", "Virtual timer: programmed expiry to the handler, vCPU spinning", "timer",
     None),
    ("timer_wfi", "Virtual timer: programmed expiry to the handler, vCPU blocked in WFI",
     "timer", None),
    ("yield_switch", "vCPU switch between two VMs on one CPU (scheduler_yield ping-pong, per "
     "switch)", "switch", None),
    ("stage2_fault", "Stage-2 fault round trip to a proxy owner (VMMIO read through "
     "vcpu_run), both VMs on one CPU", "stage2", None),
]
BOOT_TARGET = 1.10
IMAGE_TARGET_KIB = 256


def operations(micro):
    """The table rows: measured values in ticks, instructions and ns."""
    insns, ticks = micro["calib"] or (16, 1)
    per_tick = insns / ticks
    ns_per_tick = 1e9 / micro["cntfrq"] if micro["cntfrq"] else per_tick
    rows = []
    for name, what, group, target in ROWS:
        r = micro["results"].get(name)
        row = {"name": name, "what": what, "group": group, "target_insns": target}
        if r is None or not r.get("n"):
            row["status"] = "missing"
        else:
            row.update(median_ticks=r["median_ticks"], n=int(r["n"]), per=int(r["per"]),
                       insns=round(r["median_ticks"] * per_tick),
                       ns=round(r["median_ticks"] * ns_per_tick),
                       min_insns=round(r["min_ticks"] * per_tick),
                       max_insns=round(r["max_ticks"] * per_tick))
            row["status"] = ("" if target is None else
                             "met" if row["insns"] <= target else "missed")
        rows.append(row)
    return rows, per_tick


def fmt_int(v):
    return f"{v:,}" if isinstance(v, int) else str(v)


def console(res):
    """The human summary printed at the end of `make bench`."""
    out = [f"{'operation':<34} {'median ticks':>12} {'insns':>8} {'target':>7}  status"]
    for r in res["operations"]:
        if "insns" in r:
            out.append(f"{r['name']:<34} {r['median_ticks']:>12.2f} {r['insns']:>8,} "
                       f"{fmt_int(r['target_insns'] or ''):>7}  {r['status']}")
        else:
            out.append(f"{r['name']:<34} {'':>12} {'':>8} {'':>7}  {r['status']}")
    prof = res.get("profile")
    if prof:
        out.append(f"EL2 instructions per null hypercall (trace): "
                   f"{prof['el2_instructions_per_call']}")
    for b in res.get("boot", []):
        line = (f"Linux boot {b['mode']:<6} vcpus={b['vcpus']}: wall {b['wurley']['wall_median_s']}"
                f" s vs bare {b['bare']['wall_median_s']} s, ratio {b['wall_ratio']}")
        if "kernel_ratio" in b:
            line += (f"; guest-visible {b['wurley']['kernel_median_s']:.3f} s vs "
                     f"{b['bare']['kernel_median_s']:.3f} s, ratio {b['kernel_ratio']}")
        out.append(line)
    fp = res.get("footprint")
    if fp:
        out.append(f"hypervisor image {fp['hypervisor_image_bytes'] // 1024} KiB "
                   f"(own code and data {fp['hypervisor_own_kib']} KiB, embedded RM ELF "
                   f"{fp.get('rm_elf_kib', '?')} KiB); RM loadable {fp.get('rm_loadable_kib', '?')}"
                   f" KiB; RAM held at boot {fp['ram'].get('at_boot_kib', '?')} KiB; "
                   f"{fp['rust_code_lines']:,} lines of Rust code in src/")
    for p in res["problems"]:
        out.append(f"PROBLEM: {p}")
    return "\n".join(out)


def svg(rows, path):
    """A horizontal bar chart of instructions per operation, targets as red ticks."""
    data = [r for r in rows if "insns" in r]
    if not data:
        return
    top = max(max(r["insns"], r["target_insns"] or 0) for r in data)
    label_w, bar_w, row_h, pad = 270, 420, 20, 30
    height = pad * 2 + row_h * len(data) + 20
    width = label_w + bar_w + 90
    scale = bar_w / top
    colours = {"hypercall": "#4e79a7", "msgq": "#f28e2b", "doorbell": "#59a14f",
               "ipi": "#b07aa1", "timer": "#76b7b2", "switch": "#edc948", "stage2": "#e15759"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width // 2}" y="18" text-anchor="middle" font-size="13">Instructions '
             f'per operation (QEMU -icount shift=0; red: target)</text>']
    for i, r in enumerate(data):
        y = pad + i * row_h
        w = max(1, round(r["insns"] * scale))
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                     f'{html.escape(r["name"])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 6}" '
                     f'fill="{colours.get(r["group"], "#999")}"/>')
        parts.append(f'<text x="{label_w + w + 4}" y="{y + 14}">{r["insns"]:,}</text>')
        if r["target_insns"]:
            x = label_w + round(r["target_insns"] * scale)
            parts.append(f'<line x1="{x}" y1="{y + 1}" x2="{x}" y2="{y + row_h - 1}" '
                         f'stroke="red" stroke-width="2"/>')
    axis_y = pad + row_h * len(data) + 4
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + bar_w}" y2="{axis_y}" '
                 f'stroke="black"/>')
    # A round tick step (1, 2 or 5 times a power of ten) giving at most 8 ticks.
    step = next(m * 10 ** e for e in range(12) for m in (1, 2, 5) if top / (m * 10 ** e) <= 8)
    v = 0
    while v <= top:
        x = label_w + round(v * scale)
        parts.append(f'<line x1="{x}" y1="{axis_y}" x2="{x}" y2="{axis_y + 4}" stroke="black"/>')
        parts.append(f'<text x="{x}" y="{axis_y + 15}" text-anchor="middle">{v:,}</text>')
        v += step
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def markdown(res, hotspots):
    m = res["machine"]
    per_tick = res["insns_per_tick"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/bench.py`); do not edit by hand: the hot-spot notes "
        "come from `bench/hotspots.md`. Machine-readable results: `target/bench/results.json`.",
        "",
        f"Measured on: {m['cpu']} ({m['cores']} cores; host load average {m['load']} when the "
        f"run started), {m['qemu']}, commit {m['commit']}.",
        "",
        "## Method",
        "",
        "The operations are measured by the EL1 benchmark guest `tests/guests/bench-guest` "
        "(roles `solo`, `ping`/`pong`, `ipi`, `owner`/`proxied`) on QEMU's `virt` machine "
        "(`virtualization=on,gic-version=3`, `-cpu max,pauth-impdef=on`) with "
        "`-icount shift=0,sleep=off`: virtual time advances 1 ns per instruction executed, by "
        "the guest and the hypervisor alike, and idle time is skipped, so runs repeat: medians "
        "agree to within one tick from run to run (seen: a few rows move by one tick, maxima by "
        "one or two). The guest reads the virtual counter (`CNTVCT_EL0`) around each "
        f"operation; QEMU's counter runs at {res['cntfrq'] / 1e6:g} MHz (`CNTFRQ_EL0`), so one "
        f"tick is {1e9 / res['cntfrq']:g} ns, that is **{per_tick:g} instructions** (checked by "
        "the guest's calibration loop, `BENCH-CALIB`), and the instruction figure is also the "
        "guest-visible time in ns. Each figure is the median over "
        f"{res['reps']} samples after 16 warm-up samples. A sample of a batched operation "
        "(null hypercalls: 16 per sample; send + receive: 4) is divided by the batch; an "
        f"unbatched one has a resolution of one tick ({per_tick:g} instructions). One direction "
        "of a VM-to-VM exchange is half the measured round trip (send, the peer's vIRQ taken "
        "and its handler receiving). A stage-2 fault round trip is one load by the proxied VM "
        "from a register its owner emulates (VMMIO): from before the load to after it, the "
        "fault, the exit through the owner's `vcpu_run`, the owner's loop answering and its "
        "next `vcpu_run` resuming the guest past the load. Across CPUs, the count is of "
        "instructions on both CPUs "
        "(QEMU runs them in turn under icount). Instructions are QEMU's count, not cycles on a "
        "real core; they compare paths and track progress, they are not latencies on hardware.",
        "",
        "## Operations",
        "",
        "| Operation | Result | Median ticks | Instructions | Min..max instructions | Target | |",
        "|-----------|--------|-------------:|-------------:|------------------------|-------:|--|",
    ]
    for r in res["operations"]:
        target = f"<= {r['target_insns']:,}" if r["target_insns"] else ""
        if "insns" in r:
            lines.append(f"| {r['what']} | `{r['name']}` | {r['median_ticks']:.2f} | "
                         f"{r['insns']:,} | {r['min_insns']:,}..{r['max_insns']:,} | {target} "
                         f"| {r['status']} |")
        else:
            lines.append(f"| {r['what']} | `{r['name']}` | | | | {target} | {r['status']} |")
    prof = res.get("profile")
    if prof:
        lines += ["", "### Where a null hypercall's instructions go", "",
                  "Instruction trace of role `profile` (`bench/insntrace.py`: QEMU's exec log "
                  "with one instruction per translation block, cut at each entry to EL2): "
                  f"**{prof['el2_instructions_per_call']} instructions at EL2** per unassigned "
                  f"hypercall ({prof['calls_with_that_count']} of {prof['calls']} traced calls), "
                  f"and {prof['guest_instructions_between_calls']} guest instructions between "
                  "calls. The rest of the guest-visible figure above is the guest's loop and "
                  "counter reads.", "",
                  f"| Where (inside `{insntrace.LOOP_FN}`) | Instructions |", "|---|---:|"]
        lines += [f"| `{b['where']}` | {b['instructions']} |" for b in prof["breakdown"][:12]]
    lines += ["", "![Instructions per operation](benchmarks.svg)", "", "## Linux boot", "",
              "The Debian kernel and busybox initramfs (`wurley.test=boot`) booted under Wurley "
              "and bare (`qemu/guest/run-bare.sh`), same CPU model, vCPUs and 512 MiB, runs "
              f"alternating, median of {res['boot'][0]['runs'] if res.get('boot') else 0}. "
              "*Guest-visible* is the kernel's own timestamp on `Run /init as init process` "
              "(it starts when the kernel registers its clock, so the hypervisor's own boot is "
              "not in it); under icount it repeats to within the spread given in brackets, in ms "
              "(largest minus smallest of the runs; I/O timing still moves the interleaving of "
              "two vCPUs a little). *Wall* is host time from starting QEMU "
              "to the initramfs' `WURLEY-GUEST-UP` line (it includes the hypervisor's boot and, "
              "under icount, QEMU's single-threaded execution; it varies with host load). In the "
              "`wall` mode the kernel timestamps are real time too, so they vary as much. The "
              "target applies to the guest-visible ratio under icount and to the wall ratio "
              "without it.", "",
              "| Mode | vCPUs | Wurley wall (s) | Bare wall (s) | Wall ratio | Wurley guest-visible (s, "
              "spread ms) | Bare guest-visible (s, spread ms) | Guest-visible ratio | Target |",
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for b in res.get("boot", []):
        spread = lambda k: 1000 * (max(b[k]["kernel_s"]) - min(b[k]["kernel_s"]))  # noqa: E731
        kv = ("| {:.3f} ({:.1f}) | {:.3f} ({:.1f}) | {} ".format(
            b["wurley"]["kernel_median_s"], spread("wurley"), b["bare"]["kernel_median_s"],
            spread("bare"), b["kernel_ratio"]) if "kernel_ratio" in b else "| | | ")
        ratio = b.get("kernel_ratio") if b["mode"] == "icount" else b["wall_ratio"]
        lines.append(f"| {b['mode']} | {b['vcpus']} | {b['wurley']['wall_median_s']} | "
                     f"{b['bare']['wall_median_s']} | {b['wall_ratio']} {kv}| <= {BOOT_TARGET} "
                     f"({'met' if ratio is not None and ratio <= BOOT_TARGET else 'missed'}) |")
    fp = res.get("footprint")
    if fp:
        h, rm, ram = fp["hypervisor"], fp.get("rm", {}), fp["ram"]
        kib = lambda b: f"{b / 1024:.1f}"  # noqa: E731
        lines += ["", "## Footprint", "",
                  "| Image | text | rodata | data | bss | Loadable (KiB) | Target |",
                  "|---|--:|--:|--:|--:|--:|--:|",
                  f"| Hypervisor ELF (RM embedded in rodata) | {h['text']:,} | {h['rodata']:,} | "
                  f"{h['data']:,} | {h['bss']:,} | {kib(fp['hypervisor_image_bytes'])} (the "
                  f"`wurley.bin` file) | |",
                  f"| Hypervisor without the embedded RM | | | | | {fp['hypervisor_own_kib']} | "
                  f"<= {IMAGE_TARGET_KIB} ({'met' if fp['hypervisor_own_kib'] <= IMAGE_TARGET_KIB else 'missed'}) |"]
        if rm:
            lines.append(f"| Resource manager | {rm['text']:,} | {rm['rodata']:,} | "
                         f"{rm['data']:,} | {rm['bss']:,} | {fp['rm_loadable_kib']} (ELF file "
                         f"{fp['rm_elf_kib']}) | <= {IMAGE_TARGET_KIB} "
                         f"({'met' if fp['rm_loadable_kib'] <= IMAGE_TARGET_KIB else 'missed'}) |")
        lines += ["", "Sizes in bytes; loadable is text + rodata + data (bss is zeroed memory "
                  "the image claims when it runs).", "",
                  f"RAM the hypervisor holds at boot (its log, solo scenario on 1 CPU with 1 GiB): "
                  f"**{ram.get('at_boot_kib', '?')} KiB**: the image with its BSS and stacks, "
                  f"{ram.get('image_kib', '?')} KiB, and {ram.get('frames_kib', '?')} KiB of "
                  f"frames from the allocator. The heap ({ram.get('heap_kib', '?')} KiB) is part "
                  "of these: its first part in the BSS, the rest frames. Per VM, besides the VM's "
                  "own RAM:", ""]
        for name, v in ram.get("vms", {}).items():
            parts = []
            if "objects_kib" in v:
                parts.append(f"{v['objects_kib']} KiB charged for its objects, "
                             f"{v['record_kib']} KiB for the VM record")
            if "frames_peak_kib" in v:
                parts.append(f"translation tables at most {v['frames_peak_kib']} KiB")
            tables = " (its translation tables)" if "objects_kib" in v else ""
            lines.append(f"- `{name}`: {v['ram_mib']} MiB of RAM, plus {v['frames_kib']} KiB of "
                         f"frames{tables} and {v['heap_kib']} KiB of heap"
                         + (f" ({'; '.join(parts)})" if parts else ""))
        lines += ["", f"Lines of Rust in the EL2 kernel (`src/`, tests excluded): "
                  f"{fp['rust_lines']:,}, of which {fp['rust_code_lines']:,} are code (not blank "
                  "or comment)."]
    lines += ["", "## Hot spots", ""] + hotspots.strip("\n").splitlines()
    if res["problems"]:
        lines += ["", "## Problems in this run", ""] + [f"- {p}" for p in res["problems"]]
    return "\n".join(lines) + "\n"

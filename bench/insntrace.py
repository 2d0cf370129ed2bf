"""Where the instructions of the null-hypercall path go: an instruction trace split per call.

Used by bench.py. QEMU runs the `profile` role of bench-guest with one instruction per
translation block (`-singlestep`, or `-accel tcg,one-insn-per-tb=on` from QEMU 8.1), TB chaining off (`-d nochain`) and a monitor socket; once the
guest prints its start marker, `log exec,nochain` is switched on for a moment, so the log holds
one `Trace` line per executed instruction. The trace is cut at every entry to EL2 (a PC in the
hypervisor image after a guest PC) and every return to the guest; each piece is one hypercall.
The most common piece length is the per-call instruction count. The pieces of that length are
identical; one of them is attributed to source functions with llvm-symbolizer (inline frames
included) and a shadow call stack (bl/blr push, ret pops), so out-of-line helpers such as memset
count for their caller.
"""
import collections
import os
import re
import socket
import subprocess
import time

TRACE_RE = re.compile(rb"\[[0-9a-f]+/([0-9a-f]+)/")
HASH_RE = re.compile(r"::h[0-9a-f]{16}$")


def run_trace(qemu_cmd, sock, log, marker=b"BENCH-PROFILE-START", window=0.3, timeout=120):
    """Start QEMU (its command must include -monitor unix:SOCK and -D LOG), wait for the guest's
    marker, log `exec` for `window` seconds of real time, then quit. Returns the serial output."""
    for f in (sock, log):
        if os.path.exists(f):
            os.unlink(f)
    proc = subprocess.Popen(qemu_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = b""
    start = time.monotonic()
    try:
        while marker not in out:
            chunk = proc.stdout.read1(4096)
            if not chunk or time.monotonic() - start > timeout:
                raise RuntimeError("the profile guest never printed its start marker:\n"
                                   + out.decode(errors="replace")[-2000:])
            out += chunk
        mon = socket.socket(socket.AF_UNIX)
        for _ in range(100):
            try:
                mon.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        try:
            mon.sendall(b"log exec,nochain\n")
            time.sleep(window)
            mon.sendall(b"log none\n")
            time.sleep(0.1)
            mon.sendall(b"quit\n")
        except OSError:
            pass  # the guest finished and QEMU exited first: the trace is complete
        mon.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out += proc.stdout.read() or b""
    return out.decode(errors="replace")


def trace_pcs(log):
    pcs = []
    with open(log, "rb") as f:
        for line in f:
            m = TRACE_RE.search(line)
            if m:
                pcs.append(int(m.group(1), 16))
    return pcs


def split_calls(pcs, hyp_lo, hyp_hi):
    """EL2 pieces (PC lists) between a guest PC and the next guest PC, and the guest runs
    between them (instruction counts)."""
    pieces, guest_runs = [], []
    cur, prev_hyp, guest = None, None, 0
    for pc in pcs:
        h = hyp_lo <= pc < hyp_hi
        if h and prev_hyp is False:
            cur = []
            guest_runs.append(guest)
            guest = 0
        if h and cur is not None:
            cur.append(pc)
        if not h:
            if prev_hyp and cur is not None:
                pieces.append(cur)
                cur = None
            guest += 1
        prev_hyp = h
    return pieces, guest_runs[1:]


def disassemble(elf):
    """Address -> mnemonic for the hypervisor ELF."""
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", elf],
                         capture_output=True, text=True, check=True).stdout
    ops = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)", line)
        if m:
            ops[int(m.group(1), 16)] = m.group(2)
    return ops


def symbolize(elf, addrs):
    """Address -> inline frames, innermost first: [(function, file:line)]."""
    addrs = sorted(set(addrs))
    inp = "".join(f"{a:#x}\n" for a in addrs)
    out = subprocess.run(["llvm-symbolizer", f"--obj={elf}", "--inlining", "-C",
                          "--relative-address"], input=inp, capture_output=True, text=True,
                         check=True).stdout
    blocks = out.strip("\n").split("\n\n")
    frames = {}
    for a, block in zip(addrs, blocks):
        lines = block.split("\n")
        fr = []
        for i in range(0, len(lines) - 1, 2):
            fn = HASH_RE.sub("", lines[i].strip())
            loc = lines[i + 1].strip()
            loc = re.sub(r"^.*?/(src|abi|rt)/", r"\1/", loc)
            fr.append((fn, loc))
        frames[a] = fr or [("??", "??")]
    return frames


def short_fn(fn):
    fn = fn.replace("$LT$", "<").replace("$GT$", ">").replace("$u20$", " ")
    fn = re.sub(r"_\$u7b\$\$u7b\$closure\$u7d\$\$u7d\$", "{closure}", fn)
    fn = re.sub(r"<([^<>]*) as [^<>]*>", r"\1", fn)
    for prefix in ("wurley::", "core::", "alloc::"):
        if fn.startswith(prefix):
            fn = fn[len(prefix):]
    return fn


# The vCPU's trap loop (every exit is handled inside it): the breakdown's root.
LOOP_FN = "vm::vcpu::trap_loop"


def attribute(piece, base, elf):
    """Count the instructions of one piece by the function directly called by `LOOP_FN`
    (inline or not), or by their own outermost function outside it."""
    ops = disassemble(elf)
    rel = [pc - base for pc in piece]
    frames = symbolize(elf, rel)
    stack = []  # call-site inline chains (outermost first) of the calls in progress
    counts = collections.Counter()
    subs = collections.defaultdict(collections.Counter)
    steps = []
    for i, pc in enumerate(rel):
        own = list(reversed(frames[pc]))  # outermost first
        chain = [f for site in stack for f in site] + own
        names = [fn for fn, _ in chain]
        idx = next((k for k, n in enumerate(names) if n.endswith(LOOP_FN)), None)
        level = 1
        if idx is not None and idx + 1 < len(names):
            cat = short_fn(names[idx + 1])
            # Split the exit handler one level further: which handler.
            if cat.endswith("exit::handle_sync") and idx + 2 < len(names):
                cat += " > " + short_fn(names[idx + 2])
                level = 2
            below = idx + 1 + level
            if below < len(names):
                sub = short_fn(names[below])
            else:
                sub = "(itself) " + chain[idx + level][1]
        elif idx is not None:
            cat = f"{LOOP_FN} (itself)"
            sub = own[-1][1] if own else "??"
        else:
            cat = short_fn(names[0]) if names else "??"
            sub = own[-1][1] if own else "??"
        counts[cat] += 1
        subs[cat][sub] += 1
        if not steps or steps[-1][0] != cat:
            steps.append([cat, 0])
        steps[-1][1] += 1
        op = ops.get(pc, "")
        nxt = rel[i + 1] if i + 1 < len(rel) else None
        if op in ("bl", "blr") and nxt is not None and nxt != pc + 4:
            stack.append(list(reversed(frames[pc])))
        elif op in ("ret", "retaa", "retab") and stack:
            stack.pop()
    return counts, subs, steps


def analyse(log, elf, base, size):
    pcs = trace_pcs(log)
    pieces, guest_runs = split_calls(pcs, base, base + size)
    if not pieces:
        raise RuntimeError(f"no hypercalls in the trace ({len(pcs)} instructions)")
    lengths = collections.Counter(len(p) for p in pieces)
    mode, mode_count = lengths.most_common(1)[0]
    same = [p for p in pieces if len(p) == mode]
    piece = same[len(same) // 2]
    counts, subs, steps = attribute(piece, base, elf)
    guest = collections.Counter(guest_runs).most_common(1)[0][0] if guest_runs else 0
    return {
        "traced_instructions": len(pcs),
        "calls": len(pieces),
        "el2_instructions_per_call": mode,
        "calls_with_that_count": mode_count,
        "other_counts": {str(k): v for k, v in sorted(lengths.items()) if k != mode},
        "guest_instructions_between_calls": guest,
        "breakdown": [{"where": k, "instructions": v,
                       "inside": [{"where": sk, "instructions": sv}
                                  for sk, sv in subs[k].most_common(8)]}
                      for k, v in counts.most_common()],
        "sequence": [{"where": k, "instructions": v} for k, v in steps],
    }

//! Scheduler tests: EL1 test guests (`tests/guests/vmapi-guest`, roles `spin` and `latency`)
//! share physical CPUs and measure what the fixed-priority round-robin scheduler gives them
//! (docs/scheduling.md): equal shares for equal priorities, prompt wake-ups for a higher
//! priority, and an idle host CPU when every vCPU waits.
//!
//! The measurements are wall-clock ones (the guests' virtual counter is the host's clock under
//! QEMU), so the QEMU runs of this file take turns ([`one_at_a_time`]) instead of competing for
//! host cores with each other. A busy host still shows in them: each run reports how much host
//! CPU QEMU got meanwhile ([`HostCpu`]), so that a failure says whether the host held it back.

#![allow(clippy::unwrap_used)]

mod common;

use common::guest::{build_guest, compile};
use common::{Qemu, Run, scratch};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);
/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ on Linux).
const HZ: u64 = 100;

/// Serialises the QEMU runs of this file: their results depend on host CPU time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One VM of a test bundle, running the vmapi-guest image.
struct Vm<'a> {
    name: &'a str,
    vcpus: u32,
    priority: Option<u32>,
    bootargs: String,
}

/// A bundle of `vms`, all booting `kernel` with 16 MiB each; the first has the console.
fn bundle(dir: &Path, kernel: &Path, vms: &[Vm<'_>]) -> PathBuf {
    let mut nodes = String::new();
    for (i, vm) in vms.iter().enumerate() {
        let priority = vm
            .priority
            .map(|p| format!("            priority = <{p}>;\n"))
            .unwrap_or_default();
        let console = if i == 0 { "            console;\n" } else { "" };
        nodes.push_str(&format!(
            "        {} {{\n            kernel = /incbin/(\"{}\");\n            memory-size = <0x0 0x1000000>;\n            vcpus = <{}>;\n            bootargs = \"{}\";\n{priority}{console}        }};\n",
            vm.name,
            kernel.display(),
            vm.vcpus,
            vm.bootargs
        ));
    }
    let text = format!(
        "/dts-v1/;\n/ {{\n    compatible = \"wurley,bundle-v1\";\n    vms {{\n{nodes}    }};\n}};\n"
    );
    compile(dir, &text)
}

/// Build the guest and boot `vms` on `smp` physical CPUs until QEMU exits.
/// Also measures the host CPU time QEMU used while the guests ran ([`HostCpu`]).
fn boot(test: &str, smp: u32, vms: &[Vm<'_>]) -> (Run, HostCpu) {
    let dir = scratch(test);
    let kernel = build_guest("vmapi-guest", &dir);
    let initrd = bundle(&dir, &kernel, vms);
    let needle = initrd.display().to_string();
    let q = Qemu {
        initrd: Some(initrd),
        ..Qemu::smp(smp)
    };
    // Sample QEMU's CPU time from the log watcher (it runs every 50 ms while QEMU lives): the
    // first sample once every guest is up, then the latest one before QEMU exits.
    let pid = Cell::new(None);
    let first: RefCell<Option<Sample>> = RefCell::new(None);
    let last: RefCell<Option<Sample>> = RefCell::new(None);
    let run = q.run_until(TIMEOUT, |log| {
        let lines = vm_lines(log, vms);
        let up = |vm: &Vm<'_>| {
            lines
                .iter()
                .any(|(n, l)| n == vm.name && l.contains(" boot INFO "))
        };
        if !vms.iter().all(up) {
            return false;
        }
        if pid.get().is_none() {
            pid.set(find_qemu(&needle));
        }
        if let Some(p) = pid.get()
            && let Some(ticks) = cpu_ticks(p)
        {
            let sample = Sample {
                at: Instant::now(),
                ticks,
                run_delays: run_delays_ns(p),
                steal: host_steal_ticks(),
            };
            if first.borrow().is_none() {
                *first.borrow_mut() = Some(sample.clone());
            }
            *last.borrow_mut() = Some(sample);
        }
        false
    });
    check_finished(&run, vms);
    let (Some(a), Some(b)) = (first.into_inner(), last.into_inner()) else {
        run.fail("could not sample QEMU's CPU time while the guests ran")
    };
    // Per thread, for the threads in both samples (QEMU's come and go, and end at exit).
    let waited_ns: u64 = b
        .run_delays
        .iter()
        .filter_map(|(tid, d1)| {
            let (_, d0) = a.run_delays.iter().find(|(t, _)| t == tid)?;
            Some(d1.saturating_sub(*d0))
        })
        .sum();
    let cpu = HostCpu {
        secs: (b.at - a.at).as_secs_f64(),
        ticks: b.ticks.saturating_sub(a.ticks),
        waited_ms: waited_ns / 1_000_000,
        stolen_ms: b.steal.saturating_sub(a.steal) * 1000 / HZ,
    };
    (run, cpu)
}

/// One look at the QEMU process and the host.
#[derive(Clone, Debug)]
struct Sample {
    at: Instant,
    /// QEMU's CPU time ([`cpu_ticks`]).
    ticks: u64,
    /// Per QEMU thread, run-queue wait ([`run_delays_ns`]).
    run_delays: Vec<(u32, u64)>,
    /// Host steal time ([`host_steal_ticks`]).
    steal: u64,
}

/// Host CPU time (user + system) QEMU used while the guests ran, from the first poll at which
/// every VM had printed its `boot INFO` line to the last poll before QEMU exited.
#[derive(Clone, Copy, Debug)]
struct HostCpu {
    secs: f64,
    /// Clock ticks ([`HZ`] per second of one host core).
    ticks: u64,
    /// Time QEMU's threads spent runnable but waiting on the host's run queues (summed over
    /// threads).
    waited_ms: u64,
    /// Steal time of the whole host meanwhile (summed over its CPUs): when the host is itself a
    /// virtual machine, the time its own hypervisor ran something else instead.
    stolen_ms: u64,
}

impl HostCpu {
    /// Whether the host kept QEMU's `spinning` busy CPUs from running for more than a fifth of
    /// the run (a spinning guest CPU keeps its QEMU thread busy all the time: less CPU than
    /// that is time the host ran something else, whether it shows as run-queue wait, steal or a
    /// throttled cgroup).
    fn held_back(&self, spinning: f64) -> bool {
        self.cores() < 0.8 * spinning
            || (self.waited_ms + self.stolen_ms) as f64 > self.secs * 200.0 * spinning
    }

    /// Host cores QEMU kept busy on average (1.0 = one core all the time).
    fn cores(&self) -> f64 {
        self.ticks as f64 / (self.secs * HZ as f64)
    }
}

impl std::fmt::Display for HostCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QEMU used {} ticks of host CPU in {:.2} s, {:.0} % of one host core; its threads waited {} ms on host run queues; host steal time {} ms",
            self.ticks,
            self.secs,
            self.cores() * 100.0,
            self.waited_ms,
            self.stolen_ms
        )
    }
}

/// Each VM's output lines, put back together.
///
/// With several VMs the hypervisor writes guest output a line at a time, each starting with
/// `[name] `, but writes a partial line once its VM has been quiet for a hypervisor tick; the
/// rest follows later as another `[name] ` segment. A vCPU preempted in the middle of a line
/// on a shared CPU looks quiet too, so its line can come out in pieces with other output in
/// between: `[a] VMAPI sp[b] ...` ... `[a] in counts a ...`. Here every `[name] ` (a VM of
/// `vms` or a hypervisor `[cpuN] `) starts a segment; a segment that ends a serial line ends
/// its VM's line. Returns (VM, line) in the order the lines were completed.
fn vm_lines(log: &str, vms: &[Vm<'_>]) -> Vec<(String, String)> {
    let marker_at = |text: &str| -> Option<(usize, String)> {
        let mut from = 0;
        while let Some(i) = text.get(from..)?.find('[') {
            let at = from + i;
            let rest = text.get(at + 1..)?;
            if let Some(end) = rest.find("] ") {
                let name = rest.get(..end)?;
                let known = vms.iter().any(|vm| vm.name == name)
                    || name.strip_prefix("cpu").is_some_and(|n| {
                        n == "?" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    });
                if known {
                    return Some((at, name.to_string()));
                }
            }
            from = at + 1;
        }
        None
    };
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut lines = Vec::new();
    for serial_line in log.lines() {
        let mut rest = serial_line;
        let mut current: Option<String> = None;
        loop {
            let next = marker_at(rest);
            let (text, after) = match &next {
                Some((at, name)) => (&rest[..*at], Some(&rest[at + name.len() + 3..])),
                None => (rest, None),
            };
            if let Some(name) = &current {
                match pending.iter_mut().find(|(n, _)| n == name) {
                    Some((_, buf)) => buf.push_str(text),
                    None => pending.push((name.clone(), text.to_string())),
                }
            }
            match (next, after) {
                (Some((_, name)), Some(after)) => {
                    current = Some(name);
                    rest = after;
                }
                _ => break,
            }
        }
        if let Some(name) = current
            && let Some(i) = pending.iter().position(|(n, _)| *n == name)
        {
            lines.push(pending.swap_remove(i));
        }
    }
    lines.extend(pending);
    lines
}

/// [`vm_lines`] on split lines as the hypervisor writes them (no QEMU).
#[test]
fn split_console_lines_are_put_back_together() {
    let vms = ["a", "b"].map(|name| Vm {
        name,
        vcpus: 1,
        priority: None,
        bootargs: String::new(),
    });
    let log = "[cpu0] INFO  VM a: started\n\
               [b] VMAPI spin DON[a] VMAPI sp[cpu0] INFO  tick [x] y\n\
               [a] in counts a 1 2\n\
               [b] E pass=1 fail=0\n";
    let lines = vm_lines(log, &vms);
    let of = |vm: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|(n, _)| n == vm)
            .map(|(_, l)| l.as_str())
            .collect()
    };
    assert_eq!(of("a"), ["VMAPI spin counts a 1 2"]);
    assert_eq!(of("b"), ["VMAPI spin DONE pass=1 fail=0"]);
    assert_eq!(of("cpu0"), ["INFO  VM a: started", "INFO  tick [x] y"]);
}

/// No hypervisor or guest fault, no FAIL line, every VM's `DONE ... fail=0`, clean power-off.
fn check_finished(run: &Run, vms: &[Vm<'_>]) {
    if run.timed_out {
        run.fail(&format!("the guests did not all finish within {TIMEOUT:?}"));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    let lines = vm_lines(&run.log, vms);
    for (name, line) in &lines {
        if line.contains("VMAPI ") && line.contains(" FAIL") {
            run.fail(&format!("{name}: failed check: {line}"));
        }
    }
    for vm in vms {
        let done = lines
            .iter()
            .find(|(n, l)| n == vm.name && l.contains(" DONE "))
            .map(|(_, l)| l)
            .unwrap_or_else(|| run.fail(&format!("VM {} did not report DONE", vm.name)));
        if !done.contains("pass=1 fail=0") {
            run.fail(&format!("VM {}: {done}", vm.name));
        }
    }
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 once every guest powered off");
    }
}

/// VM `name`'s line that starts with `start`.
fn vm_line(run: &Run, vms: &[Vm<'_>], name: &str, start: &str) -> String {
    vm_lines(&run.log, vms)
        .into_iter()
        .find(|(n, l)| n == name && l.starts_with(start))
        .map(|(_, l)| l)
        .unwrap_or_else(|| run.fail(&format!("VM {name} printed no {start:?} line")))
}

/// The counts of VM `name`'s `VMAPI spin counts <name> c0 c1 ...`.
fn spin_counts(run: &Run, vms: &[Vm<'_>], name: &str) -> Vec<u64> {
    let prefix = format!("VMAPI spin counts {name} ");
    let line = vm_line(run, vms, name, &prefix);
    let line = &line[prefix.len()..];
    line.split_whitespace()
        .map(|c| {
            c.parse()
                .unwrap_or_else(|_| run.fail(&format!("bad count {c:?} for {name}")))
        })
        .collect()
}

/// `(max_us, median_us)` of VM `name`'s `VMAPI latency max_us=.. median_us=.. samples=..`.
fn latency(run: &Run, vms: &[Vm<'_>], name: &str) -> (u64, u64) {
    let line = vm_line(run, vms, name, "VMAPI latency max_us=");
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| run.fail(&format!("no {key} in {line:?}")))
    };
    (field("max_us="), field("median_us="))
}

/// Four VMs of two vCPUs each on two physical CPUs: each CPU runs four vCPUs of equal priority
/// (vCPU 0 of every VM on CPU 0, vCPU 1 on CPU 1), which spin for 3 s. Round robin must give
/// the four vCPUs of a CPU the same share: every count within 20 % of the mean of its CPU's
/// four. And every vCPU makes steady progress: none below half the mean of all eight.
///
/// The two CPUs are not compared with each other at 20 %: how much each emulated CPU gets done
/// is how much host CPU QEMU's thread for it got. Measured on a 2-core host with a compiler
/// running beside QEMU: CPU totals 1.1 to 1.8 times apart from run to run, while the spread
/// within each CPU stayed at 1-3 %. The output shows both.
#[test]
fn four_vms_of_two_vcpus_on_two_cpus_share_fairly() {
    let _turn = one_at_a_time();
    let names = ["a", "b", "c", "d"];
    let vms: Vec<Vm<'_>> = names
        .iter()
        .map(|&name| Vm {
            name,
            vcpus: 2,
            priority: None,
            bootargs: format!("role=spin cpus=2 seconds=3 name={name}"),
        })
        .collect();
    // Shares are what the guests count, so a host that runs one QEMU thread less than the
    // other looks like unfairness: a run during which the host held QEMU back is run again,
    // up to three runs; if the host held every one back, the test judges nothing.
    let mut attempt = 0;
    let (run, host) = loop {
        attempt += 1;
        let (run, host) = boot("sched-fair", 2, &vms);
        if attempt == 3 || !host.held_back(2.0) {
            break (run, host);
        }
        eprintln!("run {attempt}: the host held QEMU back ({host}): running again");
    };
    if host.held_back(2.0) {
        eprintln!("inconclusive: the host held QEMU back in all {attempt} runs ({host})");
        return;
    }
    eprintln!("{host} (two spinning CPUs: 200 % if the host ran both all the time)");
    for name in names {
        run.expect(&format!("VM {name}: "));
        let placed = run
            .log
            .lines()
            .any(|l| l.contains(&format!("VM {name}: ")) && l.contains("2 vCPUs on CPUs 0,1,"));
        if !placed {
            run.fail(&format!("VM {name}'s vCPUs should be on CPUs 0 and 1"));
        }
    }
    let mut all = Vec::new();
    for name in names {
        let counts = spin_counts(&run, &vms, name);
        if counts.len() != 2 {
            run.fail(&format!("VM {name}: {} counts, want 2", counts.len()));
        }
        all.extend(
            counts
                .iter()
                .enumerate()
                .map(|(i, &c)| (format!("{name}{i}"), c)),
        );
    }
    let mean = all.iter().map(|(_, c)| *c as f64).sum::<f64>() / all.len() as f64;
    let mut worst: f64 = 0.0;
    for (vcpu, c) in &all {
        let dev = (*c as f64 - mean) / mean;
        worst = worst.max(dev.abs());
        eprintln!("vCPU {vcpu}: {c:>12} ({:+.1} % of the mean)", dev * 100.0);
    }
    // vCPU k of every VM is on CPU k: the spread within a CPU is the scheduler's doing, the
    // difference between the CPUs mostly the host's (how much it ran each QEMU vCPU thread).
    let on_cpu =
        |k: usize| -> Vec<u64> { all.iter().skip(k).step_by(2).map(|(_, c)| *c).collect() };
    let spread = |v: &[u64]| -> f64 {
        let m = v.iter().sum::<u64>() as f64 / v.len() as f64;
        v.iter()
            .map(|&c| ((c as f64 - m) / m).abs())
            .fold(0.0, f64::max)
            * 100.0
    };
    let summary = format!(
        "mean {mean:.0}, largest deviation {:.1} %; CPU 0 total {} (spread {:.1} %), CPU 1 total {} (spread {:.1} %)",
        worst * 100.0,
        on_cpu(0).iter().sum::<u64>(),
        spread(&on_cpu(0)),
        on_cpu(1).iter().sum::<u64>(),
        spread(&on_cpu(1)),
    );
    eprintln!("{summary}");
    for k in 0..2 {
        let s = spread(&on_cpu(k));
        if s > 20.0 {
            run.fail(&format!(
                "the vCPUs on CPU {k} are {s:.1} % apart from their mean (limit 20 %): \
                 {all:?}\n{summary}\n{host}"
            ));
        }
    }
    if let Some((vcpu, c)) = all.iter().find(|(_, c)| (*c as f64) < mean / 2.0) {
        run.fail(&format!(
            "vCPU {vcpu} made little progress: {c}, under half the mean {mean:.0}\n{summary}\n{host}"
        ));
    }
}

/// One physical CPU: `busy` (priority 16) spins for 4 s while `rt` (priority 48) waits for its
/// virtual timer every 2 ms. Each wake-up of the higher priority preempts `busy` at once, so
/// `rt`'s median lateness stays far under `busy`'s 5 ms timeslice and at most two of its 200
/// samples are over 1 ms (the host's scheduler may hold QEMU back once), none over two
/// timeslices. The same pair at equal priorities is run too and its latency printed (there
/// `rt` waits for the timeslice every time).
///
/// `rt` starts sampling 200 ms after it boots: the resource manager, which Wurley starts on
/// CPU 0 at priority 48 as well, sets up its links meanwhile, and round robin between equal
/// priorities may then rightly hold `rt` back for one of its timeslices.
#[test]
fn high_priority_guest_preempts_within_a_timeslice() {
    let _turn = one_at_a_time();
    let pair = |busy: u32, rt: u32| {
        [
            Vm {
                name: "busy",
                vcpus: 1,
                priority: Some(busy),
                bootargs: "role=spin cpus=1 seconds=4 name=busy".into(),
            },
            Vm {
                name: "rt",
                vcpus: 1,
                priority: Some(rt),
                bootargs: "role=latency period-us=2000 samples=200 warmup-us=200000 name=rt".into(),
            },
        ]
    };
    let vms = pair(16, 48);
    // Lateness is what the guest sees, so a host that keeps QEMU off its core looks like
    // missing preemption: a run during which the host held QEMU back ([`HostCpu::held_back`])
    // is run again, up to three runs. If the host held every one back, the latency measures
    // the host, not Wurley: the test says so and judges nothing.
    let mut attempt = 0;
    let (run, host) = loop {
        attempt += 1;
        let (run, host) = boot("sched-prio", 1, &vms);
        if attempt == 3 || !host.held_back(1.0) {
            break (run, host);
        }
        eprintln!("run {attempt}: the host held QEMU back ({host}): running again");
    };
    if host.held_back(1.0) {
        eprintln!("inconclusive: the host held QEMU back in all {attempt} runs ({host})");
        return;
    }
    let (max, median) = latency(&run, &vms, "rt");
    let busy = spin_counts(&run, &vms, "busy");
    eprintln!("{}", vm_line(&run, &vms, "rt", "VMAPI latency timer "));
    eprintln!(
        "rt at priority 48 over busy at 16: max {max} us, median {median} us (busy counted {busy:?}); {host}"
    );

    let eq_vms = pair(32, 32);
    let (equal, eq_host) = boot("sched-prio-equal", 1, &eq_vms);
    let (eq_max, eq_median) = latency(&equal, &eq_vms, "rt");
    let eq_busy = spin_counts(&equal, &eq_vms, "busy");
    eprintln!("{}", vm_line(&equal, &eq_vms, "rt", "VMAPI latency timer "));
    eprintln!(
        "rt and busy both at priority 32: max {eq_max} us, median {eq_median} us (busy counted {eq_busy:?}); {eq_host}"
    );

    // Without preemption every wakeup waits for busy's timeslice (the equal-priority run above
    // shows it: all 200 samples over 1 ms). With it, almost none does; a few samples can still
    // be late by what the host held QEMU back (QEMU's threads share the machine's cores with the
    // other tests, and a virtual CI host has steal time: 3 late samples with 20 ms of steal were
    // seen), so up to a tenth of the samples may be late, none later than two timeslices, and
    // the median must stay far below one.
    let timeslice_us = 5000;
    let timer = vm_line(&run, &vms, "rt", "VMAPI latency timer ");
    let over_1ms: u64 = timer
        .split_whitespace()
        .find_map(|w| w.strip_prefix("over_1ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| run.fail("no over_1ms in rt's latency line"));
    if max >= 2 * timeslice_us || over_1ms > 20 || median >= 1000 {
        run.fail(&format!(
            "rt (priority 48) woke up to {max} us late (median {median} us, {over_1ms} samples over 1 ms): \
             not preempting busy within its {timeslice_us} us timeslice\n\
             {host} (a spinning CPU: near 100 % and little waiting unless the host held QEMU \
             back, which the guests see as lateness too)"
        ));
    }
}

/// The QEMU process whose command line names `needle` (this test's own bundle path).
fn find_qemu(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(needle)
            .then_some(pid)
    })
}

/// Per thread of process `pid`, the time it has spent waiting on a host run queue, in ns (the
/// second field of `/proc/<pid>/task/<tid>/schedstat`; none if the kernel does not keep it).
fn run_delays_ns(pid: u32) -> Vec<(u32, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect()
}

/// The host's steal time in clock ticks, summed over its CPUs (`/proc/stat`; 0 if unknown).
fn host_steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu = s.lines().find(|l| l.starts_with("cpu "))?.to_string();
            cpu.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU time (user + system) of process `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// One physical CPU, two guests that wait in WFI for their virtual timer every 0.5 s, six
/// times (3 s). Every WFI blocks its vCPU and the CPU sleeps in WFI too: QEMU must use little
/// host CPU meanwhile (the threshold of el2_boot's idle test, a quarter of one host core).
#[test]
fn idle_guests_keep_the_host_cpu_idle() {
    let _turn = one_at_a_time();
    let vms: Vec<Vm<'_>> = ["idle1", "idle2"]
        .iter()
        .map(|&name| Vm {
            name,
            vcpus: 1,
            priority: None,
            bootargs: format!("role=latency period-us=500000 samples=6 name={name}"),
        })
        .collect();
    let (run, host) = boot("sched-idle", 1, &vms);
    let (secs, used) = (host.secs, host.ticks);
    let limit = (secs * HZ as f64 / 4.0) as u64;
    eprintln!("{host} with two idle guests (limit {limit} ticks)");
    if secs < 2.0 {
        run.fail(&format!("only {secs:.2} s of the run could be measured"));
    }
    if used >= limit {
        run.fail(&format!(
            "QEMU used {used} ticks of CPU in {secs:.2} s of idle guests (limit {limit})"
        ));
    }
}

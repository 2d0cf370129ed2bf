//! Boots the Wurley image under QEMU and watches its serial console.
//!
//! Every run has a timeout; a failed expectation panics with the tail of the log, so a CI
//! failure shows what the firmware printed.

#![allow(dead_code)]

pub mod guest;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Lines of log shown when a test fails.
const TAIL_LINES: usize = 40;

/// The image under test: `WURLEY_IMAGE`, or `target/wurley.bin` as `make build` leaves it.
pub fn image() -> PathBuf {
    let path = std::env::var_os("WURLEY_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wurley.bin"));
    assert!(
        path.exists(),
        "{} does not exist: run `make build` (or `make test`)",
        path.display()
    );
    path
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The hypervisor command line of a run: `append` followed by the words of `WURLEY_TEST_ARGS`
/// (if set and not blank), so a whole suite can run with other boot options (for instance
/// `WURLEY_TEST_ARGS=rm.debug=1`).
pub fn append_with_test_args(append: Option<&str>) -> Option<String> {
    let extra = std::env::var("WURLEY_TEST_ARGS").unwrap_or_default();
    join_args(append, &extra)
}

fn join_args(append: Option<&str>, extra: &str) -> Option<String> {
    let extra = extra.trim();
    match (append, extra.is_empty()) {
        (a, true) => a.map(str::to_string),
        (Some(a), false) if !a.trim().is_empty() => Some(format!("{a} {extra}")),
        (_, false) => Some(extra.to_string()),
    }
}

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct Qemu {
    pub smp: u32,
    pub mem: String,
    pub append: Option<String>,
    pub dtb: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub extra: Vec<String>,
}

impl Default for Qemu {
    fn default() -> Self {
        Self {
            smp: 2,
            mem: "1G".into(),
            append: None,
            dtb: None,
            initrd: None,
            extra: Vec::new(),
        }
    }
}

/// The common machine arguments: the machine Wurley targets, without the kernel.
pub fn machine_args(smp: u32, mem: &str) -> Vec<String> {
    [
        "-M",
        "virt,virtualization=on,gic-version=3",
        "-cpu",
        "max,pauth-impdef=on",
        "-smp",
        &smp.to_string(),
        "-m",
        mem,
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-nic",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Qemu {
    pub fn smp(smp: u32) -> Self {
        Self {
            smp,
            ..Self::default()
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(machine_args(self.smp, &self.mem));
        cmd.arg("-kernel").arg(image());
        if let Some(a) = append_with_test_args(self.append.as_deref()) {
            cmd.arg("-append").arg(a);
        }
        if let Some(d) = &self.dtb {
            cmd.arg("-dtb").arg(d);
        }
        if let Some(i) = &self.initrd {
            cmd.arg("-initrd").arg(i);
        }
        cmd.args(&self.extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Boot and collect output until `done` is satisfied by the log, QEMU exits, or `timeout`.
    pub fn run_until(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Run {
        self.run_with(timeout, &[], done)
    }

    /// Boot with a console on QEMU's stdin: for each `(wait_for, send)` step, wait until the log
    /// contains `wait_for`, then type `send`. Then wait for QEMU to exit (or `timeout`).
    pub fn run_interactive(&self, timeout: Duration, steps: &[(&str, &str)]) -> Run {
        self.run_with(timeout, steps, |_| false)
    }

    fn run_with(
        &self,
        timeout: Duration,
        steps: &[(&str, &str)],
        done: impl Fn(&str) -> bool,
    ) -> Run {
        use std::io::Write;
        let mut cmd = self.command();
        if !steps.is_empty() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .expect("start qemu-system-aarch64 (run `make deps`)");
        let mut stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));
        let readers = [
            spawn_reader(child.stdout.take(), &log),
            spawn_reader(child.stderr.take(), &log),
        ];
        let start = Instant::now();
        let mut step = 0;
        let mut exited = None;
        loop {
            if done(&log.lock().unwrap()) {
                break;
            }
            if let Some((wait_for, send)) = steps.get(step)
                && log.lock().unwrap().contains(wait_for)
            {
                // Give the guest's shell a moment to start reading after printing its prompt.
                thread::sleep(Duration::from_millis(500));
                if let Some(input) = stdin.as_mut() {
                    let _ = input.write_all(send.as_bytes());
                    let _ = input.flush();
                }
                step += 1;
            }
            if let Some(status) = child.try_wait().expect("wait for qemu") {
                exited = Some(status.code());
                break;
            }
            if start.elapsed() > timeout {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let satisfied = done(&log.lock().unwrap());
        let pid = child.id();
        if exited.is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
        drop(stdin);
        for r in readers.into_iter().flatten() {
            let _ = r.join();
        }
        let text = log.lock().unwrap().clone();
        let timed_out = !satisfied && exited.is_none();
        Run {
            log: text,
            exit: exited,
            timed_out,
            elapsed: start.elapsed(),
            pid,
            child: None,
        }
    }

    /// Boot and keep QEMU running once `ready` matches, for tests that watch the live process.
    pub fn start_until(&self, timeout: Duration, ready: &str) -> Run {
        let mut child = self.command().spawn().expect("start qemu-system-aarch64");
        let log = Arc::new(Mutex::new(String::new()));
        spawn_reader(child.stdout.take(), &log);
        spawn_reader(child.stderr.take(), &log);
        let start = Instant::now();
        while !log.lock().unwrap().contains(ready) && start.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let text = log.lock().unwrap().clone();
        let pid = child.id();
        let mut run = Run {
            log: text,
            exit: None,
            timed_out: false,
            elapsed: start.elapsed(),
            pid,
            child: Some(child),
        };
        if !run.log.contains(ready) {
            run.stop();
            run.fail(&format!("never printed {ready:?} within {timeout:?}"));
        }
        run
    }
}

fn spawn_reader(
    pipe: Option<impl Read + Send + 'static>,
    log: &Arc<Mutex<String>>,
) -> Option<thread::JoinHandle<()>> {
    let mut pipe = pipe?;
    let log = Arc::clone(log);
    Some(thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            log.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
        }
    }))
}

/// The result of one boot.
pub struct Run {
    pub log: String,
    /// `Some(code)` if QEMU exited by itself.
    pub exit: Option<Option<i32>>,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub pid: u32,
    child: Option<Child>,
}

impl Run {
    /// The last lines of the log.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Fail the test with a reason and the log tail.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n(QEMU {} after {:.1?})\n----- last {TAIL_LINES} lines of the serial log -----\n{}\n-----",
            match self.exit {
                Some(code) => format!("exited with {code:?}"),
                None if self.timed_out => "timed out".to_string(),
                None => "was stopped".to_string(),
            },
            self.elapsed,
            self.tail()
        )
    }

    /// Require `needle` in the log.
    pub fn expect(&self, needle: &str) -> &Self {
        if !self.log.contains(needle) {
            self.fail(&format!("expected {needle:?} in the log"));
        }
        self
    }

    /// Require `needle` to be absent.
    pub fn reject(&self, needle: &str) -> &Self {
        if self.log.contains(needle) {
            self.fail(&format!("did not expect {needle:?} in the log"));
        }
        self
    }

    /// Stop a QEMU left running by [`Qemu::start_until`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// CPU time (user + system) the QEMU process has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .expect("read /proc/pid/stat");
        let after_comm = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Dump QEMU virt's own device tree for `smp`/`mem` into `path`.
pub fn dump_dtb(smp: u32, mem: &str, path: &Path) {
    let mut args = machine_args(smp, mem);
    args[1] = format!("{},dumpdtb={}", args[1], path.display());
    let status = Command::new("qemu-system-aarch64")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run qemu-system-aarch64");
    assert!(
        status.success() && path.exists(),
        "QEMU could not dump its DTB"
    );
}

#[test]
fn test_args_are_appended() {
    assert_eq!(join_args(None, ""), None);
    assert_eq!(join_args(Some("a=1"), "  "), Some("a=1".into()));
    assert_eq!(
        join_args(Some("a=1"), "rm.debug=1"),
        Some("a=1 rm.debug=1".into())
    );
    assert_eq!(join_args(None, " rm.debug=1 "), Some("rm.debug=1".into()));
    assert_eq!(join_args(Some(""), "rm.debug=1"), Some("rm.debug=1".into()));
}

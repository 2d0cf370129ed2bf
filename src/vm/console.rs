//! The shared console: guest output to the physical UART, and physical input to the VM in focus.
//!
//! With one VM its output goes to the UART untouched, so an interactive shell behaves as on bare
//! hardware. With several, output is collected per VM and written a whole line at a time, each
//! starting with `[name] `, so lines of different VMs never mix; a partial line (a shell prompt)
//! is written once its VM has been quiet for a hypervisor tick. Input goes to one VM at a
//! time; `Ctrl-]` (0x1d) moves the focus to the next VM that is still running. The resource
//! manager (the root VM) is not counted: its lines always carry `[rm] `, and it gets no input.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::machine::{self, Vm};

/// The input focus switch character: Ctrl-].
pub const FOCUS_SWITCH: u8 = 0x1d;

static FOCUS: AtomicUsize = AtomicUsize::new(0);

/// Give input focus to the VM in slot `index`.
pub fn set_focus(index: usize) {
    FOCUS.store(index, Ordering::Relaxed);
}

/// Give input focus to the VM in slot `index` if no live VM has it (the VM in focus ended, or
/// the focus is on the root VM, which takes no input): a VM built from objects that did not
/// ask for the focus takes it when nobody else can use it.
pub fn focus_if_unfocused(index: usize) {
    let current = FOCUS.load(Ordering::Relaxed);
    let taken = machine::get(current).is_some_and(|vm| !vm.has_ended() && !vm.root);
    if !taken {
        FOCUS.store(index, Ordering::Relaxed);
    }
}

/// Longest line kept back before it is written anyway.
pub const LINE_MAX: usize = 256;

/// A VM's output line being collected (several VMs only).
#[derive(Debug)]
pub struct PendingLine {
    buf: [u8; LINE_MAX],
    len: usize,
    /// No byte arrived since the last tick looked.
    quiet: bool,
}

impl PendingLine {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
            quiet: false,
        }
    }

    fn flush(&mut self, name: &str) {
        if self.len > 0 {
            crate::console::write_guest_line(name, self.buf.get(..self.len).unwrap_or(&[]));
            self.len = 0;
        }
    }
}

impl Default for PendingLine {
    fn default() -> Self {
        Self::new()
    }
}

/// Output from `vm`'s UART.
pub fn output(vm: &Vm, byte: u8) {
    if !vm.root && !machine::console_shared() {
        // A line collected while the console was shared goes out first.
        let mut line = vm.out_line.lock();
        if line.len != 0 {
            line.flush(&vm.name.get());
        }
        drop(line);
        crate::console::write_guest(byte);
        return;
    }
    let mut line = vm.out_line.lock();
    let len = line.len;
    if let Some(slot) = line.buf.get_mut(len) {
        *slot = byte;
        line.len += 1;
    }
    line.quiet = false;
    if byte == b'\n' || line.len == LINE_MAX {
        line.flush(&vm.name.get());
    }
}

/// Called every hypervisor tick on one CPU: write partial lines of VMs that went quiet.
pub fn flush_quiet_lines() {
    for vm in machine::all().filter(|vm| vm.root || machine::console_shared()) {
        // A VM whose vCPU waits for its CPU has not gone quiet: it was preempted mid-line.
        let preempted = vm
            .vcpus
            .iter()
            .any(|v| v.place.load(Ordering::Acquire) == super::sched::QUEUED);
        if let Some(mut line) = vm.out_line.try_lock() {
            if line.quiet && !preempted {
                line.flush(&vm.name.get());
            }
            line.quiet = true;
        }
    }
}

/// Input from the physical UART.
pub fn input(bytes: &[u8]) {
    if machine::slots() == 0 {
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == FOCUS_SWITCH {
            deliver(&bytes[start..i]);
            start = i + 1;
            switch_focus();
        }
    }
    deliver(&bytes[start..]);
}

/// Move console input to the next live VM (by slot), skipping the root VM.
fn switch_focus() {
    let current = FOCUS.load(Ordering::Relaxed);
    let slots = machine::slots();
    for step in 1..=slots {
        let next = (current + step) % slots;
        if let Some(vm) = machine::get(next).filter(|vm| !vm.has_ended() && !vm.root) {
            FOCUS.store(next, Ordering::Relaxed);
            crate::console::print(format_args!(
                "\n[wurley] console input now goes to VM {}\n",
                vm.name
            ));
            return;
        }
    }
}

fn deliver(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Some(vm) =
        machine::get(FOCUS.load(Ordering::Relaxed)).filter(|vm| !vm.has_ended() && !vm.root)
    else {
        return;
    };
    let (accepted, level) = {
        let mut uart = vm.uart.lock();
        let accepted = uart.receive(bytes);
        (accepted, uart.irq_level())
    };
    log::debug!(
        "console input: {} of {} bytes to VM {}, line {}",
        accepted,
        bytes.len(),
        vm.name,
        level
    );
    super::irqs::set_uart_level(vm, level);
}

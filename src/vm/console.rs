//! The shared console: guest output to the physical UART, and physical input to the VM in focus.
//!
//! With one VM its output goes to the UART untouched, so an interactive shell behaves as on bare
//! hardware. With several, each output line starts with `[name] `. Input goes to one VM at a
//! time; `Ctrl-]` (0x1d) moves the focus to the next VM that is still running.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::machine::{self, Vm};

/// The input focus switch character: Ctrl-].
pub const FOCUS_SWITCH: u8 = 0x1d;

static FOCUS: AtomicUsize = AtomicUsize::new(0);

/// Give input focus to VM `index` (in manifest order) first.
pub fn set_focus(index: usize) {
    FOCUS.store(index, Ordering::Relaxed);
}

/// Output from `vm`'s UART.
pub fn output(vm: &Vm, byte: u8) {
    let prefix = machine::all().len() > 1 && vm.at_line_start.swap(false, Ordering::Relaxed);
    crate::console::write_guest(prefix.then_some(vm.name.as_str()), byte);
    if byte == b'\n' {
        vm.at_line_start.store(true, Ordering::Relaxed);
    }
}

/// Input from the physical UART.
pub fn input(bytes: &[u8]) {
    let vms = machine::all();
    if vms.is_empty() {
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == FOCUS_SWITCH {
            deliver(vms, &bytes[start..i]);
            start = i + 1;
            switch_focus(vms);
        }
    }
    deliver(vms, &bytes[start..]);
}

fn switch_focus(vms: &[&'static Vm]) {
    let current = FOCUS.load(Ordering::Relaxed);
    for step in 1..=vms.len() {
        let next = (current + step) % vms.len();
        if let Some(vm) = vms.get(next).filter(|vm| !vm.has_ended()) {
            FOCUS.store(next, Ordering::Relaxed);
            crate::console::print(format_args!(
                "\n[wurley] console input now goes to VM {}\n",
                vm.name
            ));
            return;
        }
    }
}

fn deliver(vms: &[&'static Vm], bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Some(vm) = vms
        .get(FOCUS.load(Ordering::Relaxed))
        .filter(|vm| !vm.has_ended())
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

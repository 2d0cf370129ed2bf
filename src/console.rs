//! The hypervisor console: the device tree's `stdout-path` UART, shared by all CPUs.
//!
//! Normal output takes a lock per line (with IRQs masked on this CPU while it is held, so an
//! interrupt handler that logs cannot deadlock on it), so lines from different CPUs never
//! interleave. [`emergency`] bypasses the lock for exception dumps and panics.

use core::fmt::{self, Write};
use spin::{Mutex, Once};

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::pl011::Pl011;

static UART: Once<Pl011> = Once::new();
static LINE_LOCK: Mutex<()> = Mutex::new(());

/// Install the console UART. Only the first call has an effect.
pub fn init(uart: Pl011) {
    UART.call_once(|| uart);
}

/// Whether a console exists yet.
pub fn ready() -> bool {
    UART.get().is_some()
}

/// Write formatted text as one unit with respect to other CPUs.
pub fn print(args: fmt::Arguments<'_>) {
    let daif = cpu::save_and_disable_irqs();
    {
        let _line = LINE_LOCK.lock();
        let _ = Writer.write_fmt(args);
    }
    cpu::restore_irqs(daif);
}

/// One byte of guest output, raw.
pub fn write_guest(byte: u8) {
    let daif = cpu::save_and_disable_irqs();
    if let Some(uart) = UART.get() {
        let _line = LINE_LOCK.lock();
        uart.write_byte(byte);
    }
    cpu::restore_irqs(daif);
}

/// A whole line (or a stalled partial one) of guest output, starting with `[prefix] `.
pub fn write_guest_line(prefix: &str, bytes: &[u8]) {
    let daif = cpu::save_and_disable_irqs();
    if let Some(uart) = UART.get() {
        let _line = LINE_LOCK.lock();
        uart.write_byte(b'[');
        uart.write_str(prefix);
        uart.write_str("] ");
        for &b in bytes {
            uart.write_byte(b);
        }
    }
    cpu::restore_irqs(daif);
}

/// Bytes received on the console UART since the last call, up to `buf.len()`.
pub fn read_input(buf: &mut [u8]) -> usize {
    let Some(uart) = UART.get() else { return 0 };
    let mut n = 0;
    while n < buf.len() {
        match uart.read_byte() {
            Some(b) => {
                if let Some(slot) = buf.get_mut(n) {
                    *slot = b;
                }
                n += 1;
            }
            None => break,
        }
    }
    n
}

/// Let the UART interrupt on input.
pub fn enable_input_interrupt() {
    if let Some(uart) = UART.get() {
        uart.enable_rx_interrupt();
    }
}

/// A writer that does not take the console lock, for when the lock may be held by a CPU that
/// will never release it (an exception or panic in the middle of a line).
pub fn emergency() -> Writer {
    Writer
}

/// Writes to the console UART, or nowhere before [`init`].
pub struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = UART.get() {
            uart.write_str(s);
        }
        Ok(())
    }
}

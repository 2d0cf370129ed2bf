//! The hypervisor console: the device tree's `stdout-path` UART, shared by all CPUs.
//!
//! Normal output goes through [`Console`], which holds a lock per line so lines from different
//! CPUs never interleave. [`emergency`] bypasses the lock for exception dumps and panics.

use core::fmt::{self, Write};
use spin::{Mutex, Once};

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
    let _line = LINE_LOCK.lock();
    let _ = Writer.write_fmt(args);
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

//! PL011 console output (transmit only): write UARTDR once UARTFR.TXFF is clear.
//!
//! Wurley's console collects each VM's output a line at a time, so callers print whole lines
//! ([`println!`](crate::println)). Interrupt handlers should not print: a line they print
//! could land in the middle of one the main code is writing.

use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

/// The VM's PL011 (Wurley's guest layout, as on QEMU's virt machine).
pub const UART_BASE: usize = 0x0900_0000;
const UARTDR: usize = UART_BASE;
const UARTFR: usize = UART_BASE + 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Whether the last byte written ended a line.
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Write one byte.
pub fn putc(b: u8) {
    // SAFETY: UARTFR and UARTDR are the VM's PL011 registers (emulated by the hypervisor),
    // identity mapped as Device memory by `entry.S`, 32-bit aligned; plain 32-bit accesses.
    unsafe {
        while ptr::read_volatile(UARTFR as *const u32) & FR_TXFF != 0 {}
        ptr::write_volatile(UARTDR as *mut u32, u32::from(b));
    }
    AT_LINE_START.store(b == b'\n', Ordering::Relaxed);
}

/// Write a string.
pub fn puts(s: &str) {
    s.bytes().for_each(putc);
}

/// End a partly written line, so that a report that follows starts on its own line.
pub fn emergency() {
    if !AT_LINE_START.load(Ordering::Relaxed) {
        putc(b'\n');
    }
}

/// The console as a [`fmt::Write`] sink.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        puts(s);
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Console::write_str never fails.
    let _ = Console.write_fmt(args);
}

/// Print to the PL011 console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(format_args!($($arg)*))
    };
}

/// Print a line to the PL011 console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::putc(b'\n')
    };
    ($($arg:tt)*) => {{
        $crate::console::_print(format_args!($($arg)*));
        $crate::console::putc(b'\n');
    }};
}

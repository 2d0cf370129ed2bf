//! PL011 console output (transmit only): write UARTDR once UARTFR.TXFF is clear.
//!
//! Wurley's console collects each VM's output a line at a time, so callers print whole lines
//! ([`println!`](crate::println)). Interrupt handlers should not print: a line they print
//! could land in the middle of one the main code is writing.
//!
//! With several vCPUs ([`crate::smp`]) [`print!`](crate::print) and
//! [`println!`](crate::println) hold a console lock for the whole line, so lines of different
//! vCPUs do not mix. The lock is taken again freely by the vCPU that holds it (an exception
//! report in the middle of a line), and given up on after a while, so a vCPU that died holding
//! it cannot silence the others.

use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The VM's PL011 (Wurley's guest layout, as on QEMU's virt machine).
pub const UART_BASE: usize = 0x0900_0000;
const UARTDR: usize = UART_BASE;
const UARTFR: usize = UART_BASE + 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Whether the last byte written ended a line.
static AT_LINE_START: AtomicBool = AtomicBool::new(true);
/// The vCPU holding the console lock: its MPIDR affinity + 1, or 0 if free.
static OWNER: AtomicU64 = AtomicU64::new(0);
/// Attempts before the lock is taken anyway.
const LOCK_SPINS: u32 = 10_000_000;

/// The console lock, held by one vCPU while it writes a line (see the module documentation).
struct LineLock {
    /// Whether this guard took the lock (false: it was already ours, or taken over).
    release: bool,
}

impl LineLock {
    fn acquire() -> Self {
        let me = crate::mpidr_affinity() + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return Self { release: false };
        }
        for _ in 0..LOCK_SPINS {
            if OWNER
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Self { release: true };
            }
            core::hint::spin_loop();
        }
        Self { release: false }
    }
}

impl Drop for LineLock {
    fn drop(&mut self) {
        if self.release {
            OWNER.store(0, Ordering::Release);
        }
    }
}

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
    let _lock = LineLock::acquire();
    // Console::write_str never fails.
    let _ = Console.write_fmt(args);
}

#[doc(hidden)]
pub fn _println(args: fmt::Arguments<'_>) {
    let _lock = LineLock::acquire();
    let _ = Console.write_fmt(args);
    putc(b'\n');
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
    ($($arg:tt)*) => {
        $crate::console::_println(format_args!($($arg)*))
    };
}

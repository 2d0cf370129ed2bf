//! Where the RM's own log lines and the client VMs' console output go: the EL1 binary prints
//! them on its PL011, host tests collect them.

use core::fmt;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One line per request, per client event (bootargs `rm.debug=1`).
    Debug,
    /// Something the RM did not expect from a client or the hypervisor: dropped packets,
    /// discarded partial messages, failed sends. Always printed.
    Error,
}

/// The sink for everything the RM prints.
pub trait Output {
    /// Whether [`Level::Debug`] lines are wanted (callers skip formatting them otherwise).
    fn debug_enabled(&self) -> bool;

    /// One log line.
    fn log(&mut self, level: Level, args: fmt::Arguments<'_>);

    /// One line of VM `vm`'s console output (VM_CONSOLE_WRITE), without its newline. `text`
    /// is printable ASCII.
    fn console(&mut self, vm: &str, text: &str);
}

/// Log a debug line on an [`Output`] (arguments are only formatted when debug is enabled).
#[macro_export]
macro_rules! debug {
    ($out:expr, $($arg:tt)*) => {{
        let out: &mut dyn $crate::output::Output = $out;
        if out.debug_enabled() {
            out.log($crate::output::Level::Debug, format_args!($($arg)*));
        }
    }};
}

/// Log an error line on an [`Output`].
#[macro_export]
macro_rules! error {
    ($out:expr, $($arg:tt)*) => {{
        let out: &mut dyn $crate::output::Output = $out;
        out.log($crate::output::Level::Error, format_args!($($arg)*));
    }};
}

/// An [`Output`] that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Output for Discard {
    fn debug_enabled(&self) -> bool {
        false
    }

    fn log(&mut self, _level: Level, _args: fmt::Arguments<'_>) {}

    fn console(&mut self, _vm: &str, _text: &str) {}
}

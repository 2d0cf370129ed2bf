//! The `log` crate's backend: each record is one console line prefixed with the CPU number.
//!
//! The level is set at build time (`WURLEY_LOG_LEVEL`, default `info`) and can be overridden at
//! boot with `loglevel=` in the bootargs (see [`crate::cmdline`]).

use log::{LevelFilter, Log, Metadata, Record};

use crate::arch::aarch64::percpu;

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = record.level();
        match percpu::current() {
            Some(cpu) => crate::console::print(format_args!(
                "[cpu{}] {:<5} {}\n",
                cpu.index,
                level,
                record.args()
            )),
            None => crate::console::print(format_args!("[cpu?] {:<5} {}\n", level, record.args())),
        }
    }

    fn flush(&self) {}
}

/// Install the logger at `level`.
pub fn init(level: LevelFilter) {
    // A second call fails harmlessly: the logger is already installed.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

//! The hypervisor's options in the boot command line (`/chosen/bootargs`).
//!
//! Options are whitespace-separated `key=value` words; unknown words are ignored (the same
//! bootargs may carry options for other software). Recognised:
//!
//! - `loglevel=<level>`: `off`, `error`, `warn`, `info`, `debug`, `trace`, or a Linux-style
//!   number 0-8 (0-3 error, 4 warn, 5-6 info, 7 debug, 8 trace).
//! - `wurley.fault=<kind>`: deliberately fault after boot to check the crash path:
//!   `data-abort`, `undefined` or `panic`.
//! - `rm.debug=<value>`: passed on to the resource manager's command line.

use log::LevelFilter;

/// The value of the last `key=value` word for `key`.
pub fn param<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs
        .split_ascii_whitespace()
        .rev()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `loglevel=` parsed, or `None` if absent or not understood.
pub fn log_level(bootargs: &str) -> Option<LevelFilter> {
    let value = param(bootargs, "loglevel")?;
    Some(match value {
        "off" => LevelFilter::Off,
        "error" | "0" | "1" | "2" | "3" => LevelFilter::Error,
        "warn" | "4" => LevelFilter::Warn,
        "info" | "5" | "6" => LevelFilter::Info,
        "debug" | "7" => LevelFilter::Debug,
        "trace" | "8" => LevelFilter::Trace,
        _ => return None,
    })
}

/// A deliberate fault requested with `wurley.fault=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Load from an unmapped address: a data abort at EL2.
    DataAbort,
    /// Execute a permanently undefined instruction.
    Undefined,
    /// Call `panic!`.
    Panic,
}

/// `wurley.fault=` parsed.
pub fn fault(bootargs: &str) -> Option<Fault> {
    match param(bootargs, "wurley.fault")? {
        "data-abort" => Some(Fault::DataAbort),
        "undefined" => Some(Fault::Undefined),
        "panic" => Some(Fault::Panic),
        _ => None,
    }
}

/// The build-time default log level: `WURLEY_LOG_LEVEL` when the image was built, else `info`.
pub fn default_log_level() -> LevelFilter {
    match option_env!("WURLEY_LOG_LEVEL") {
        Some(level) => log_level_word(level).unwrap_or(LevelFilter::Info),
        None => LevelFilter::Info,
    }
}

fn log_level_word(word: &str) -> Option<LevelFilter> {
    word.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_last_value_and_ignores_other_words() {
        let args = "console=ttyAMA0 loglevel=4 quiet loglevel=debug";
        assert_eq!(param(args, "console"), Some("ttyAMA0"));
        assert_eq!(param(args, "quiet"), None);
        assert_eq!(log_level(args), Some(LevelFilter::Debug));
    }

    #[test]
    fn linux_numeric_levels() {
        assert_eq!(log_level("loglevel=0"), Some(LevelFilter::Error));
        assert_eq!(log_level("loglevel=4"), Some(LevelFilter::Warn));
        assert_eq!(log_level("loglevel=7"), Some(LevelFilter::Debug));
        assert_eq!(log_level("loglevel=8"), Some(LevelFilter::Trace));
        assert_eq!(log_level("loglevel=banana"), None);
        assert_eq!(log_level(""), None);
    }

    #[test]
    fn fault_injection_words() {
        assert_eq!(fault("wurley.fault=data-abort"), Some(Fault::DataAbort));
        assert_eq!(fault("a wurley.fault=undefined b"), Some(Fault::Undefined));
        assert_eq!(fault("wurley.fault=panic"), Some(Fault::Panic));
        assert_eq!(fault("wurley.fault=other"), None);
        assert_eq!(fault("fault=panic"), None);
    }
}

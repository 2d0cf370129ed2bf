//! The panic handler: print where and why, then power the machine off through PSCI.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::arch::aarch64::{exception, percpu, psci};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut out = crate::console::emergency();
    let cpu = percpu::current().map(|c| c.index);
    let _ = write!(out, "\n*** PANIC on CPU ");
    let _ = match cpu {
        Some(n) => write!(out, "{n}"),
        None => write!(out, "?"),
    };
    if let Some(loc) = info.location() {
        let _ = write!(out, " at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    let _ = writeln!(out, ": {}", info.message());
    let _ = writeln!(out, "*** powering off");
    let err = psci::system_off();
    let _ = writeln!(out, "*** PSCI SYSTEM_OFF failed ({err:?}); CPU stopped");
    exception::stop_this_cpu()
}

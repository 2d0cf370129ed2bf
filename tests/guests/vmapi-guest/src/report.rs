//! `VMAPI <role> <check> PASS|FAIL <details>` lines and the final tally.

use core::fmt;

use wurley_abi::Error;
use wurley_rt::hyp;
use wurley_rt::println;

/// The checks of one role.
pub struct Report {
    role: &'static str,
    pass: u32,
    fail: u32,
}

/// ` raw=<X0>` when an error word was not a known code (reported as ERROR_FAILURE).
struct Raw<'a, T>(&'a Result<T, Error>);

impl<T> fmt::Display for Raw<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Err(Error::Failure) if hyp::last_unknown_error() != 0 => {
                write!(f, " raw={:#x}", hyp::last_unknown_error())
            }
            _ => Ok(()),
        }
    }
}

impl Report {
    /// A report for `role`.
    pub fn new(role: &'static str) -> Self {
        Self {
            role,
            pass: 0,
            fail: 0,
        }
    }

    /// Record check `name` (no spaces) and print its line; returns `ok`.
    pub fn check(&mut self, name: &str, ok: bool, details: fmt::Arguments<'_>) -> bool {
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!("VMAPI {} {name} {verdict} {details}", self.role);
        if ok {
            self.pass += 1;
        } else {
            self.fail += 1;
        }
        ok
    }

    /// An informational line (not counted).
    pub fn info(&self, name: &str, details: fmt::Arguments<'_>) {
        println!("VMAPI {} {name} INFO {details}", self.role);
    }

    /// Check that `got` is exactly `want`.
    pub fn expect_err<T>(&mut self, name: &str, got: &Result<T, Error>, want: Error) -> bool {
        let ok = matches!(got, Err(e) if *e == want);
        self.check(
            name,
            ok,
            format_args!("got={} want={}{}", hyp::code(got), want.code(), Raw(got)),
        )
    }

    /// Check that `got` is one of `wants`.
    pub fn expect_any<T>(&mut self, name: &str, got: &Result<T, Error>, wants: &[Error]) -> bool {
        let ok = matches!(got, Err(e) if wants.contains(e));
        let w = Codes(wants);
        self.check(
            name,
            ok,
            format_args!("got={} want={w}{}", hyp::code(got), Raw(got)),
        )
    }

    /// Check that `got` is `Ok`.
    pub fn expect_ok<T>(&mut self, name: &str, got: &Result<T, Error>) -> bool {
        self.check(
            name,
            got.is_ok(),
            format_args!("got={} want=0{}", hyp::code(got), Raw(got)),
        )
    }

    /// Print the tally: `VMAPI <role> DONE pass=<n> fail=<m>`.
    pub fn tally(&self) {
        println!(
            "VMAPI {} DONE pass={} fail={}",
            self.role, self.pass, self.fail
        );
    }

    /// Print the tally and power off.
    pub fn done(&self) -> ! {
        self.tally();
        wurley_rt::power_off()
    }
}

/// Codes as `a|b|c`.
struct Codes<'a>(&'a [Error]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{}", e.code())?;
        }
        Ok(())
    }
}

//! `key=value` arguments from a command line (`/chosen/bootargs`).

/// The value of the last `key=value` word of `cmdline`.
pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|&(k, _)| k == key)
        .map(|(_, v)| v)
        .next_back()
}

/// A number, decimal or `0x` hexadecimal (`_` separators allowed).
pub fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    let mut any = false;
    let mut v: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        v = v
            .checked_mul(radix)?
            .checked_add(u64::from(c.to_digit(radix as u32)?))?;
        any = true;
    }
    any.then_some(v)
}

/// The value of `key` as a number; `None` if absent or not a number.
pub fn get_u64(cmdline: &str, key: &str) -> Option<u64> {
    parse_u64(get(cmdline, key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        let c = "role=ping  count=2000 flag x=1 x=0x20";
        assert_eq!(get(c, "role"), Some("ping"));
        assert_eq!(get(c, "flag"), None);
        assert_eq!(get(c, "x"), Some("0x20"));
        assert_eq!(get_u64(c, "count"), Some(2000));
        assert_eq!(get_u64(c, "x"), Some(0x20));
        assert_eq!(get_u64(c, "role"), None);
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
    }
}

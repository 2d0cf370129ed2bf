//! Role `profile`: the null-hypercall path for instruction traces.
//!
//! Prints `BENCH-PROFILE-START count=<n>`, issues the unassigned hypercall `0xC600_8008`
//! (`ERROR_UNIMPLEMENTED`) `count=` times (default 1000) in a tight loop, then prints
//! `BENCH-PROFILE-END`. `bench/bench.py` turns QEMU's `exec` log on once it sees the start
//! marker, with one instruction per translation block, and splits the trace at each return to
//! the guest.

use wurley_abi::hypcall;
use wurley_rt::{args, hyp, println};

use crate::stats::Report;

pub fn run(r: &mut Report, bootargs: &str) {
    let count = args::get_u64(bootargs, "count").unwrap_or(1000);
    let fid = hypcall::smccc_function_id(0x08);
    println!("BENCH-PROFILE-START count={count}");
    let mut unexpected = 0u64;
    for _ in 0..count {
        if hyp::hvc_smccc(fid, [0; 7])[0] != wurley_abi::Error::Unimplemented.to_register() {
            unexpected += 1;
        }
    }
    println!("BENCH-PROFILE-END");
    if unexpected != 0 {
        r.error(format_args!(
            "{unexpected} calls did not answer ERROR_UNIMPLEMENTED"
        ));
    }
}

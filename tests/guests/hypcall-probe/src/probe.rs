//! The probe itself (target only).

use core::arch::{asm, global_asm};
use core::panic::PanicInfo;
use core::ptr;

use wurley_abi::hypcall::{self, HypCall};
use wurley_abi::smccc::{self, CallingConvention, FunctionId, Owner};
use wurley_abi::{ApiInfo, Error, psci};

global_asm!(include_str!("entry.S"));

/// The VM's PL011 (Wurley's guest layout, QEMU virt's address).
const UART_BASE: usize = 0x0900_0000;
const UART_DR: usize = UART_BASE;
const UART_FR: usize = UART_BASE + 0x18;
const FR_TXFF: u32 = 1 << 5;

/// A reserved slot of the hypercall table: always `ERROR_UNIMPLEMENTED`.
const RESERVED_NUMBER: u16 = 0x08;
const _: () = assert!(HypCall::from_number(RESERVED_NUMBER).is_none());
const IDENTIFY_IMM: u16 = HypCall::HypervisorIdentify.native_hvc_imm();
const RESERVED_IMM: u16 = hypcall::native_hvc_imm(RESERVED_NUMBER);

fn putc(b: u8) {
    // SAFETY: UART_FR and UART_DR are the VM's PL011 registers (emulated by the hypervisor);
    // with the MMU off they are Device memory and 32-bit aligned.
    unsafe {
        while ptr::read_volatile(UART_FR as *const u32) & FR_TXFF != 0 {}
        ptr::write_volatile(UART_DR as *mut u32, u32::from(b));
    }
}

fn puts(s: &str) {
    for b in s.bytes() {
        putc(b);
    }
}

fn put_hex(v: u64) {
    puts("0x");
    let mut started = false;
    for i in (0..16).rev() {
        let d = ((v >> (i * 4)) & 0xf) as u8;
        if d != 0 || started || i == 0 {
            started = true;
            putc(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        }
    }
}

fn put_dec(mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        putc(b);
    }
}

struct Tally {
    pass: u64,
    fail: u64,
}

impl Tally {
    fn check(&mut self, name: &str, ok: bool, values: &[u64]) {
        puts("HYPCALL ");
        puts(name);
        puts(if ok { " PASS" } else { " FAIL" });
        for &v in values {
            putc(b' ');
            put_hex(v);
        }
        puts("\n");
        if ok {
            self.pass += 1;
        } else {
            self.fail += 1;
        }
    }
}

/// A fast SMCCC call with function ID `fid` and no arguments.
fn smccc_call(fid: u32) -> [u64; 4] {
    hvc_native::<0>([u64::from(fid), 0, 0, 0, 0, 0, 0, 0])
}

/// `HVC #IMM` with `X0..X7` = `x` (IMM 0 is the SMCCC conduit, 0x6000 + N the native Gunyah
/// path); returns `X0..X3`. X8..X17 may be clobbered.
fn hvc_native<const IMM: u16>(x: [u64; 8]) -> [u64; 4] {
    let r: [u64; 4];
    // SAFETY: a hypercall; it touches no guest memory and clobbers only the registers named.
    unsafe {
        let (r0, r1, r2, r3);
        asm!("hvc #{imm}",
            imm = const IMM,
            inout("x0") x[0] => r0, inout("x1") x[1] => r1, inout("x2") x[2] => r2,
            inout("x3") x[3] => r3, inout("x4") x[4] => _, inout("x5") x[5] => _,
            inout("x6") x[6] => _, inout("x7") x[7] => _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack));
        r = [r0, r1, r2, r3];
    }
    r
}

/// api_flags0 as implemented: partitions and cspaces, doorbells, message queues, VICs, VPM
/// groups, vCPUs, memory extents, proxy scheduling; the fixed-priority round-robin scheduler
/// (variant 1 in bits 31:28).
const EXPECTED_FEATURES: u64 = 0b111_1111 | 1 << 11 | 1 << 28;

fn identify_ok(r: [u64; 4]) -> bool {
    let Some(info) = ApiInfo::decode_strict(r[0]) else {
        return false;
    };
    info == ApiInfo::DEFAULT
        && info.api_version == 1
        && info.is_64bit
        && !info.big_endian
        && r[1] == EXPECTED_FEATURES
        && r[2] == 0
        && r[3] == 0
}

#[unsafe(no_mangle)]
extern "C" fn probe_main() -> ! {
    let mut t = Tally { pass: 0, fail: 0 };
    let unknown = smccc::UNKNOWN_FUNCTION64;
    let unimplemented = Error::Unimplemented.to_register();

    let v = smccc_call(smccc::SMCCC_VERSION)[0];
    let ok = v <= u64::from(u32::MAX >> 1) && v as u32 >= smccc::SMCCC_VERSION_1_1;
    t.check("smccc-version", ok, &[v]);

    let uid = smccc_call(hypcall::VENDOR_HYP_CALL_UID);
    t.check("call-uid", hypcall::is_gunyah_uid(uid), &uid);

    let rev = smccc_call(hypcall::VENDOR_HYP_REVISION)[0];
    t.check("revision", rev == ApiInfo::DEFAULT.encode(), &[rev]);

    let count = smccc_call(hypcall::VENDOR_HYP_CALL_COUNT)[0];
    t.check("call-count", count == unknown, &[count]);

    let id = smccc_call(HypCall::HypervisorIdentify.smccc_function_id());
    t.check("identify-smccc", identify_ok(id) && id[0] == rev, &id);

    // Garbage in X0..X7: hypervisor_identify has no inputs.
    let native = hvc_native::<IDENTIFY_IMM>([0x1111, 2, 3, 4, 5, 6, 7, 8]);
    t.check(
        "identify-native",
        identify_ok(native) && native == id,
        &native,
    );

    let r = smccc_call(hypcall::smccc_function_id(RESERVED_NUMBER))[0];
    t.check("unimplemented-smccc", r == unimplemented, &[r]);

    let r = hvc_native::<RESERVED_IMM>([0; 8])[0];
    t.check("unimplemented-native", r == unimplemented, &[r]);

    // An unassigned vendor-hyp service number (fast SMC32).
    let fid = FunctionId::new(true, CallingConvention::Smc32, Owner::VendorHyp, 0xFF02).raw();
    let r = smccc_call(fid)[0];
    t.check("unknown-smccc", r == unknown, &[u64::from(fid), r]);

    // Gunyah rejects the SMC32 form of a hypercall ID with SMCCC NOT_SUPPORTED.
    let fid = HypCall::HypervisorIdentify.smccc_function_id() & !smccc::SMC64_BIT;
    let r = smccc_call(fid)[0];
    t.check("hypercall-smc32", r == unknown, &[u64::from(fid), r]);

    puts("HYPCALL-DONE pass=");
    put_dec(t.pass);
    puts(" fail=");
    put_dec(t.fail);
    puts("\n");

    smccc_call(psci::SYSTEM_OFF);
    loop {
        // SAFETY: waiting for an interrupt has no memory effects.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    puts("HYPCALL panic FAIL\n");
    smccc_call(psci::SYSTEM_OFF);
    loop {
        // SAFETY: as above.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

//! Start-up after `entry.S`, the exception handler, interrupt masking and power-off.

use core::arch::{asm, global_asm};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicUsize, Ordering};

use wurley_abi::bootinfo::{self, BootInfo};
use wurley_abi::psci;

use crate::fdt::{self, Fdt};
use crate::{console, gic, hyp, mmu, println, time};

global_asm!(include_str!("entry.S"));

/// Default guest RAM size when the device tree has no `/memory` node: 16 MiB from the address
/// the image was loaded at.
const DEFAULT_RAM_SIZE: u64 = 0x100_0000;

static DTB: AtomicUsize = AtomicUsize::new(0);
static BOOT_INFO: AtomicUsize = AtomicUsize::new(0);
static RAM_BASE: AtomicUsize = AtomicUsize::new(0);
static RAM_SIZE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "Rust" {
    /// The guest's main function, defined by [`crate::entry!`].
    safe fn __wurley_rt_main(dtb: usize) -> !;
}

/// Called by `entry.S` with the MMU on (only the image's own RAM block and the device block
/// mapped), the image relocated, BSS clear and the stack set.
#[unsafe(no_mangle)]
extern "C" fn rt_start(x0: usize) -> ! {
    mmu::init();
    // X0 is in RAM but not necessarily in the image's block: map the blocks the boot
    // information (at most BOOT_INFO_MAX) or the device tree's header could be in. A range
    // the map cannot hold (the device block) is not read at all.
    let x0_mapped = mmu::map_ram(x0 as u64, BOOT_INFO_MAX as u64).is_ok();
    // The root VM (the resource manager) is entered with X0 = its boot-information block, which
    // says where its device tree is; every other VM with X0 = the device tree.
    let info = if x0_mapped { read_boot_info(x0) } else { None };
    let dtb = match info {
        Some(info) => {
            BOOT_INFO.store(x0, Ordering::Relaxed);
            info.dtb_ipa as usize
        }
        None => x0,
    };
    // Where the device tree is may not be mapped yet either: map it before it is read.
    if map_dtb(dtb) {
        DTB.store(dtb, Ordering::Relaxed);
    }
    let fdt = fdt();
    let (base, size) = fdt
        .as_ref()
        .and_then(|f| f.root())
        .and_then(|root| {
            let mem = root.children().find(|n| n.unit_name() == "memory")?;
            root.reg(&mem, 0)
        })
        .unwrap_or((mmu::image_base(), DEFAULT_RAM_SIZE));
    RAM_BASE.store(base as usize, Ordering::Relaxed);
    RAM_SIZE.store(size as usize, Ordering::Relaxed);
    if fdt.is_none() {
        println!("rt: no valid device tree at {dtb:#x}");
    }
    if mmu::map_ram(base, size).is_err() {
        println!("rt: RAM [{base:#x}, +{size:#x}) cannot be identity mapped");
    }
    if let Err(why) = gic::init(fdt.as_ref()) {
        println!("rt: GIC setup failed: {why}");
    }
    time::init(fdt.as_ref());
    enable_irqs();
    __wurley_rt_main(dtb)
}

/// Map the 1 GiB blocks of the device tree at `dtb` (its header, then the `totalsize` the header
/// states), so that it can be read; false if there is none or the map cannot hold it.
fn map_dtb(dtb: usize) -> bool {
    if dtb == 0 || mmu::map_ram(dtb as u64, fdt::HEADER_SIZE as u64).is_err() {
        return false;
    }
    let mut total = [0u8; 4];
    for (i, b) in total.iter_mut().enumerate() {
        // SAFETY: the header's block is mapped (identity, Normal memory) just above and the
        // guest writes nothing there; byte reads need no alignment. `totalsize` is the second
        // 32-bit header field.
        *b = unsafe { core::ptr::read_volatile((dtb + 4 + i) as *const u8) };
    }
    let total = u64::from(u32::from_be_bytes(total)).max(fdt::HEADER_SIZE as u64);
    mmu::map_ram(dtb as u64, total).is_ok()
}

/// Largest boot-information block the runtime reads (its lists included).
const BOOT_INFO_MAX: usize = 64 << 10;

/// The bytes of the boot-information block at `addr`, if one is there.
fn boot_info_at(addr: usize) -> Option<&'static [u8]> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    let mut header = [0u8; 16];
    for (i, b) in header.iter_mut().enumerate() {
        // SAFETY: X0 points into guest RAM (identity mapped, Normal memory), where Wurley put
        // either a device tree (a 40-byte header at least) or the boot-information block.
        *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
    }
    let (_, size) = BootInfo::header(&header).ok()?;
    if !(bootinfo::SIZE_V1..=BOOT_INFO_MAX).contains(&size) {
        return None;
    }
    // SAFETY: the header says the hypervisor wrote `size` bytes at `addr`, in the RM's RAM
    // (identity mapped, Normal memory); nothing in the guest writes to the block, so it stays
    // valid and unchanged for 'static.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

fn read_boot_info(addr: usize) -> Option<BootInfo> {
    BootInfo::decode(boot_info_at(addr)?).ok()
}

/// The boot-information block, if this VM was started as the root VM.
pub fn boot_info() -> Option<BootInfo> {
    read_boot_info(BOOT_INFO.load(Ordering::Relaxed))
}

/// The whole boot-information block (its version-2 lists included), if this VM was started as
/// the root VM.
pub fn boot_info_bytes() -> Option<&'static [u8]> {
    boot_info_at(BOOT_INFO.load(Ordering::Relaxed))
}

/// The device tree Wurley passed in `X0`, if it is valid.
pub fn fdt() -> Option<Fdt<'static>> {
    let addr = DTB.load(Ordering::Relaxed);
    if addr == 0 {
        return None;
    }
    // SAFETY: X0 at entry is the DTB's address in guest RAM (identity mapped, Normal memory);
    // nothing in the guest writes to it, so it stays valid and unchanged for 'static.
    // `from_addr` checks the header before trusting `totalsize`.
    unsafe { Fdt::from_addr(addr).ok() }
}

/// The DTB address the guest was booted with.
pub fn dtb() -> usize {
    DTB.load(Ordering::Relaxed)
}

/// Guest RAM: IPA base and size (from `/memory`, else 16 MiB from where the image was loaded).
pub fn ram() -> (u64, u64) {
    (
        RAM_BASE.load(Ordering::Relaxed) as u64,
        RAM_SIZE.load(Ordering::Relaxed) as u64,
    )
}

/// This vCPU's MPIDR affinity fields (Aff3 in 39:32, Aff2..Aff0 in 23:0).
pub fn mpidr_affinity() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & 0xff_00ff_ffff
}

/// Unmask IRQs (clear PSTATE.I).
pub fn enable_irqs() {
    // SAFETY: unmasking IRQs; the vectors and the GIC are set up before the first call. Acts
    // as a compiler barrier so memory accesses are not moved across it.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
}

/// Mask IRQs (set PSTATE.I).
pub fn mask_irqs() {
    // SAFETY: masking IRQs has no memory effects; a compiler barrier as above.
    unsafe { asm!("msr daifset, #2", options(nostack)) };
}

/// Whether IRQs are masked.
pub fn irqs_masked() -> bool {
    let daif: u64;
    // SAFETY: reading DAIF has no side effects.
    unsafe { asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack, preserves_flags)) };
    daif & (1 << 7) != 0
}

/// `WFI`: sleep until an interrupt is pending (also when IRQs are masked: then it returns
/// without taking it). Wurley does not trap WFI; a vIRQ wakes it.
pub fn wait_for_interrupt() {
    // SAFETY: waiting has no memory effects; a compiler barrier so flags set by interrupt
    // handlers are re-read afterwards.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

/// Power the VM off with PSCI SYSTEM_OFF.
pub fn power_off() -> ! {
    hyp::hvc_smccc(psci::SYSTEM_OFF, [0; 7]);
    mask_irqs();
    loop {
        wait_for_interrupt();
    }
}

/// Reset the VM with PSCI SYSTEM_RESET (the resource manager: the machine).
pub fn reset() -> ! {
    hyp::hvc_smccc(psci::SYSTEM_RESET, [0; 7]);
    mask_irqs();
    loop {
        wait_for_interrupt();
    }
}

/// Vector index of an IRQ taken from EL1 with SP_EL1 (the only expected asynchronous one).
const VECTOR_IRQ_EL1H: u64 = 5;

const VECTOR_NAMES: [&str; 16] = [
    "sync (EL1t)",
    "IRQ (EL1t)",
    "FIQ (EL1t)",
    "SError (EL1t)",
    "sync",
    "IRQ",
    "FIQ",
    "SError",
    "sync (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "sync (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];

/// The registers `entry.S` saves on exception entry.
#[repr(C)]
struct Frame {
    x: [u64; 19],
    x29: u64,
    x30: u64,
    elr: u64,
    spsr: u64,
    _pad: u64,
}

/// Called by the vectors: dispatch IRQs, report anything else and power off.
#[unsafe(no_mangle)]
extern "C" fn rt_exception(index: u64, frame: *const Frame) {
    if index == VECTOR_IRQ_EL1H {
        gic::handle_irqs();
        return;
    }
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack, preserves_flags));
        asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack, preserves_flags));
    }
    // SAFETY: `frame` is the 192-byte frame rt_vec_common just saved on this stack.
    let f = unsafe { &*frame };
    let name = VECTOR_NAMES.get(index as usize).copied().unwrap_or("?");
    console::emergency();
    println!(
        "guest exception: {name}: ESR={esr:#x} (EC={:#x}) ELR={:#x} FAR={far:#x} SPSR={:#x} LR={:#x}",
        esr >> 26,
        f.elr,
        f.spsr,
        f.x30
    );
    power_off();
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    mask_irqs();
    console::emergency();
    println!("guest exception: panic: {info}");
    power_off();
}

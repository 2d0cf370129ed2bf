//! Secondary CPUs: the block each one is started with, and what it does once up.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::aarch64::mmu::MmuRegs;
use crate::arch::aarch64::percpu::{self, PerCpu};
use crate::arch::aarch64::{cpu, gic};

/// Read by `boot/entry.S` with the MMU off (the field offsets are fixed there), then by
/// [`secondary_main`].
#[repr(C)]
pub struct SecondaryBoot {
    stack_top: u64,
    mair: u64,
    tcr: u64,
    ttbr0: u64,
    sctlr: u64,
    percpu: u64,
    cpu: &'static PerCpu,
    online: AtomicBool,
}

const _: () = assert!(core::mem::offset_of!(SecondaryBoot, stack_top) == 0);
const _: () = assert!(core::mem::offset_of!(SecondaryBoot, mair) == 8);
const _: () = assert!(core::mem::offset_of!(SecondaryBoot, sctlr) == 32);
const _: () = assert!(core::mem::offset_of!(SecondaryBoot, percpu) == 40);

impl SecondaryBoot {
    /// A leaked block for `cpu` with its stack top and the MMU registers to use.
    pub fn new(cpu: &'static PerCpu, stack_top: u64, mmu: MmuRegs) -> &'static SecondaryBoot {
        let block = Box::leak(Box::new(SecondaryBoot {
            stack_top,
            mair: mmu.mair,
            tcr: mmu.tcr,
            ttbr0: mmu.ttbr0,
            sctlr: mmu.sctlr,
            percpu: cpu as *const PerCpu as u64,
            cpu,
            online: AtomicBool::new(false),
        }));
        // The secondary reads the block with its MMU and caches off.
        cpu::clean_dcache_range(
            block as *const SecondaryBoot as u64,
            core::mem::size_of::<SecondaryBoot>() as u64,
        );
        block
    }

    /// Whether the CPU has reported in.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }
}

/// CPUs that have completed bring-up, the boot CPU included.
pub static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// Rust entry of a secondary CPU (from `boot/entry.S`, MMU on, own stack, TPIDR_EL2 set).
#[unsafe(no_mangle)]
extern "C" fn secondary_main(block: &'static SecondaryBoot) -> ! {
    let me = block.cpu;
    percpu::install(me);
    gic::init_this_cpu(me.redistributor());
    cpu::route_interrupts_to_el2();
    cpu::trap_fp_at_el2();
    crate::arch::aarch64::stage2::init_this_cpu();
    if let Err(e) = crate::irq::start_this_cpu(me.redistributor()) {
        log::error!("hypervisor timer not started: {e}");
    }
    log::info!(
        "CPU {} online (MPIDR {:#x}, redistributor {})",
        me.index,
        me.mpidr,
        me.redistributor()
    );
    ONLINE.fetch_add(1, Ordering::AcqRel);
    block.online.store(true, Ordering::Release);
    crate::vm::vcpu::cpu_loop(me)
}

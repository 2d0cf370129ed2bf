//! Starting the root VM at boot: the scheduler's run queues, then the resource manager with the
//! boot bundle. Which VMs exist, their memory, vCPUs, devices and links is the resource
//! manager's decision: it reads the bundle's manifest and builds every VM through hypercalls.

use alloc::vec::Vec;

use crate::arch::aarch64::percpu::PerCpu;
use crate::mm::FRAMES;
use crate::object::vcpu::{NO_OWNER, VcpuTarget};
use crate::platform::Platform;

use super::machine::{self, Power};

/// Set up scheduling on `cpus` and start the resource manager with `bundle_bytes` (a flattened
/// device tree: the manifest and its images). Returns how many VMs started (1, or 0 if the
/// bundle is not a device tree or the resource manager could not be made).
pub fn launch(platform: &Platform, bundle_bytes: &[u8], cpus: &[&'static PerCpu]) -> usize {
    let mpidrs: Vec<u64> = cpus.iter().map(|c| c.mpidr).collect();
    super::sched::init(&mpidrs);
    super::assemble::set_vtimer_intid(platform.timer.virt.intid);
    // Only a device tree can be a bundle: anything else (no magic) has nothing to launch.
    if bundle_bytes.get(..4) != Some(&[0xd0, 0x0d, 0xfe, 0xed]) {
        log::error!("bundle: not a flattened device tree (no FDT magic)");
        return 0;
    }
    let Some(objects) = super::rm::objects() else {
        log::error!("resource manager: not started");
        return 0;
    };
    let hwirqs = super::rm::give_all_hwirqs(platform, &objects);
    let before = held();
    let vm = match super::rm::create(platform, &objects, cpus, bundle_bytes, &hwirqs) {
        Ok(vm) => machine::leak(vm),
        Err(e) => {
            log::error!("resource manager: not started: {e}");
            return 0;
        }
    };
    objects.virqs.attach(vm);
    vm.objects.call_once(|| objects);
    log_held(&vm.name.get(), before, super::rm::RM_MEMORY);
    log::info!(
        "resource manager: {} hardware IRQ cap(s) in its boot information",
        hwirqs.len()
    );
    let index = match machine::add(vm) {
        Ok(i) => i,
        Err(e) => {
            log::error!("resource manager: no slot: {e:?}");
            return 0;
        }
    };
    // Its cap to its own vCPU names this vCPU (no VM runs it by proxy).
    let objects = vm.objects.get().and_then(|o| o.vcpus.get());
    for (slot, object) in vm.vcpus.iter().zip(objects.into_iter().flatten()) {
        object.attach(VcpuTarget {
            vm: index,
            index: slot.index,
            owner: NO_OWNER,
        });
    }
    if let Some(boot) = vm.vcpus.first() {
        log::info!("VM {}: starting vCPU 0 on CPU {}", vm.name, boot.pcpu());
        boot.set_power(Power::OnPending);
        super::sched::make_runnable(boot);
    }
    1
}

/// Frames allocated and heap bytes in use, for what one VM costs the hypervisor.
fn held() -> (u64, u64) {
    let frames = {
        let f = FRAMES.lock();
        f.total_bytes() - f.free_bytes()
    };
    (frames, crate::mm::heap::stats().1 as u64)
}

/// Log the memory VM `name` took besides its `ram` bytes of RAM since `before` ([`held`]).
fn log_held(name: &str, before: (u64, u64), ram: u64) {
    let (frames, heap) = held();
    log::info!(
        "VM {name}: {} MiB of RAM; hypervisor memory for it: {} KiB of frames, {} KiB of heap",
        ram >> 20,
        frames.saturating_sub(before.0).saturating_sub(ram) >> 10,
        heap.saturating_sub(before.1) >> 10
    );
}

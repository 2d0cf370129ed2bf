//! A created VM's life after VM_INIT: its boot context, power-on, stop (killing its vCPUs and
//! releasing what it accepted) and reset (giving back every cap, page and vIRQ VM_INIT made
//! and the memory lent or donated to it).

use alloc::vec::Vec;

use wurley_abi::rm::RmError;
use wurley_abi::rm::vm::BootRegSet;
use wurley_abi::{CapId, Error, VmId};

use super::{Gunyah, VirqPool, rm_error};
use crate::calls::Hypercalls;
use crate::hyp::Event;

/// `vcpu_poweron` flags: keep the entry point / context written with `vcpu_register_write`.
const POWERON_PRESERVE_ENTRY: u64 = 1;
const POWERON_PRESERVE_CONTEXT: u64 = 2;

impl<C: Hypercalls> Gunyah<C> {
    /// VM_SET_BOOT_CONTEXT: a register of vCPU 0, kept at power-on.
    pub(super) fn set_boot_context(
        &mut self,
        vmid: VmId,
        reg_set: BootRegSet,
        index: u8,
        value: u64,
    ) -> Result<(), RmError> {
        let o = self
            .vm(vmid)
            .and_then(|v| v.objects.as_ref())
            .ok_or(RmError::VmState)?;
        let v0 = o.vcpus.first().copied().ok_or(RmError::VmState)?;
        let (set, flag) = match reg_set {
            BootRegSet::X => (
                0,
                if index == 0 {
                    POWERON_PRESERVE_CONTEXT
                } else {
                    0
                },
            ),
            BootRegSet::Pc => (1, POWERON_PRESERVE_ENTRY),
            BootRegSet::Sp => (2, 0),
        };
        self.calls
            .vcpu_register_write(v0, set, u64::from(index), value)
            .map_err(rm_error)?;
        if let Some(o) = self.vm_mut(vmid).objects.as_mut() {
            o.boot_flags |= flag;
        }
        Ok(())
    }

    /// VM_START: power vCPU 0 on at the image's entry, the DTB's IPA in X0.
    pub(super) fn power_on(&mut self, vmid: VmId) -> Result<(), RmError> {
        let o = self
            .vm(vmid)
            .and_then(|v| v.objects.as_ref())
            .ok_or(RmError::VmState)?;
        let v0 = o.vcpus.first().copied().ok_or(RmError::VmState)?;
        let (entry, ctx, flags) = (o.entry, o.dtb_ipa, o.boot_flags);
        self.calls
            .vcpu_poweron(v0, entry, ctx, flags)
            .map_err(rm_error)
    }

    /// VM_STOP (force) and VM_EXIT: kill the vCPUs of a VM the RM created, then release what
    /// it accepted.
    pub(super) fn kill(&mut self, vmid: VmId) -> Result<(), RmError> {
        let vcpus = match self.vm(vmid).and_then(|v| v.objects.as_ref()) {
            Some(o) => o.vcpus.clone(),
            // A VM of the manifest (the launch built it, not VM_INIT): it stops itself after
            // the reply (VM_EXIT is its own doing).
            None => return Err(RmError::Unimplemented),
        };
        let mut first_error = None;
        for t in vcpus {
            match self.calls.vcpu_kill(t) {
                // Already killed (the VM ended by itself).
                Ok(()) | Err(Error::ObjectState) => {}
                Err(e) => {
                    first_error.get_or_insert(rm_error(e));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // A stopped VM touches no memory: what it accepted counts as released, so its owner
        // can reclaim it (Linux reclaims between VM_STOP and VM_RESET).
        self.release_all(vmid);
        Ok(())
    }

    /// VM_RESET: give back everything VM_INIT made and the memory lent or donated to it.
    pub(super) fn destroy(&mut self, vmid: VmId) -> Result<(), RmError> {
        let Some(objects) = self.vm_mut(vmid).objects.take() else {
            // Never created (LOAD, or VM_INIT failed and was undone).
            return Ok(());
        };
        self.release_all(vmid);
        // Parcels of its own memory (donated to it): taken back from every borrower.
        for h in self.parcels.owned_by(vmid) {
            let borrowers: Vec<VmId> = self
                .parcels
                .get(h)
                .map(|p| p.borrowers().collect())
                .unwrap_or_default();
            for b in borrowers {
                self.unmap_accepted(h, b);
            }
            self.return_parcel(h, false);
        }
        // What was lent to it alone goes back to the lenders.
        for h in self.parcels.lent_to(vmid) {
            self.return_parcel(h, false);
        }
        let st = self.vm_mut(vmid);
        let regions = core::mem::take(&mut st.regions);
        st.addrspace = CapId::INVALID;
        st.cspace = CapId::INVALID;
        st.vic = CapId::INVALID;
        st.virqs = VirqPool::default();
        for r in regions {
            let _ = self.calls.cspace_delete(self.rm.cspace, r.extent);
        }
        let [tx, rx] = objects.link_virqs;
        // The RM's HALT vIRQ for it is free again (the vCPU object may outlive the VM).
        if let Some(&v0) = objects.vcpus.first() {
            let _ = self
                .calls
                .vcpu_unbind_virq(v0, wurley_abi::vcpu_run::VcpuVirqType::Halt as u64);
        }
        self.events.push(Event::Unwatch {
            vmid,
            virq: objects.halt_virq,
        });
        self.events.push(Event::Unlink {
            vmid,
            virqs: [tx, rx],
        });
        self.undo(objects.made, objects.owner);
        Ok(())
    }
}

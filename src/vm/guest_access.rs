//! Hypercall buffers in the calling VM's memory: guest virtual addresses translated by the MMU
//! (`AT S12E1R/W`, through the caller's stage-1 and stage-2 tables), then checked against the
//! VM's address space before a byte moves: the page must be RAM of a memory extent mapped there
//! (the VM's own RAM, or memory lent or shared into it).
//!
//! Translation is per page, so a buffer may span pages that the guest maps anywhere. Any fault,
//! and any translation that leaves the extents mapped in the VM (a device window, the resource
//! manager's read-only bundle view), is `ERROR_ADDR_INVALID`: a pointer can never reach the
//! hypervisor's memory or another VM's.

use wurley_abi::Error;

use crate::arch::aarch64::at;
use crate::hypercall::GuestAccess;
use crate::mm::addr::PAGE_SIZE;
use crate::mm::guestmem;

use super::machine::Vm;

/// The memory of the VM whose vCPU is trapped on this CPU.
pub struct CallerMemory<'a> {
    vm: &'a Vm,
}

impl<'a> CallerMemory<'a> {
    /// Access for `vm`, whose vCPU's context is loaded on this CPU.
    pub fn new(vm: &'a Vm) -> Self {
        Self { vm }
    }

    /// Run `f(pa, range)` for each page-bounded piece of `[va, va + len)`.
    fn each_page(
        &self,
        va: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        va.checked_add(len as u64).ok_or(Error::AddrOverflow)?;
        let mut done = 0usize;
        while done < len {
            let cur = va + done as u64;
            let in_page = (PAGE_SIZE - (cur & (PAGE_SIZE - 1))) as usize;
            let n = in_page.min(len - done);
            let pa = at::translate(cur, write).ok_or(Error::AddrInvalid)?;
            f(pa, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

impl GuestAccess for CallerMemory<'_> {
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Error> {
        let vm = self.vm;
        vm.with_space(|space| {
            self.each_page(va, buf.len(), false, |pa, r| {
                guestmem::read_mapped(space, pa, &mut buf[r]).map_err(|_| Error::AddrInvalid)
            })
        })
        .unwrap_or(Err(Error::AddrInvalid))
    }

    fn write(&mut self, va: u64, data: &[u8]) -> Result<(), Error> {
        let vm = self.vm;
        vm.with_space(|space| {
            self.each_page(va, data.len(), true, |pa, r| {
                guestmem::write_mapped(space, pa, &data[r]).map_err(|_| Error::AddrInvalid)
            })
        })
        .unwrap_or(Err(Error::AddrInvalid))
    }
}

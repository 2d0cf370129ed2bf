//! [`VirqPool`]: the free vIRQs of a VIC (the RM's, or a VM's), which links, vCPU wakeups and
//! lent IRQs take and give back.

use alloc::vec::Vec;

use wurley_abi::rm::RmError;

/// A pool of free vIRQs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct VirqPool {
    pub(super) free: Vec<u32>,
}

impl VirqPool {
    pub(super) fn range(first: u32, limit: u32) -> VirqPool {
        VirqPool {
            free: (first..limit).collect(),
        }
    }

    pub(super) fn alloc(&mut self) -> Result<u32, RmError> {
        if self.free.is_empty() {
            return Err(RmError::NoResource);
        }
        Ok(self.free.remove(0))
    }

    pub(super) fn take(&mut self, virq: u32) -> bool {
        match self.free.iter().position(|&v| v == virq) {
            Some(i) => {
                self.free.remove(i);
                true
            }
            None => false,
        }
    }

    pub(super) fn give(&mut self, virq: u32) {
        if !self.free.contains(&virq) {
            let i = self.free.partition_point(|&v| v < virq);
            self.free.insert(i, virq);
        }
    }
}

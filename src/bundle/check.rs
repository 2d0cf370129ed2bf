//! Checks across VMs, in manifest order, over the VMs that are valid on their own: the console
//! has one owner, explicit memory bases do not overlap, and the vCPUs fit the physical CPUs.
//! A VM failing one is dropped and claims nothing, so the VMs after it still get their turn.
//! (Duplicate names are caught while reading, since even an invalid VM holds its name.)

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use super::manifest::Candidate;
use super::{BundleError, Limits};

/// Splits `vms` into those that pass and the errors of those that do not (with their order).
pub(super) fn across(
    vms: Vec<Candidate>,
    limits: &Limits,
) -> (Vec<Candidate>, Vec<(usize, BundleError)>) {
    let mut kept: Vec<Candidate> = Vec::new();
    let mut errors = Vec::new();
    let mut pinned = 0u32;
    for vm in vms {
        let mut problems: Vec<String> = Vec::new();
        if let Some(owner) = kept.iter().find(|k| k.console).filter(|_| vm.console) {
            problems.push(format!(
                "property 'console': VM '{}' before it already has the console",
                owner.name
            ));
        }
        if let Some(mine) = explicit(&vm) {
            for other in &kept {
                if let Some(theirs) = explicit(other).filter(|t| overlap(&mine, t)) {
                    problems.push(format!(
                        "property 'memory-base': RAM [{:#x}, {:#x}) overlaps VM '{}' at [{:#x}, {:#x})",
                        mine.start, mine.end, other.name, theirs.start, theirs.end
                    ));
                }
            }
        }
        let left = limits.max_vcpus_total.saturating_sub(pinned);
        if vm.vcpus > left {
            let n = vm.vcpus;
            let (what, verb) = if n == 1 {
                ("vCPU", "does")
            } else {
                ("vCPUs", "do")
            };
            problems.push(format!(
                "property 'vcpus': {n} {what} {verb} not fit: {left} of the {} physical CPUs are left after the VMs before it",
                limits.max_vcpus_total
            ));
        }
        if problems.is_empty() {
            pinned += vm.vcpus;
            kept.push(vm);
        } else {
            for p in problems {
                errors.push((vm.order, BundleError::vm(&vm.name, p)));
            }
        }
    }
    (kept, errors)
}

/// The RAM range of a VM with an explicit `memory-base` (already checked not to wrap).
fn explicit(vm: &Candidate) -> Option<Range<u64>> {
    let base = vm.memory_base?;
    Some(base..base.saturating_add(vm.memory_size))
}

fn overlap(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_touching_do_not_overlap() {
        assert!(!overlap(&(0..10), &(10..20)));
        assert!(overlap(&(0..11), &(10..20)));
        assert!(overlap(&(12..13), &(10..20)));
    }
}

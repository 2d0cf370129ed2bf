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

/// Splits `vms` into those whose `scheduled-by` names a proxy scheduler that is started and
/// not proxy-scheduled itself (or who have none), and the errors of the others. Dropping a VM
/// can leave another without its scheduler, so this repeats until nothing changes.
pub(super) fn schedulers(vms: Vec<Candidate>) -> (Vec<Candidate>, Vec<(usize, BundleError)>) {
    let owners: Vec<(&str, Option<&str>)> = vms
        .iter()
        .map(|v| (v.name.as_str(), v.scheduled_by.as_deref()))
        .collect();
    let problems = scheduler_problems(&owners);
    let mut errors = Vec::new();
    let mut kept = Vec::new();
    for (i, vm) in vms.into_iter().enumerate() {
        match problems.iter().find(|(at, _)| *at == i) {
            Some((_, p)) => errors.push((vm.order, BundleError::vm(&vm.name, p.clone()))),
            None => kept.push(vm),
        }
    }
    (kept, errors)
}

/// The problems of `vms` (name, `scheduled-by`) as (index, problem), one per failing VM.
fn scheduler_problems(vms: &[(&str, Option<&str>)]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    loop {
        let dropped = |i: usize, out: &Vec<(usize, String)>| out.iter().any(|(at, _)| *at == i);
        let mut changed = false;
        for (i, (_, owner)) in vms.iter().enumerate() {
            let Some(owner) = owner else { continue };
            if dropped(i, &out) {
                continue;
            }
            let found = vms
                .iter()
                .enumerate()
                .find(|(j, (name, _))| name == owner && !dropped(*j, &out));
            let problem = match found {
                None => Some(format!(
                    "property 'scheduled-by': VM '{owner}' is not started (missing or refused above)"
                )),
                Some((_, (_, Some(_)))) => Some(format!(
                    "property 'scheduled-by': VM '{owner}' is proxy-scheduled itself"
                )),
                Some(_) => None,
            };
            if let Some(p) = problem {
                out.push((i, p));
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
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
    fn scheduled_by_needs_a_started_unproxied_owner() {
        let vms = [
            ("host", None),
            ("guest", Some("host")),
            ("nested", Some("guest")),
            ("orphan", Some("nobody")),
            ("after", Some("nested")),
        ];
        let p = scheduler_problems(&vms);
        let at: Vec<usize> = p.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, [2, 3, 4]);
        assert!(p[0].1.contains("VM 'guest' is proxy-scheduled itself"));
        assert!(p[1].1.contains("VM 'nobody' is not started"));
        // `after`'s scheduler is dropped in the first round, so it goes in the second.
        assert!(p[2].1.contains("VM 'nested' is"));
        assert!(scheduler_problems(&[("a", None), ("b", Some("a"))]).is_empty());
    }

    #[test]
    fn ranges_touching_do_not_overlap() {
        assert!(!overlap(&(0..10), &(10..20)));
        assert!(overlap(&(0..11), &(10..20)));
        assert!(overlap(&(12..13), &(10..20)));
    }
}

//! Role `objects-hostile`: abuse of the VM-building and memory calls (Gunyah §2.7-§2.10) by a
//! VM holding caps to its own partition (a child with a quota that owns no memory), cspace
//! and VIC. Every answer must be the documented error code; the hypervisor must never panic,
//! hang, or let the VM reach memory it does not own.
//!
//! * memory extents over memory the partition does not own (the hypervisor's image, RAM,
//!   the UART's window, beyond RAM), bad ranges and attributes, derivation from caps that are
//!   not active extents, and the address-space calls with such extents, wrong rights and
//!   flags, VMIDs that are 0, taken or too wide;
//! * a VM with no memory at all, built from objects: every call in the wrong order first,
//!   then in the right one; powered on, its vCPU faults forever (the hypervisor injects
//!   aborts) while this VM goes on; killed, it must stay dead, even when a new VM takes its
//!   place in the hypervisor; a VPM group follows its power; deleting every cap frees it
//!   (the host test sees `VM vm<vmid>: retired` and `VM <vmid> destroyed`);
//! * a thread killed before its first power-on must never run;
//! * thread and group calls on caps of other types, with missing rights, `vcpu_poweroff` of
//!   another vCPU;
//! * [`FUZZ_CALLS`] random calls among the new call numbers with random arguments and caps:
//!   only documented codes.
//!
//! Role `heartbeat`: a bystander VM printing `VMAPI heartbeat beat INFO n=<n>` every 100 ms,
//! forever: the host test checks it still beats after the attack.

use wurley_abi::rights::{AddrspaceRights, MemextentRights, ThreadRights, VpmGroupRights};
use wurley_abi::{CapId, Error, HypCall};
use wurley_rt::fdt::Fdt;
use wurley_rt::{hyp, hypdt, time};

use crate::report::Report;

/// How many random calls [`Attacker::fuzz`] makes.
const FUZZ_CALLS: usize = 200;
/// VMIDs of the VMs built here (names `vm<decimal>`, destroyed lines `VM 0x<hex>`).
const VMID_A: u16 = 0x4242;
const VMID_B: u16 = 0x4243;
const VMID_C: u16 = 0x4244;
/// VMIDs the hypervisor gave the resource manager and the first manifest VM.
const VMID_RM: u16 = 0xff;
const VMID_MANIFEST0: u16 = 0x8000;
/// The UART's INTID (never bindable).
const UART_INTID: u64 = 33;
/// QEMU virt: start of RAM (free RAM of the root partition), where the hypervisor is loaded,
/// the UART.
const PA_RAM_START: u64 = 0x4000_0000;
const PA_HYPERVISOR: u64 = 0x4020_0000;
const PA_UART: u64 = 0x0900_0000;
/// Far beyond the machine's RAM, inside a 48-bit space.
const PA_NOTHING: u64 = 0x8000_0000_0000;
/// `memextent_attrs`: access RW, memtype CACHED / DEVICE.
const EXT_RW_CACHED: u32 = 0b110 | 3 << 8;
const EXT_RW_DEVICE: u32 = 0b110 | 1 << 8;
/// `map_attrs`: user and kernel RW, normal write-back.
const MAP_RW_WB: u32 = 0x66 | 0xf << 16;
/// `vcpu_option_flags` bit 9, vcpu_run_scheduled: accepted (proxy scheduling).
const OPTION_RUN_SCHEDULED: u64 = 1 << 9;
/// `vpm_group_get_state` values.
const VPM_NONE: u64 = 0;
const VPM_RUNNING: u64 = 1;
const VPM_OFF: u64 = 2;

/// The calls [`Attacker::fuzz`] picks from (everything that came with VM building), with the
/// kinds of cap their first three arguments take: `P` partition, `C` cspace, `S` address
/// space, `E` extent, `T` thread, `V` VIC, `G` VPM group, `.` none.
const FUZZ_CALLS_SIGS: [(HypCall, &[u8; 3]); 33] = [
    (HypCall::PartitionCreateAddrspace, b"PC."),
    (HypCall::PartitionCreateMemextent, b"PC."),
    (HypCall::PartitionCreateThread, b"PC."),
    (HypCall::PartitionCreateVic, b"PC."),
    (HypCall::PartitionCreateVpmGroup, b"PC."),
    (HypCall::VcpuConfigure, b"T.."),
    (HypCall::CspaceAttachThread, b"CT."),
    (HypCall::AddrspaceAttachThread, b"ST."),
    (HypCall::VicConfigure, b"V.."),
    (HypCall::VicAttachVcpu, b"VT."),
    (HypCall::VcpuSetAffinity, b"T.."),
    (HypCall::VcpuSetPriority, b"T.."),
    (HypCall::VcpuSetTimeslice, b"T.."),
    (HypCall::VcpuRegisterWrite, b"T.."),
    (HypCall::VcpuPoweron, b"T.."),
    (HypCall::VcpuPoweroff, b"T.."),
    (HypCall::VcpuKill, b"T.."),
    (HypCall::VpmGroupConfigure, b"G.."),
    (HypCall::VpmGroupAttachVcpu, b"GT."),
    (HypCall::VpmGroupBindVirq, b"GV."),
    (HypCall::VpmGroupUnbindVirq, b"G.."),
    (HypCall::VpmGroupGetState, b"G.."),
    (HypCall::HwirqBindVirq, b".V."),
    (HypCall::HwirqUnbindVirq, b"..."),
    (HypCall::MemextentConfigure, b"E.."),
    (HypCall::MemextentConfigureDerive, b"EE."),
    (HypCall::MemextentModify, b"E.."),
    (HypCall::MemextentDonate, b".EE"),
    (HypCall::AddrspaceConfigure, b"S.."),
    (HypCall::AddrspaceMap, b"SE."),
    (HypCall::AddrspaceUnmap, b"SE."),
    (HypCall::AddrspaceUpdateAccess, b"SE."),
    (HypCall::AddrspaceLookup, b"SE."),
];

/// The codes these calls may answer (the ABI's tables), besides OK.
const DOCUMENTED: [Error; 20] = [
    Error::ArgumentInvalid,
    Error::ArgumentSize,
    Error::ArgumentAlignment,
    Error::Nomem,
    Error::AddrOverflow,
    Error::AddrInvalid,
    Error::Denied,
    Error::Busy,
    Error::ObjectState,
    Error::ObjectConfig,
    Error::VirqBound,
    Error::VirqNotBound,
    Error::CspaceCapNull,
    Error::CspaceCapRevoked,
    Error::CspaceWrongObjectType,
    Error::CspaceInsufficientRights,
    Error::CspaceFull,
    Error::MemdbEmpty,
    Error::MemdbNotOwner,
    Error::MemextentMappingsFull,
];

/// One VM's objects: cspace, address space and VIC (configured and active), a thread attached
/// to all three (still INIT).
#[derive(Clone, Copy)]
struct Parts {
    cs: CapId,
    space: CapId,
    vic: CapId,
    thread: CapId,
}

struct Attacker<'r> {
    r: &'r mut Report,
    partition: CapId,
    cspace: CapId,
    vic: CapId,
    /// A free SPI of our own VIC.
    spi: u64,
    rng: u64,
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, _bootargs: &str) {
    let caps = hypdt::capabilities(fdt).unwrap_or_default();
    let (Some(partition), Some(cspace), Some(vic)) = (caps.partition, caps.cspace, caps.vic) else {
        r.check(
            "setup",
            false,
            format_args!("need partition, cspace and vic in /hypervisor/capabilities"),
        );
        return;
    };
    let used = hypdt::used_intids(fdt) | 1 << UART_INTID | 0xffff_ffff;
    let spi = (34..96u64).find(|i| used & (1 << i) == 0).unwrap_or(95);
    let mut a = Attacker {
        r,
        partition,
        cspace,
        vic,
        spi,
        rng: time::ticks() | 1,
    };
    a.extents();
    a.addrspaces();
    a.wrong_types_and_rights();
    a.zero_memory_vm();
    a.killed_before_poweron();
    a.fuzz();
    a.r.info("end", format_args!("the attack is over"));
}

/// Role `heartbeat`: prove the machine still schedules other VMs.
pub fn heartbeat(r: &mut Report) -> ! {
    let mut n = 0u64;
    loop {
        r.info("beat", format_args!("n={n}"));
        n += 1;
        time::sleep_us(100_000);
    }
}

fn poweroff(vcpu: CapId, flags: u64) -> Result<(), Error> {
    hyp::result(hyp::smccc(HypCall::VcpuPoweroff, &[vcpu.0, flags, 0])[0])
}

fn addrspace_configure_raw(space: CapId, vmid: u64) -> Result<(), Error> {
    hyp::result(hyp::smccc(HypCall::AddrspaceConfigure, &[space.0, vmid, 0])[0])
}

impl Attacker<'_> {
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn setup(&mut self, what: &str, r: Result<CapId, Error>) -> Option<CapId> {
        match r {
            Ok(c) => Some(c),
            Err(e) => {
                self.r
                    .check("setup", false, format_args!("{what}: {}", e.code()));
                None
            }
        }
    }

    fn setup_ok(&mut self, what: &str, r: Result<(), Error>) -> Option<()> {
        self.setup(what, r.map(|()| CapId(0))).map(|_| ())
    }

    fn delete(&self, cap: CapId) {
        let _ = hyp::cspace_delete_cap_from(self.cspace, cap);
    }

    fn copy(&mut self, cap: CapId, mask: u32) -> Option<CapId> {
        let r = hyp::cspace_copy_cap_from(self.cspace, cap, self.cspace, mask);
        self.setup("cspace_copy_cap_from", r)
    }

    fn expect_value(&mut self, name: &str, got: Result<u64, Error>, want: u64) {
        self.r.check(
            name,
            got == Ok(want),
            format_args!("got={:?} want={want}", got),
        );
    }

    fn extent(&mut self) -> Option<CapId> {
        let r = hyp::partition_create_memextent(self.partition, self.cspace);
        self.setup("partition_create_memextent", r)
    }

    /// Extents over memory this VM's partition does not own.
    fn extents(&mut self) {
        let Some(me) = self.extent() else { return };
        let res = hyp::object_activate(me);
        self.r
            .expect_err("extent-activate-unconfigured", &res, Error::ObjectConfig);

        // Ranges the memory database gives someone else, or nobody.
        let (ram, ram_size) = wurley_rt::ram();
        let foreign: [(&str, u64, u64, u32, Error); 6] = [
            (
                "extent-hypervisor-image",
                PA_HYPERVISOR,
                0x1000,
                EXT_RW_CACHED,
                Error::MemdbNotOwner,
            ),
            (
                "extent-ram-start",
                PA_RAM_START,
                0x1000,
                EXT_RW_CACHED,
                Error::MemdbNotOwner,
            ),
            (
                "extent-own-ram-ipa-as-pa",
                ram + ram_size - 0x1000,
                0x1000,
                EXT_RW_CACHED,
                Error::MemdbNotOwner,
            ),
            (
                "extent-all-of-ram",
                PA_RAM_START,
                1 << 30,
                EXT_RW_CACHED,
                Error::MemdbNotOwner,
            ),
            (
                "extent-uart-window",
                PA_UART,
                0x1000,
                EXT_RW_DEVICE,
                Error::MemdbEmpty,
            ),
            (
                "extent-beyond-ram",
                PA_NOTHING,
                0x10_0000,
                EXT_RW_CACHED,
                Error::MemdbEmpty,
            ),
        ];
        for (name, base, size, attrs, want) in foreign {
            match hyp::memextent_configure(me, base, size, attrs) {
                Ok(()) => {
                    let res = hyp::object_activate(me);
                    self.r.expect_err(name, &res, want);
                }
                Err(e) => {
                    self.r
                        .check(name, false, format_args!("configure failed: {}", e.code()));
                }
            }
        }
        // A huge range that does not wrap: the first page is the root partition's.
        let res = hyp::memextent_configure(me, PA_RAM_START, 1 << 47, EXT_RW_CACHED)
            .and_then(|()| hyp::object_activate(me));
        self.r.expect_err("extent-huge", &res, Error::MemdbNotOwner);

        // Bad ranges and attributes: refused by memextent_configure itself.
        let bad: [(&str, u64, u64, u32, Error); 8] = [
            (
                "extent-unaligned-base",
                PA_RAM_START + 0x800,
                0x1000,
                EXT_RW_CACHED,
                Error::ArgumentAlignment,
            ),
            (
                "extent-unaligned-size",
                PA_RAM_START,
                0x1800,
                EXT_RW_CACHED,
                Error::ArgumentAlignment,
            ),
            (
                "extent-size-0",
                PA_RAM_START,
                0,
                EXT_RW_CACHED,
                Error::ArgumentSize,
            ),
            (
                "extent-wraps",
                0xffff_ffff_ffff_f000,
                0x2000,
                EXT_RW_CACHED,
                Error::AddrOverflow,
            ),
            (
                "extent-huge-wraps",
                PA_RAM_START,
                0u64.wrapping_sub(PA_RAM_START) + 0x1000,
                EXT_RW_CACHED,
                Error::AddrOverflow,
            ),
            (
                "extent-sparse-type",
                PA_RAM_START,
                0x1000,
                EXT_RW_CACHED | 1 << 16,
                Error::ArgumentInvalid,
            ),
            (
                "extent-unknown-attr-bit",
                PA_RAM_START,
                0x1000,
                EXT_RW_CACHED | 1 << 12,
                Error::ArgumentInvalid,
            ),
            (
                "extent-append-bit",
                PA_RAM_START,
                0x1000,
                EXT_RW_CACHED | 1 << 31,
                Error::ArgumentInvalid,
            ),
        ];
        for (name, base, size, attrs, want) in bad {
            let res = hyp::memextent_configure(me, base, size, attrs);
            self.r.expect_err(name, &res, want);
        }
        // Still INIT after every failure.
        let res = hyp::memextent_configure(me, PA_UART, 0x1000, EXT_RW_DEVICE);
        self.r.expect_ok("extent-reconfigure-after-failures", &res);

        // Derivation from things that are not active extents.
        if let Some(child) = self.extent() {
            let res = hyp::memextent_configure_derive(child, self.vic, 0, 0x1000, EXT_RW_CACHED);
            self.r
                .expect_err("derive-from-vic", &res, Error::CspaceWrongObjectType);
            let res =
                hyp::memextent_configure_derive(child, self.partition, 0, 0x1000, EXT_RW_CACHED);
            self.r
                .expect_err("derive-from-partition", &res, Error::CspaceWrongObjectType);
            let res = hyp::memextent_configure_derive(child, me, 0, 0x1000, EXT_RW_CACHED);
            self.r
                .expect_err("derive-from-init-extent", &res, Error::ObjectState);
            let res = hyp::memextent_configure_derive(child, child, 0, 0x1000, EXT_RW_CACHED);
            self.r
                .expect_err("derive-from-itself", &res, Error::ObjectState);
            let res =
                hyp::memextent_configure_derive(child, CapId(0x1234_5678_9abc_def0), 0, 0x1000, 0);
            self.r
                .expect_err("derive-from-made-up-cap", &res, Error::CspaceCapNull);
            if let Some(no_derive) = self.copy(me, MemextentRights::MAP.bits()) {
                let res = hyp::memextent_configure_derive(child, no_derive, 0, 0x1000, 0);
                self.r.expect_err(
                    "derive-without-right",
                    &res,
                    Error::CspaceInsufficientRights,
                );
                self.delete(no_derive);
            }
            let no_activate = MemextentRights::ALL.bits() & !wurley_abi::rights::OBJECT_ACTIVATE;
            if let Some(no_activate) = self.copy(child, no_activate) {
                let res = hyp::memextent_configure(no_activate, PA_UART, 0x1000, EXT_RW_DEVICE);
                self.r.expect_err(
                    "extent-configure-without-activate-right",
                    &res,
                    Error::CspaceInsufficientRights,
                );
                self.delete(no_activate);
            }
            // modify and donate need active extents; bad flags are refused first.
            let res = hyp::memextent_modify(child, 1, 0, 0x1000);
            self.r
                .expect_err("modify-init-extent", &res, Error::ObjectState);
            let res = hyp::memextent_modify(child, 0x42, 0, 0x1000);
            self.r
                .expect_err("modify-unknown-flags", &res, Error::ArgumentInvalid);
            let res = hyp::memextent_donate(0, me, child, 0, 0x1000);
            self.r
                .expect_err("donate-init-extents", &res, Error::ObjectState);
            let res = hyp::memextent_donate(0x100, me, child, 0, 0x1000);
            self.r
                .expect_err("donate-unknown-options", &res, Error::ArgumentInvalid);
            self.delete(child);
        }
        self.delete(me);
    }

    fn addrspace(&mut self, vmid: Option<u16>) -> Option<CapId> {
        let r = hyp::partition_create_addrspace(self.partition, self.cspace);
        let s = self.setup("partition_create_addrspace", r)?;
        if let Some(v) = vmid {
            let r = hyp::addrspace_configure(s, v).and_then(|()| hyp::object_activate(s));
            self.setup_ok("addrspace_configure+activate", r)?;
        }
        Some(s)
    }

    /// VMIDs, and the address-space calls with extents that cannot be active.
    fn addrspaces(&mut self) {
        let Some(s) = self.addrspace(None) else {
            return;
        };
        let res = hyp::object_activate(s);
        self.r
            .expect_err("addrspace-activate-no-vmid", &res, Error::ObjectConfig);
        let res = hyp::addrspace_configure(s, 0);
        self.r
            .expect_err("addrspace-vmid-0", &res, Error::ArgumentInvalid);
        let res = addrspace_configure_raw(s, 0x1_0001);
        self.r
            .expect_err("addrspace-vmid-17-bits", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_configure(s, VMID_RM);
        self.r
            .expect_err("addrspace-vmid-of-rm", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_configure(s, VMID_MANIFEST0);
        self.r.expect_err(
            "addrspace-vmid-of-manifest-vm",
            &res,
            Error::ArgumentInvalid,
        );
        let res = hyp::addrspace_configure(s, VMID_B);
        self.r.expect_ok("addrspace-vmid", &res);
        let res = hyp::addrspace_configure(s, VMID_A);
        self.r.expect_ok("addrspace-vmid-replaced", &res);
        if let Some(s2) = self.addrspace(None) {
            let res = hyp::addrspace_configure(s2, VMID_A);
            self.r
                .expect_err("addrspace-vmid-duplicate", &res, Error::ArgumentInvalid);
            // The one replaced is free again.
            let res = hyp::addrspace_configure(s2, VMID_B);
            self.r.expect_ok("addrspace-replaced-vmid-free", &res);
            self.delete(s2);
        }
        let res = hyp::object_activate(s);
        self.r.expect_ok("addrspace-activate", &res);
        let res = hyp::object_activate(s);
        self.r
            .expect_err("addrspace-activate-twice", &res, Error::ObjectState);
        let res = hyp::addrspace_configure(s, VMID_C);
        self.r
            .expect_err("addrspace-configure-active", &res, Error::ObjectState);

        let Some(me) = self.extent() else {
            self.delete(s);
            return;
        };
        let _ = hyp::memextent_configure(me, PA_HYPERVISOR, 0x1000, EXT_RW_CACHED);
        let base = 0x8000_0000;
        // Checked in order: caps, flags, attributes, then the extent's state.
        let res = hyp::addrspace_map(s, me, base, MAP_RW_WB, 0, 0, 0);
        self.r
            .expect_err("map-init-extent", &res, Error::ObjectState);
        let res = hyp::addrspace_map(s, me, base, MAP_RW_WB, 1, 0, 0x1000);
        self.r
            .expect_err("map-partial-flag", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_map(s, me, base, MAP_RW_WB, 0x10, 0, 0);
        self.r
            .expect_err("map-unknown-flag", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_map(s, me, base, 0x66 | 4 << 16, 0, 0, 0);
        self.r
            .expect_err("map-undefined-memtype", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_map(s, me, base, MAP_RW_WB | 0x8, 0, 0, 0);
        self.r
            .expect_err("map-unknown-attr-bit", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_map(s, self.vic, base, MAP_RW_WB, 0, 0, 0);
        self.r
            .expect_err("map-vic-as-extent", &res, Error::CspaceWrongObjectType);
        let res = hyp::addrspace_map(me, me, base, MAP_RW_WB, 0, 0, 0);
        self.r
            .expect_err("map-into-extent", &res, Error::CspaceWrongObjectType);
        if let Some(no_map) = self.copy(
            me,
            MemextentRights::ALL.bits() & !MemextentRights::MAP.bits(),
        ) {
            let res = hyp::addrspace_map(s, no_map, base, MAP_RW_WB, 0, 0, 0);
            self.r.expect_err(
                "map-extent-without-map-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            self.delete(no_map);
        }
        if let Some(no_map) = self.copy(s, AddrspaceRights::LOOKUP.bits()) {
            let res = hyp::addrspace_map(no_map, me, base, MAP_RW_WB, 0, 0, 0);
            self.r.expect_err(
                "map-space-without-map-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            let res = hyp::addrspace_unmap(no_map, me, base, 0, 0, 0);
            self.r.expect_err(
                "unmap-space-without-map-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            self.delete(no_map);
        }
        let res = hyp::addrspace_unmap(s, me, base, 0, 0, 0);
        self.r
            .expect_err("unmap-init-extent", &res, Error::ObjectState);
        let res = hyp::addrspace_unmap(s, me, base, 2, 0, 0);
        self.r
            .expect_err("unmap-unknown-flag", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_update_access(s, me, base, 0x66, 0, 0, 0);
        self.r
            .expect_err("update-access-init-extent", &res, Error::ObjectState);
        let res = hyp::addrspace_update_access(s, me, base, 0x66 | 1 << 16, 0, 0, 0);
        self.r
            .expect_err("update-access-bad-attrs", &res, Error::ArgumentInvalid);
        let res = hyp::addrspace_lookup(s, me, base, 0x1000);
        self.r
            .expect_err("lookup-init-extent", &res, Error::ObjectState);
        if let Some(no_lookup) = self.copy(s, AddrspaceRights::MAP.bits()) {
            let res = hyp::addrspace_lookup(no_lookup, me, base, 0x1000);
            self.r.expect_err(
                "lookup-without-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            self.delete(no_lookup);
        }
        // An address space still in INIT cannot be mapped into.
        if let Some(s2) = self.addrspace(None) {
            let res = hyp::addrspace_map(s2, me, base, MAP_RW_WB, 0, 0, 0);
            self.r
                .expect_err("map-into-init-space", &res, Error::ObjectState);
            self.delete(s2);
        }
        self.delete(me);
        self.delete(s);
    }

    fn thread(&mut self) -> Option<CapId> {
        let r = hyp::partition_create_thread(self.partition, self.cspace);
        self.setup("partition_create_thread", r)
    }

    fn new_vic(&mut self, activate: bool) -> Option<CapId> {
        let r = hyp::partition_create_vic(self.partition, self.cspace);
        let v = self.setup("partition_create_vic", r)?;
        if activate {
            let r = hyp::vic_configure(v, 1, 64, 0, 0).and_then(|()| hyp::object_activate(v));
            self.setup_ok("vic_configure+activate", r)?;
        }
        Some(v)
    }

    fn new_cspace(&mut self, activate: bool) -> Option<CapId> {
        let r = hyp::partition_create_cspace(self.partition, self.cspace);
        let c = self.setup("partition_create_cspace", r)?;
        if activate {
            let r = hyp::cspace_configure(c, 8).and_then(|()| hyp::object_activate(c));
            self.setup_ok("cspace_configure+activate", r)?;
        }
        Some(c)
    }

    /// A VM's objects, active, with a thread attached to them (INIT).
    fn parts(&mut self, vmid: u16) -> Option<Parts> {
        let cs = self.new_cspace(true)?;
        let space = self.addrspace(Some(vmid))?;
        let vic = self.new_vic(true)?;
        let thread = self.thread()?;
        let r = hyp::cspace_attach_thread(cs, thread)
            .and_then(|()| hyp::addrspace_attach_thread(space, thread))
            .and_then(|()| hyp::vic_attach_vcpu(vic, thread, 0));
        self.setup_ok("attach", r)?;
        Some(Parts {
            cs,
            space,
            vic,
            thread,
        })
    }

    fn delete_parts(&self, p: Parts) {
        for c in [p.thread, p.vic, p.space, p.cs] {
            self.delete(c);
        }
    }

    /// Thread and group calls on caps of other types and with missing rights.
    fn wrong_types_and_rights(&mut self) {
        let Some(t) = self.thread() else { return };
        let wrong: [(&str, Result<(), Error>); 8] = [
            ("configure-vic-as-thread", hyp::vcpu_configure(self.vic, 0)),
            (
                "poweron-partition-as-thread",
                hyp::vcpu_poweron(self.partition, PA_RAM_START, 0, 0),
            ),
            ("kill-cspace-as-thread", hyp::vcpu_kill(self.cspace)),
            (
                "register-write-vic-as-thread",
                hyp::vcpu_register_write(self.vic, 0, 0, 0),
            ),
            ("poweroff-vic-as-thread", poweroff(self.vic, 0)),
            (
                "priority-vic-as-thread",
                hyp::vcpu_set_priority(self.vic, 1),
            ),
            (
                "cspace-attach-thread-vic",
                hyp::cspace_attach_thread(self.cspace, self.vic),
            ),
            ("cspace-attach-to-thread", hyp::cspace_attach_thread(t, t)),
        ];
        for (name, res) in wrong {
            self.r.expect_err(name, &res, Error::CspaceWrongObjectType);
        }
        if let Some(v) = self.new_vic(true) {
            let res = hyp::vic_attach_vcpu(v, self.cspace, 0);
            self.r.expect_err(
                "vic-attach-cspace-as-thread",
                &res,
                Error::CspaceWrongObjectType,
            );
            self.delete(v);
        }
        let res = hyp::vpm_group_get_state(t);
        self.r.expect_err(
            "vpm-state-thread-as-group",
            &res,
            Error::CspaceWrongObjectType,
        );
        let res = hyp::hwirq_bind_virq(self.vic, self.vic, self.spi);
        self.r.expect_err(
            "hwirq-bind-vic-as-hwirq",
            &res,
            Error::CspaceWrongObjectType,
        );
        let res = hyp::hwirq_unbind_virq(t);
        self.r.expect_err(
            "hwirq-unbind-thread-as-hwirq",
            &res,
            Error::CspaceWrongObjectType,
        );

        // A copy with every right but the one each call needs.
        let all = ThreadRights::ALL.bits() | wurley_abi::rights::OBJECT_ACTIVATE;
        let missing: [(&str, u32); 6] = [
            (
                "configure-without-activate-right",
                wurley_abi::rights::OBJECT_ACTIVATE,
            ),
            ("poweron-without-power-right", ThreadRights::POWER.bits()),
            (
                "kill-without-lifecycle-right",
                ThreadRights::LIFECYCLE.bits(),
            ),
            (
                "register-write-without-right",
                ThreadRights::WRITE_CONTEXT.bits(),
            ),
            ("priority-without-right", ThreadRights::PRIORITY.bits()),
            ("timeslice-without-right", ThreadRights::TIMESLICE.bits()),
        ];
        for (name, right) in missing {
            let Some(c) = self.copy(t, all & !right) else {
                continue;
            };
            let res = match right {
                wurley_abi::rights::OBJECT_ACTIVATE => hyp::vcpu_configure(c, 0),
                r if r == ThreadRights::POWER.bits() => hyp::vcpu_poweron(c, PA_RAM_START, 0, 0),
                r if r == ThreadRights::LIFECYCLE.bits() => hyp::vcpu_kill(c),
                r if r == ThreadRights::WRITE_CONTEXT.bits() => {
                    hyp::vcpu_register_write(c, 0, 0, 1)
                }
                r if r == ThreadRights::PRIORITY.bits() => hyp::vcpu_set_priority(c, 1),
                _ => hyp::vcpu_set_timeslice(c, 1_000_000),
            };
            self.r
                .expect_err(name, &res, Error::CspaceInsufficientRights);
            self.delete(c);
        }
        // Attaching needs OBJECT_ACTIVATE on the thread and ATTACH on the target.
        if let Some(c) = self.copy(t, all & !wurley_abi::rights::OBJECT_ACTIVATE) {
            let res = hyp::cspace_attach_thread(self.cspace, c);
            self.r.expect_err(
                "attach-thread-without-activate-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            self.delete(c);
        }
        if let Some(s) = self.addrspace(Some(VMID_C)) {
            if let Some(c) = self.copy(s, AddrspaceRights::MAP.bits()) {
                let res = hyp::addrspace_attach_thread(c, t);
                self.r.expect_err(
                    "addrspace-attach-without-right",
                    &res,
                    Error::CspaceInsufficientRights,
                );
                self.delete(c);
            }
            self.delete(s);
        }
        // Our own VIC runs our VM: our cap to it only binds sources.
        let res = hyp::vic_attach_vcpu(self.vic, t, 0);
        self.r
            .expect_err("attach-to-own-vic", &res, Error::CspaceInsufficientRights);
        self.delete(t);
    }

    /// A VM with no memory: wrong orders, then the right one; power-on, kill, retirement.
    fn zero_memory_vm(&mut self) {
        let Some(cs) = self.new_cspace(false) else {
            return;
        };
        let Some(space) = self.addrspace(None) else {
            return;
        };
        let Some(vic) = self.new_vic(false) else {
            return;
        };
        let Some(t) = self.thread() else { return };
        let r = hyp::partition_create_vpm_group(self.partition, self.cspace);
        let Some(group) = self.setup("partition_create_vpm_group", r) else {
            return;
        };

        // Everything before its time.
        let res = hyp::object_activate(t);
        self.r
            .expect_err("thread-activate-unattached", &res, Error::ObjectConfig);
        let res = hyp::cspace_attach_thread(cs, t);
        self.r
            .expect_err("attach-to-init-cspace", &res, Error::ObjectState);
        let res = hyp::addrspace_attach_thread(space, t);
        self.r
            .expect_err("attach-to-init-addrspace", &res, Error::ObjectState);
        let res = hyp::vic_attach_vcpu(vic, t, 0);
        self.r
            .expect_err("attach-to-init-vic", &res, Error::ObjectState);
        let res = hyp::vpm_group_attach_vcpu(group, t, 0);
        self.r
            .expect_err("attach-to-init-vpm-group", &res, Error::ObjectState);
        let res = hyp::object_activate(cs);
        self.r
            .expect_err("cspace-activate-unconfigured", &res, Error::ObjectConfig);
        let res = hyp::object_activate(vic);
        self.r
            .expect_err("vic-activate-unconfigured", &res, Error::ObjectConfig);
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 0);
        self.r
            .expect_err("poweron-init-thread", &res, Error::ObjectState);
        let res = hyp::vcpu_kill(t);
        self.r
            .expect_err("kill-init-thread", &res, Error::ObjectState);

        // Configuration: vcpu_run_scheduled (bit 9) is accepted (and replaced below), then bad
        // values.
        let res = hyp::vcpu_configure(t, OPTION_RUN_SCHEDULED);
        self.r.expect_ok("vcpu-configure-run-scheduled", &res);
        let res = hyp::vcpu_configure(t, 1 << 40);
        self.r
            .expect_err("vcpu-configure-unknown-bit", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_configure(t, 0);
        self.r.expect_ok("vcpu-configure", &res);
        let res = hyp::vcpu_set_priority(t, 64);
        self.r
            .expect_err("priority-64", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_priority(t, u64::MAX);
        self.r
            .expect_err("priority-huge", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_priority(t, 10);
        self.r.expect_ok("priority-init", &res);
        let res = hyp::vcpu_set_timeslice(t, 99_999);
        self.r
            .expect_err("timeslice-too-short", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_timeslice(t, 100_000_001);
        self.r
            .expect_err("timeslice-too-long", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_timeslice(t, 1_000_000);
        self.r.expect_ok("timeslice-init", &res);
        let res = hyp::vcpu_set_affinity(t, 0xffff);
        self.r
            .expect_err("affinity-invalid-cpu", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_affinity(t, 64);
        self.r
            .expect_err("affinity-absent-cpu", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_set_affinity(t, 1);
        self.r.expect_ok("affinity-init", &res);
        let res = hyp::vic_configure(vic, 0, 64, 0, 0);
        self.r
            .expect_err("vic-0-vcpus", &res, Error::ArgumentInvalid);
        let res = hyp::vic_configure(vic, 9, 64, 0, 0);
        self.r
            .expect_err("vic-9-vcpus", &res, Error::ArgumentInvalid);
        let res = hyp::vic_configure(vic, 1, 989, 0, 0);
        self.r
            .expect_err("vic-989-virqs", &res, Error::ArgumentInvalid);
        let res = hyp::vic_configure(vic, 1, 64, 1, 4);
        self.r.expect_err("vic-msis", &res, Error::ArgumentInvalid);
        let res = hyp::vic_configure(vic, 1, 64, 4, 0);
        self.r
            .expect_err("vic-unknown-option", &res, Error::ArgumentInvalid);
        let res = hyp::vic_configure(vic, 1, 64, 0, 0);
        self.r.expect_ok("vic-configure", &res);
        let res = hyp::cspace_configure(cs, 8);
        self.r.expect_ok("cspace-configure", &res);
        let res = hyp::vpm_group_configure(group, 2);
        self.r
            .expect_err("vpm-configure-unknown-flag", &res, Error::ArgumentInvalid);
        let res = hyp::vpm_group_configure(group, 0);
        self.r.expect_ok("vpm-configure", &res);

        // Activation; the thread is still missing its address space (inactive).
        for (name, c) in [
            ("vic-activate", vic),
            ("cspace-activate", cs),
            ("vpm-activate", group),
        ] {
            let res = hyp::object_activate(c);
            self.r.expect_ok(name, &res);
        }
        let res = hyp::vic_configure(vic, 2, 64, 0, 0);
        self.r
            .expect_err("vic-configure-active", &res, Error::ObjectState);
        let res = hyp::cspace_attach_thread(cs, t);
        self.r.expect_ok("cspace-attach", &res);
        let res = hyp::vic_attach_vcpu(vic, t, 1);
        self.r
            .expect_err("vic-attach-index-beyond", &res, Error::ArgumentInvalid);
        let res = hyp::vic_attach_vcpu(vic, t, 0);
        self.r.expect_ok("vic-attach", &res);
        let res = hyp::vic_attach_vcpu(vic, t, 0);
        self.r
            .expect_err("vic-attach-twice", &res, Error::ArgumentInvalid);
        let res = hyp::vpm_group_attach_vcpu(group, t, 8);
        self.r
            .expect_err("vpm-attach-index-8", &res, Error::ArgumentInvalid);
        let res = hyp::vpm_group_get_state(group);
        self.expect_value("vpm-state-empty", res, VPM_NONE);
        let no_query = VpmGroupRights::ALL.bits() & !VpmGroupRights::QUERY.bits();
        if let Some(c) = self.copy(group, no_query) {
            let res = hyp::vpm_group_get_state(c);
            self.r.expect_err(
                "vpm-state-without-query-right",
                &res,
                Error::CspaceInsufficientRights,
            );
            let res = hyp::vpm_group_attach_vcpu(c, self.vic, 0);
            self.r.expect_err(
                "vpm-attach-vic-as-thread",
                &res,
                Error::CspaceWrongObjectType,
            );
            self.delete(c);
        }
        let res = hyp::vpm_group_attach_vcpu(group, t, 0);
        self.r.expect_ok("vpm-attach", &res);
        let res = hyp::vpm_group_attach_vcpu(group, t, 1);
        self.r
            .expect_err("vpm-attach-twice", &res, Error::ArgumentInvalid);
        let res = hyp::object_activate(t);
        self.r
            .expect_err("thread-activate-no-addrspace", &res, Error::ObjectConfig);
        let res =
            hyp::addrspace_configure(space, VMID_A).and_then(|()| hyp::object_activate(space));
        self.r.expect_ok("addrspace-ready", &res);
        let res = hyp::addrspace_attach_thread(space, t);
        self.r.expect_ok("addrspace-attach", &res);
        let res = hyp::vcpu_register_write(t, 3, 0, 0);
        self.r
            .expect_err("register-write-bad-set", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_register_write(t, 0, 31, 0);
        self.r
            .expect_err("register-write-x31", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_register_write(t, 2, 2, 0);
        self.r
            .expect_err("register-write-sp-el2", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_register_write(t, 0, 5, 0x5555);
        self.r.expect_ok("register-write-init", &res);
        let res = hyp::object_activate(t);
        self.r.expect_ok("thread-activate", &res);
        let res = hyp::object_activate(t);
        self.r
            .expect_err("thread-activate-twice", &res, Error::ObjectState);
        let res = hyp::vcpu_configure(t, 0);
        self.r
            .expect_err("vcpu-configure-active", &res, Error::ObjectState);
        let res = hyp::vcpu_set_priority(t, 10);
        self.r
            .expect_err("priority-active", &res, Error::ObjectState);
        let res = hyp::vcpu_set_timeslice(t, 1_000_000);
        self.r
            .expect_err("timeslice-active", &res, Error::ObjectState);
        let res = hyp::cspace_attach_thread(cs, t);
        self.r
            .expect_err("cspace-attach-active-thread", &res, Error::ObjectState);
        let res = hyp::vcpu_register_write(t, 1, 0, PA_RAM_START);
        self.r.expect_ok("register-write-pc-before-poweron", &res);
        let res = poweroff(t, 0);
        self.r.expect_err(
            "poweroff-other-vcpu-before-poweron",
            &res,
            Error::ArgumentInvalid,
        );
        let res = hyp::vpm_group_get_state(group);
        self.expect_value("vpm-state-before-poweron", res, VPM_OFF);
        let res = hyp::vpm_group_bind_virq(group, self.vic, UART_INTID);
        self.r
            .expect_err("vpm-bind-uart-virq", &res, Error::ArgumentInvalid);
        let res = hyp::vpm_group_bind_virq(group, self.vic, self.spi);
        self.r.expect_ok("vpm-bind", &res);
        let res = hyp::vpm_group_bind_virq(group, self.vic, self.spi);
        self.r.expect_err("vpm-bind-twice", &res, Error::VirqBound);

        // Power on a VM that has no memory at all.
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 4);
        self.r
            .expect_err("poweron-unknown-flag", &res, Error::ArgumentInvalid);
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0xc0ffee, 1);
        self.r.expect_ok("poweron-no-memory", &res);
        time::sleep_us(50_000);
        self.r.info(
            "alive",
            format_args!("still running after the memoryless VM started"),
        );
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 0);
        self.r.expect_err("poweron-twice", &res, Error::Busy);
        let res = hyp::vcpu_register_write(t, 0, 0, 1);
        self.r
            .expect_err("register-write-while-on", &res, Error::Busy);
        let res = poweroff(t, 0);
        self.r
            .expect_err("poweroff-other-vcpu", &res, Error::ArgumentInvalid);
        let res = poweroff(t, 2);
        self.r
            .expect_err("poweroff-unknown-flag", &res, Error::ArgumentInvalid);
        let res = hyp::vpm_group_get_state(group);
        self.expect_value("vpm-state-running", res, VPM_RUNNING);
        let res = hyp::vcpu_set_priority(t, 1);
        self.r
            .expect_err("priority-running", &res, Error::ObjectState);

        let res = hyp::vcpu_kill(t);
        self.r.expect_ok("kill", &res);
        time::sleep_us(50_000);
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 0);
        self.r
            .expect_err("poweron-after-kill", &res, Error::ObjectState);
        let res = hyp::vpm_group_get_state(group);
        self.expect_value("vpm-state-after-kill", res, VPM_OFF);
        let res = hyp::vcpu_register_write(t, 0, 0, 1);
        self.r
            .expect_err("register-write-after-kill", &res, Error::ObjectState);
        let res = hyp::vpm_group_unbind_virq(group);
        self.r.expect_ok("vpm-unbind", &res);
        let res = hyp::vpm_group_unbind_virq(group);
        self.r
            .expect_err("vpm-unbind-twice", &res, Error::VirqNotBound);

        // A new VM now takes the killed one's place in the hypervisor: the old thread must
        // not reach the newcomer's vCPU.
        if let Some(c) = self.parts(VMID_C) {
            let res = hyp::object_activate(c.thread)
                .and_then(|()| hyp::vcpu_poweron(c.thread, PA_RAM_START, 0, 0));
            self.r.expect_ok("successor-poweron", &res);
            time::sleep_us(20_000);
            let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 0);
            self.r
                .expect_err("stale-thread-poweron", &res, Error::ObjectState);
            let res = hyp::vcpu_kill(t);
            self.r
                .expect_err("stale-thread-kill", &res, Error::ObjectState);
            let res = hyp::vpm_group_get_state(group);
            self.expect_value("stale-vpm-state", res, VPM_OFF);
            let res = hyp::vcpu_set_affinity(t, 0);
            self.r
                .expect_err("stale-thread-affinity", &res, Error::ObjectState);
            // The successor must still be running: a second power-on is BUSY, not
            // OBJECT_STATE (killed).
            let res = hyp::vcpu_poweron(c.thread, PA_RAM_START, 0, 0);
            self.r.expect_err("successor-untouched", &res, Error::Busy);
            let res = hyp::vcpu_kill(c.thread);
            self.r.expect_ok("successor-kill", &res);
            time::sleep_us(20_000);
            self.delete_parts(c);
        }

        // Let go of everything: the hypervisor logs the VM retired and its space destroyed.
        let mut out = Ok(());
        for c in [t, group, vic, space, cs] {
            let res = hyp::cspace_delete_cap_from(self.cspace, c);
            if out.is_ok() {
                out = res;
            }
        }
        self.r.expect_ok("delete-every-cap", &out);
        let res = hyp::vcpu_poweron(t, PA_RAM_START, 0, 0);
        self.r
            .expect_err("poweron-deleted-thread", &res, Error::CspaceCapNull);
    }

    /// A thread killed before its first power-on can never run.
    fn killed_before_poweron(&mut self) {
        let Some(p) = self.parts(VMID_B) else { return };
        let res = hyp::object_activate(p.thread);
        self.r.expect_ok("early-kill-activate", &res);
        let res = hyp::vcpu_kill(p.thread);
        self.r.expect_ok("early-kill", &res);
        let res = hyp::vcpu_poweron(p.thread, PA_RAM_START, 0, 0);
        let refused = self
            .r
            .expect_err("poweron-after-early-kill", &res, Error::ObjectState);
        if !refused && res.is_ok() {
            let _ = hyp::vcpu_kill(p.thread);
            time::sleep_us(20_000);
        }
        self.delete_parts(p);
    }

    /// A value for a random argument: small numbers, interesting addresses, caps, noise.
    fn arg(&mut self, caps: &[CapId]) -> u64 {
        let r = self.next_random();
        match r % 8 {
            0 | 1 => caps[(r >> 8) as usize % caps.len()].0,
            2 => (r >> 8) % 16,
            3 => [
                0,
                PA_RAM_START,
                PA_HYPERVISOR,
                PA_UART,
                0x1000,
                u64::MAX,
                1 << 47,
                0x8000,
            ][(r >> 8) as usize % 8],
            4 => (r >> 8) & !0xfff,
            5 => u64::from(self.vmid_like(r)),
            _ => r,
        }
    }

    fn vmid_like(&self, r: u64) -> u16 {
        [0, 1, VMID_RM, VMID_MANIFEST0, VMID_A, 0xffff][(r >> 16) as usize % 6]
    }

    /// Random calls among the new numbers, over caps to fresh objects of each type (and our
    /// own): only OK or documented codes.
    fn fuzz(&mut self) {
        let Some(p) = self.parts(0x4300) else { return };
        let Some(me) = self.extent() else { return };
        let r = hyp::partition_create_vpm_group(self.partition, self.cspace);
        let Some(group) = self.setup("partition_create_vpm_group", r) else {
            return;
        };
        // The thread stays in INIT: `object_activate` is not among the calls, so no VM is
        // built (a critical one would stop the machine, as documented).
        let caps = [
            p.cs,
            p.space,
            p.vic,
            p.thread,
            me,
            group,
            self.vic,
            self.partition,
            self.cspace,
            CapId(u64::MAX),
            CapId(0),
        ];
        let mut bad = 0u32;
        let mut ok = 0u32;
        let mut counts = [0u32; 8];
        let mut created = 0u32;
        for i in 0..FUZZ_CALLS {
            let r = self.next_random();
            let (call, sig) = FUZZ_CALLS_SIGS[(r % FUZZ_CALLS_SIGS.len() as u64) as usize];
            let mut a = [0u64; 7];
            // Mostly a cap of the kind the call wants where it wants one, so that calls get
            // past the cap lookups to their argument and state checks; else anything.
            for (n, x) in a.iter_mut().enumerate() {
                let pick = self.next_random();
                let kind = sig.get(n).copied().unwrap_or(b'.');
                let of_kind: &[CapId] = match kind {
                    b'P' => &[self.partition],
                    b'C' => &[p.cs, self.cspace],
                    b'S' => &[p.space],
                    b'E' => &[me],
                    b'T' => &[p.thread],
                    b'V' => &[p.vic, self.vic],
                    b'G' => &[group],
                    _ => &[],
                };
                *x = if !of_kind.is_empty() && !pick.is_multiple_of(8) {
                    of_kind[(pick >> 8) as usize % of_kind.len()].0
                } else {
                    self.arg(&caps)
                };
            }
            let out = hyp::smccc(call, &a);
            let res = hyp::result(out[0]);
            let documented = match res {
                Ok(()) => true,
                Err(e) => DOCUMENTED.contains(&e),
            };
            match res {
                Ok(()) => {
                    ok += 1;
                    if call.number() <= HypCall::PartitionCreateVpmGroup.number() {
                        // Do not let made objects fill the cspace.
                        created += 1;
                        self.delete(CapId(out[1]));
                    }
                }
                Err(e) => {
                    let slot = match e {
                        Error::CspaceCapNull => 0,
                        Error::CspaceWrongObjectType => 1,
                        Error::CspaceInsufficientRights => 2,
                        Error::ArgumentInvalid => 3,
                        Error::ObjectState => 4,
                        Error::ArgumentAlignment | Error::ArgumentSize => 5,
                        _ => 6,
                    };
                    counts[slot] += 1;
                }
            }
            self.r.info(
                "fuzz-call",
                format_args!(
                    "#{i} {} ({:#x}) {:#x} {:#x} {:#x} {:#x} -> {}",
                    call.name(),
                    call.number(),
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    hyp::code(&res)
                ),
            );
            if !documented {
                bad += 1;
                self.r.check(
                    "fuzz-undocumented",
                    false,
                    format_args!("#{i} {} answered {}", call.name(), hyp::code(&res)),
                );
            }
        }
        self.r.check(
            "fuzz-200-calls",
            bad == 0,
            format_args!(
                "ok={ok} (created {created}) cap_null={} wrong_type={} rights={} invalid={} state={} align/size={} other={} undocumented={bad}",
                counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]
            ),
        );
        // Still ours: our cspace and partition answer.
        let res = hyp::partition_create_thread(self.partition, self.cspace);
        let alive = self.r.expect_ok("after-fuzz-create", &res);
        if alive && let Ok(c) = res {
            self.delete(c);
        }
        self.delete(group);
        self.delete(me);
        self.delete_parts(p);
    }
}

//! Scalar ABI types (`cap_id_t`, `virq_t`, `vmid_t`, ...) and the
//! `hypervisor_identify` result layouts.
//!
//! `hypervisor_identify` (hypercall 0x00) returns, with no error word:
//! `X0` = [`ApiInfo`], `X1` = [`ApiFlags0`], `X2` = [`ApiFlags1`],
//! `X3` = `api_flags2` (reserved, zero). [`HypervisorIdentity`] bundles the
//! four registers.

/// `count_t` / `index_t` invalid value (`COUNT_INVALID` / `INDEX_INVALID`).
pub const INDEX_INVALID: u32 = 0xFFFF_FFFF;

/// A capability ID (`cap_id_t`): opaque, except that
/// [`CapId::INVALID`] (`~0`) is never a valid cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapId(pub u64);

impl CapId {
    /// `CSPACE_CAP_INVALID`.
    pub const INVALID: CapId = CapId(u64::MAX);

    /// The raw register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether this is not [`CapId::INVALID`].
    pub const fn is_valid(self) -> bool {
        self.0 != Self::INVALID.0
    }
}

/// A virtual interrupt number (`virq_t`) on the virtual GICv3.
///
/// The hypercall ABI passes a plain INTID; upper bits are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Virq(pub u32);

impl Virq {
    /// The raw INTID.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Private peripheral interrupt (16..=31), per vCPU.
    pub const fn is_ppi(self) -> bool {
        matches!(self.0, 16..=31)
    }

    /// Shared peripheral interrupt (32..=1019).
    pub const fn is_spi(self) -> bool {
        matches!(self.0, 32..=1019)
    }

    /// Extended PPI (1056..=1119), per vCPU.
    pub const fn is_extended_ppi(self) -> bool {
        matches!(self.0, 1056..=1119)
    }

    /// Extended SPI (4096..=5119), shared.
    pub const fn is_extended_spi(self) -> bool {
        matches!(self.0, 4096..=5119)
    }
}

/// A VM identifier (`vmid_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmId(pub u16);

impl VmId {
    /// The raw value.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

/// A physical CPU index (`cpu_index_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuIndex(pub u16);

impl CpuIndex {
    /// `CPU_INDEX_INVALID`: "no affinity".
    pub const INVALID: CpuIndex = CpuIndex(0xFFFF);

    /// The raw value.
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// Whether this is not [`CpuIndex::INVALID`].
    pub const fn is_valid(self) -> bool {
        self.0 != Self::INVALID.0
    }
}

/// A scheduling priority (`priority_t`), `0..=63`; higher runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u32);

impl Priority {
    /// Lowest priority.
    pub const MIN: Priority = Priority(0);
    /// Priority of newly created threads.
    pub const DEFAULT: Priority = Priority(32);
    /// Highest priority.
    pub const MAX: Priority = Priority(63);

    /// A priority, or `None` above [`Priority::MAX`].
    pub const fn new(value: u32) -> Option<Priority> {
        if value <= Self::MAX.0 {
            Some(Priority(value))
        } else {
            None
        }
    }

    /// The raw value.
    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::DEFAULT
    }
}

/// A duration in nanoseconds (`nanoseconds_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Nanoseconds(pub u64);

impl Nanoseconds {
    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// From microseconds, saturating.
    pub const fn from_micros(us: u64) -> Nanoseconds {
        Nanoseconds(us.saturating_mul(1_000))
    }

    /// From milliseconds, saturating.
    pub const fn from_millis(ms: u64) -> Nanoseconds {
        Nanoseconds(ms.saturating_mul(1_000_000))
    }
}

/// The `hyp_api_info` variant byte (bits 63:56).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiVariant(pub u8);

impl ApiVariant {
    /// Unknown variant.
    pub const UNKNOWN: ApiVariant = ApiVariant(0);
    /// `GUNYAH` (the docs call it "Haven").
    pub const GUNYAH: ApiVariant = ApiVariant(0x48);
    /// `QUALCOMM`: the source default.
    pub const QUALCOMM: ApiVariant = ApiVariant(0x51);
}

/// The `hyp_api_info` word returned in `X0` by `hypervisor_identify` and by
/// the vendor-hyp REVISION query.
///
/// | Bits  | Field        |
/// |-------|--------------|
/// | 13:0  | API version  |
/// | 14    | big-endian   |
/// | 15    | 64-bit       |
/// | 55:16 | reserved (0) |
/// | 63:56 | variant      |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiInfo {
    /// API version (14 bits); Linux refuses anything but 1.
    pub api_version: u16,
    /// The hypervisor runs big-endian.
    pub big_endian: bool,
    /// The hypervisor is 64-bit.
    pub is_64bit: bool,
    /// Variant byte.
    pub variant: ApiVariant,
}

impl ApiInfo {
    /// Mask of the API version field.
    pub const VERSION_MASK: u64 = 0x3FFF;
    /// Big-endian bit.
    pub const BIG_ENDIAN_BIT: u64 = 1 << 14;
    /// 64-bit bit.
    pub const IS_64BIT_BIT: u64 = 1 << 15;
    /// Reserved bits 55:16.
    pub const RESERVED_MASK: u64 = 0x00FF_FFFF_FFFF_0000;
    /// Shift of the variant byte.
    pub const VARIANT_SHIFT: u32 = 56;

    /// What Wurley reports: API version 1, little-endian, 64-bit, variant
    /// `QUALCOMM` (Gunyah's source default).
    pub const DEFAULT: ApiInfo = ApiInfo {
        api_version: 1,
        big_endian: false,
        is_64bit: true,
        variant: ApiVariant::QUALCOMM,
    };

    /// Encodes to the register value (the version is masked to 14 bits).
    pub const fn encode(self) -> u64 {
        let mut raw = (self.api_version as u64) & Self::VERSION_MASK;
        if self.big_endian {
            raw |= Self::BIG_ENDIAN_BIT;
        }
        if self.is_64bit {
            raw |= Self::IS_64BIT_BIT;
        }
        raw | ((self.variant.0 as u64) << Self::VARIANT_SHIFT)
    }

    /// Decodes a register value, ignoring reserved bits 55:16.
    pub const fn decode(raw: u64) -> ApiInfo {
        ApiInfo {
            api_version: (raw & Self::VERSION_MASK) as u16,
            big_endian: raw & Self::BIG_ENDIAN_BIT != 0,
            is_64bit: raw & Self::IS_64BIT_BIT != 0,
            variant: ApiVariant((raw >> Self::VARIANT_SHIFT) as u8),
        }
    }

    /// Decodes a register value, rejecting non-zero reserved bits.
    pub const fn decode_strict(raw: u64) -> Option<ApiInfo> {
        if raw & Self::RESERVED_MASK != 0 {
            None
        } else {
            Some(Self::decode(raw))
        }
    }
}

impl Default for ApiInfo {
    fn default() -> Self {
        ApiInfo::DEFAULT
    }
}

/// A feature bit of [`ApiFlags0`]. The discriminant is the bit number, as
/// Linux's `GUNYAH_FEATURE_*` constants are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Bit 0: partition and cspace APIs.
    PartitionCspace = 0,
    /// Bit 1: doorbells.
    Doorbell = 1,
    /// Bit 2: message queues.
    Msgqueue = 2,
    /// Bit 3: virtual interrupt controller.
    Vic = 3,
    /// Bit 4: virtual PM groups.
    Vpm = 4,
    /// Bit 5: vCPU APIs.
    Vcpu = 5,
    /// Bit 6: memory extents.
    Memextent = 6,
    /// Bit 7: trace control.
    TraceCtrl = 7,
    /// Bit 8: watchdog.
    Watchdog = 8,
    /// Bit 9: virtio-mmio.
    VirtioMmio = 9,
    /// Bit 10: PRNG.
    Prng = 10,
    /// Bit 11: proxy scheduling (`vcpu_run`).
    VcpuRun = 11,
}

impl Feature {
    /// Every feature, by bit number.
    pub const ALL: [Feature; 12] = [
        Feature::PartitionCspace,
        Feature::Doorbell,
        Feature::Msgqueue,
        Feature::Vic,
        Feature::Vpm,
        Feature::Vcpu,
        Feature::Memextent,
        Feature::TraceCtrl,
        Feature::Watchdog,
        Feature::VirtioMmio,
        Feature::Prng,
        Feature::VcpuRun,
    ];

    /// The bit number.
    pub const fn bit(self) -> u32 {
        self as u32
    }

    /// The single-bit mask.
    pub const fn mask(self) -> u64 {
        1 << self.bit()
    }

    /// The feature with bit number `bit`.
    pub const fn from_bit(bit: u32) -> Option<Feature> {
        if bit < Self::ALL.len() as u32 {
            Some(Self::ALL[bit as usize])
        } else {
            None
        }
    }
}

/// The scheduler variant in [`ApiFlags0`] bits 31:28.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchedulerVariant(pub u8);

impl SchedulerVariant {
    /// 0: trivial scheduler.
    pub const TRIVIAL: SchedulerVariant = SchedulerVariant(0);
    /// 1: fixed-priority round-robin.
    pub const FPRR: SchedulerVariant = SchedulerVariant(1);
}

/// `api_flags0` (`X1` of `hypervisor_identify`): feature bits and the
/// scheduler variant. Bits other than 0..=11 and 31:28 are reserved (bit 16
/// is a named reserved bit in the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApiFlags0(pub u64);

impl ApiFlags0 {
    /// Shift of the scheduler field.
    pub const SCHEDULER_SHIFT: u32 = 28;
    /// Mask of the scheduler field after shifting.
    pub const SCHEDULER_MASK: u64 = 0xF;
    /// Mask of every defined feature bit.
    pub const FEATURES_MASK: u64 = 0xFFF;
    /// Reserved bits (63:32, 27:12).
    pub const RESERVED_MASK: u64 = !(Self::FEATURES_MASK | (Self::SCHEDULER_MASK << 28));

    /// No features, trivial scheduler.
    pub const EMPTY: ApiFlags0 = ApiFlags0(0);

    /// The raw register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether `feature` is advertised.
    pub const fn has(self, feature: Feature) -> bool {
        self.0 & feature.mask() != 0
    }

    /// These flags with `feature` set.
    pub const fn with(self, feature: Feature) -> ApiFlags0 {
        ApiFlags0(self.0 | feature.mask())
    }

    /// These flags with `feature` cleared.
    pub const fn without(self, feature: Feature) -> ApiFlags0 {
        ApiFlags0(self.0 & !feature.mask())
    }

    /// The scheduler variant (bits 31:28).
    pub const fn scheduler(self) -> SchedulerVariant {
        SchedulerVariant(((self.0 >> Self::SCHEDULER_SHIFT) & Self::SCHEDULER_MASK) as u8)
    }

    /// These flags with the scheduler variant replaced (masked to 4 bits).
    pub const fn with_scheduler(self, scheduler: SchedulerVariant) -> ApiFlags0 {
        let cleared = self.0 & !(Self::SCHEDULER_MASK << Self::SCHEDULER_SHIFT);
        ApiFlags0(
            cleared | (((scheduler.0 as u64) & Self::SCHEDULER_MASK) << Self::SCHEDULER_SHIFT),
        )
    }
}

/// `api_flags1` (`X2` of `hypervisor_identify`). The public source reserves
/// every bit; the docs define bit 0 as SVE support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApiFlags1(pub u64);

impl ApiFlags1 {
    /// Bit 0: SVE support (docs only).
    pub const SVE: u64 = 1 << 0;

    /// The raw register value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether the (docs-only) SVE bit is set.
    pub const fn sve(self) -> bool {
        self.0 & Self::SVE != 0
    }
}

/// The four result registers of `hypervisor_identify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HypervisorIdentity {
    /// `X0`: API info.
    pub api_info: ApiInfo,
    /// `X1`: feature flags.
    pub flags0: ApiFlags0,
    /// `X2`: more flags (reserved in the source).
    pub flags1: ApiFlags1,
    /// `X3`: reserved, zero.
    pub flags2: u64,
}

impl HypervisorIdentity {
    /// `X0..X3`.
    pub const fn to_registers(self) -> [u64; 4] {
        [
            self.api_info.encode(),
            self.flags0.0,
            self.flags1.0,
            self.flags2,
        ]
    }

    /// Decodes `X0..X3` (reserved bits of `X0` are ignored).
    pub const fn from_registers(regs: [u64; 4]) -> HypervisorIdentity {
        HypervisorIdentity {
            api_info: ApiInfo::decode(regs[0]),
            flags0: ApiFlags0(regs[1]),
            flags1: ApiFlags1(regs[2]),
            flags2: regs[3],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scalar_constants() {
        assert_eq!(CapId::INVALID.raw(), 0xFFFF_FFFF_FFFF_FFFF);
        assert!(!CapId::INVALID.is_valid());
        assert!(CapId(0).is_valid());
        assert_eq!(CpuIndex::INVALID.raw(), 0xFFFF);
        assert!(!CpuIndex::INVALID.is_valid());
        assert!(CpuIndex(7).is_valid());
        assert_eq!(Priority::DEFAULT.raw(), 32);
        assert_eq!(Priority::MAX.raw(), 63);
        assert_eq!(Priority::default(), Priority::DEFAULT);
        assert_eq!(INDEX_INVALID, u32::MAX);
        assert_eq!(VmId(3).raw(), 3);
        assert_eq!(Nanoseconds::from_micros(5).raw(), 5_000);
        assert_eq!(Nanoseconds::from_millis(5).raw(), 5_000_000);
        assert_eq!(Nanoseconds::from_millis(u64::MAX).raw(), u64::MAX);
    }

    #[test]
    fn priority_range() {
        for v in 0..=1000u32 {
            match Priority::new(v) {
                Some(p) => {
                    assert!(v <= 63);
                    assert_eq!(p.raw(), v);
                    assert!(p >= Priority::MIN && p <= Priority::MAX);
                }
                None => assert!(v > 63),
            }
        }
        assert_eq!(Priority::new(u32::MAX), None);
    }

    #[test]
    fn virq_classes() {
        for intid in 0..6000u32 {
            let v = Virq(intid);
            let classes = [
                v.is_ppi(),
                v.is_spi(),
                v.is_extended_ppi(),
                v.is_extended_spi(),
            ];
            assert!(classes.iter().filter(|&&c| c).count() <= 1);
            assert_eq!(v.raw(), intid);
        }
        assert!(Virq(16).is_ppi() && Virq(31).is_ppi() && !Virq(32).is_ppi());
        assert!(Virq(32).is_spi() && Virq(1019).is_spi() && !Virq(1020).is_spi());
        assert!(Virq(1056).is_extended_ppi() && Virq(1119).is_extended_ppi());
        assert!(Virq(4096).is_extended_spi() && Virq(5119).is_extended_spi());
        assert!(!Virq(5120).is_extended_spi());
    }

    #[test]
    fn api_info_default_layout() {
        // version 1 | 64-bit (bit 15) | variant 0x51 in the top byte.
        assert_eq!(ApiInfo::DEFAULT.encode(), 0x5100_0000_0000_8001);
        assert_eq!(ApiInfo::decode(0x5100_0000_0000_8001), ApiInfo::DEFAULT);
        let be = ApiInfo {
            big_endian: true,
            ..ApiInfo::DEFAULT
        };
        assert_eq!(be.encode(), 0x5100_0000_0000_C001);
        assert_eq!(ApiVariant::GUNYAH.0, 0x48);
    }

    #[test]
    fn api_info_round_trips() {
        for version in (0u16..=0x3FFF).step_by(7).chain([0x3FFF]) {
            for flags in 0..4u8 {
                for variant in [0u8, 0x48, 0x51, 0xFF, 0x80, 0x01] {
                    let info = ApiInfo {
                        api_version: version,
                        big_endian: flags & 1 != 0,
                        is_64bit: flags & 2 != 0,
                        variant: ApiVariant(variant),
                    };
                    let raw = info.encode();
                    assert_eq!(raw & ApiInfo::RESERVED_MASK, 0);
                    assert_eq!(ApiInfo::decode(raw), info);
                    assert_eq!(ApiInfo::decode_strict(raw), Some(info));
                }
            }
        }
        // Reserved bits are ignored by decode, rejected by decode_strict.
        let raw = ApiInfo::DEFAULT.encode() | (1 << 16) | (1 << 55);
        assert_eq!(ApiInfo::decode(raw), ApiInfo::DEFAULT);
        assert_eq!(ApiInfo::decode_strict(raw), None);
        // Every raw value with clear reserved bits re-encodes to itself.
        for i in 0..0x1_0000u64 {
            let raw = (i & 0xFFFF) | ((i.wrapping_mul(0x9E37) & 0xFF) << 56);
            assert_eq!(ApiInfo::decode(raw).encode(), raw);
        }
    }

    #[test]
    fn feature_bits() {
        // The bit numbers Linux checks.
        assert_eq!(Feature::Doorbell.bit(), 1);
        assert_eq!(Feature::Msgqueue.bit(), 2);
        assert_eq!(Feature::Vcpu.bit(), 5);
        assert_eq!(Feature::Memextent.bit(), 6);
        assert_eq!(Feature::VcpuRun.bit(), 11);
        for (i, f) in Feature::ALL.into_iter().enumerate() {
            assert_eq!(f.bit(), i as u32);
            assert_eq!(Feature::from_bit(i as u32), Some(f));
            assert_eq!(f.mask(), 1 << i);
        }
        assert_eq!(Feature::from_bit(12), None);
    }

    #[test]
    fn api_flags0_round_trips() {
        for set in 0u64..(1 << 12) {
            let mut flags = ApiFlags0::EMPTY;
            for f in Feature::ALL {
                if set & f.mask() != 0 {
                    flags = flags.with(f);
                }
            }
            assert_eq!(flags.raw(), set);
            for f in Feature::ALL {
                assert_eq!(flags.has(f), set & f.mask() != 0);
                assert!(!flags.without(f).has(f));
            }
            for s in 0..16u8 {
                let with = flags.with_scheduler(SchedulerVariant(s));
                assert_eq!(with.scheduler(), SchedulerVariant(s));
                assert_eq!(with.raw() & ApiFlags0::FEATURES_MASK, set);
                assert_eq!(with.raw() & ApiFlags0::RESERVED_MASK, 0);
            }
        }
        let fprr = ApiFlags0::EMPTY.with_scheduler(SchedulerVariant::FPRR);
        assert_eq!(fprr.raw(), 0x1000_0000);
        assert_eq!(ApiFlags0::RESERVED_MASK, 0xFFFF_FFFF_0FFF_F000);
    }

    #[test]
    fn identity_round_trips() {
        let id = HypervisorIdentity {
            api_info: ApiInfo::DEFAULT,
            flags0: ApiFlags0::EMPTY
                .with(Feature::PartitionCspace)
                .with(Feature::Doorbell)
                .with(Feature::Msgqueue)
                .with(Feature::Vcpu)
                .with(Feature::Memextent)
                .with(Feature::VcpuRun)
                .with_scheduler(SchedulerVariant::FPRR),
            flags1: ApiFlags1(0),
            flags2: 0,
        };
        let regs = id.to_registers();
        assert_eq!(regs[0], 0x5100_0000_0000_8001);
        assert_eq!(regs[1], 0x1000_0867);
        assert_eq!(HypervisorIdentity::from_registers(regs), id);
        assert!(ApiFlags1(ApiFlags1::SVE).sve());
        assert!(!ApiFlags1::default().sve());
        for x in [0u64, 1, 0xFFFF_FFFF, u64::MAX] {
            let regs = [ApiInfo::DEFAULT.encode(), x, x.rotate_left(7), x ^ 5];
            assert_eq!(
                HypervisorIdentity::from_registers(regs).to_registers(),
                regs
            );
        }
    }
}

//! The doorbell state machine (pure): the 64 flag bits, the enable and acknowledge masks, and
//! what each operation asks of the doorbell's interrupt source.
//!
//! This module owns those three words and nothing else: no locks, no capability checks, no
//! object lifecycle (the object wrapper in [`super::ipc`] checks that the doorbell is active).
//! Every function is total on hostile `u64` input and nothing here panics.
//!
//! # Semantics (Gunyah `hyp/ipc/doorbell/src/doorbell.c`, `src/hypercalls.c`, `doorbell.tc`)
//!
//! A new or reset doorbell has `flags = 0`, `enable_mask = !0`, `ack_mask = 0`. The source's
//! pending re-check is `flags & enable_mask != 0`.
//!
//! - **Send** (`new_flags`): `new_flags == 0` → `ARGUMENT_INVALID`, nothing changes. Otherwise
//!   returns the old flags, sets `flags |= new_flags`, and if `flags & enable_mask != 0` asserts
//!   the source and then clears the acknowledged bits (`flags &= !ack_mask`). If no enabled flag
//!   is set nothing is signalled.
//! - **Receive** (`clear_flags`): `clear_flags == 0` → `ARGUMENT_INVALID`. Otherwise returns the
//!   old flags and clears `clear_flags`. Gunyah does not touch the source (its re-check drops it
//!   later); Wurley drops the line at once if nothing enabled is left (see below).
//! - **Mask** (`enable`, `ack`): both masks are replaced. If enabled flags were pending and none
//!   are under the new mask, the source is cleared. If none were pending and some now are, the
//!   source is asserted and the acknowledged bits cleared. If pending before and after, the
//!   acknowledged bits are cleared without signalling.
//! - **Reset**: clears the source, then flags and ack mask 0, enable mask all ones.
//!
//! Signals are [`VirqLine`]s: `Assert { level }` where Gunyah calls `virq_assert` (`level` is the
//! re-check after the acknowledged bits are cleared: with `mask(1, 1)` every send is an edge),
//! `Deassert` where it calls `virq_clear` and also where an operation turns the re-check from
//! true to false, `Unchanged` otherwise.
//!
//! # Where Gunyah's source differs from the research summary of §5
//!
//! - A send that sets no enabled flag signals nothing: there is no edge-only assertion.
//! - A send with `new_flags == 0` is `ARGUMENT_INVALID` (the summary does not say).

use wurley_abi::Error;

use crate::object::VirqLine;

/// A doorbell's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbell {
    /// Flags raised by senders and not yet cleared.
    flags: u64,
    /// Flags that make the source pending.
    enable_mask: u64,
    /// Flags cleared automatically when the source is asserted.
    ack_mask: u64,
}

impl Default for Doorbell {
    fn default() -> Doorbell {
        Doorbell::new()
    }
}

impl Doorbell {
    /// A new doorbell: no flags, every flag enabled, none auto-acknowledged.
    pub const fn new() -> Doorbell {
        Doorbell {
            flags: 0,
            enable_mask: !0,
            ack_mask: 0,
        }
    }

    /// `doorbell_send` with Gunyah's argument check: `ARGUMENT_INVALID` (and no change) if
    /// `new_flags` is 0, otherwise as [`Doorbell::send`].
    pub fn try_send(&mut self, new_flags: u64) -> Result<(u64, VirqLine), Error> {
        if new_flags == 0 {
            return Err(Error::ArgumentInvalid);
        }
        Ok(self.send(new_flags))
    }

    /// Raise `new_flags`; returns the flags before. If an enabled flag is then set the source
    /// is asserted and the acknowledged flags cleared; otherwise nothing is signalled.
    ///
    /// Gunyah refuses `new_flags == 0` with `ARGUMENT_INVALID`: here it is a no-op returning the
    /// current flags and [`VirqLine::Unchanged`]; the hypercall path must use
    /// [`Doorbell::try_send`] (or check for 0 itself) to report the error.
    pub fn send(&mut self, new_flags: u64) -> (u64, VirqLine) {
        let old = self.flags;
        if new_flags == 0 {
            return (old, VirqLine::Unchanged);
        }
        self.flags |= new_flags;
        if !self.pending() {
            // Nothing enabled is set, and nothing was before (flags only grew).
            return (old, VirqLine::Unchanged);
        }
        self.flags &= !self.ack_mask;
        (
            old,
            VirqLine::Assert {
                level: self.pending(),
            },
        )
    }

    /// Clear `clear_flags`; returns the flags before. `ARGUMENT_INVALID` (and no change) if
    /// `clear_flags` is 0. The line drops if no enabled flag is left set.
    pub fn receive(&mut self, clear_flags: u64) -> Result<(u64, VirqLine), Error> {
        if clear_flags == 0 {
            return Err(Error::ArgumentInvalid);
        }
        let old = self.flags;
        let before = self.pending();
        self.flags &= !clear_flags;
        Ok((old, settle(before, self.pending())))
    }

    /// Replace both masks. Asserts the source if enabled flags are now set and were not before
    /// (then clears the acknowledged flags); clears it if they were and are not; if they were
    /// and still are, clears the acknowledged flags and drops the line if that leaves none.
    pub fn mask(&mut self, enable_mask: u64, ack_mask: u64) -> VirqLine {
        let was = self.pending();
        let now = self.flags & enable_mask != 0;
        self.enable_mask = enable_mask;
        self.ack_mask = ack_mask;
        match (was, now) {
            (true, false) => VirqLine::Deassert,
            (false, true) => {
                self.flags &= !ack_mask;
                VirqLine::Assert {
                    level: self.pending(),
                }
            }
            (true, true) => {
                self.flags &= !ack_mask;
                settle(true, self.pending())
            }
            (false, false) => VirqLine::Unchanged,
        }
    }

    /// Back to the new state; the source is cleared.
    pub fn reset(&mut self) -> VirqLine {
        *self = Doorbell::new();
        VirqLine::Deassert
    }

    /// The source's pending re-check: an enabled flag is set.
    pub fn pending(&self) -> bool {
        self.flags & self.enable_mask != 0
    }

    /// The raised flags.
    pub fn flags(&self) -> u64 {
        self.flags
    }

    /// The enable mask.
    pub fn enable_mask(&self) -> u64 {
        self.enable_mask
    }

    /// The acknowledge mask.
    pub fn ack_mask(&self) -> u64 {
        self.ack_mask
    }
}

/// The line for an operation that neither asserts nor clears: dropped if the re-check just went
/// from pending to not pending.
fn settle(before: bool, after: bool) -> VirqLine {
    if before && !after {
        VirqLine::Deassert
    } else {
        VirqLine::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSERT_HIGH: VirqLine = VirqLine::Assert { level: true };
    const ASSERT_LOW: VirqLine = VirqLine::Assert { level: false };

    #[test]
    fn defaults() {
        let d = Doorbell::new();
        assert_eq!((d.flags(), d.enable_mask(), d.ack_mask()), (0, !0, 0));
        assert_eq!(Doorbell::default(), d);
        assert!(!d.pending());
    }

    #[test]
    fn send_returns_old_flags_and_asserts() {
        let mut d = Doorbell::new();
        assert_eq!(d.send(0b01), (0, ASSERT_HIGH));
        assert_eq!(d.send(0b10), (0b01, ASSERT_HIGH));
        assert_eq!(d.flags(), 0b11);
        assert_eq!(d.try_send(0b100), Ok((0b11, ASSERT_HIGH)));
    }

    #[test]
    fn send_zero() {
        let mut d = Doorbell::new();
        d.send(0b1);
        d.mask(!0, 0b1);
        // Gunyah: ARGUMENT_INVALID, nothing changes (in particular no assert, no ack).
        let before = d;
        assert_eq!(d.try_send(0), Err(Error::ArgumentInvalid));
        assert_eq!(d, before);
        // The infallible form is a no-op.
        assert_eq!(d.send(0), (before.flags(), VirqLine::Unchanged));
        assert_eq!(d, before);
    }

    #[test]
    fn send_without_enabled_flags_signals_nothing() {
        let mut d = Doorbell::new();
        assert_eq!(d.mask(0b1, 0), VirqLine::Unchanged);
        // No edge-only assertion: Gunyah does nothing at all.
        assert_eq!(d.send(0b110), (0, VirqLine::Unchanged));
        assert_eq!(d.flags(), 0b110);
        assert!(!d.pending());
    }

    #[test]
    fn ack_on_send() {
        let mut d = Doorbell::new();
        // Linux irqfd level emulation: enable bit 0, auto-acknowledge bit 0.
        assert_eq!(d.mask(1, 1), VirqLine::Unchanged);
        assert_eq!(d.send(1), (0, ASSERT_LOW));
        assert_eq!(d.flags(), 0);
        // Acknowledgement only clears ack bits; the rest stay and keep the level.
        d.mask(0b11, 0b01);
        assert_eq!(d.send(0b11), (0, ASSERT_HIGH));
        assert_eq!(d.flags(), 0b10);
        // Ack bits are also cleared when the assert comes from a non-ack flag.
        d.mask(!0, 0b100);
        d.send(0b100);
        assert_eq!(d.flags(), 0b10);
        // Disabled-but-set flags are not acknowledged while nothing enabled is set.
        let mut d = Doorbell::new();
        d.mask(0b1, 0b10);
        assert_eq!(d.send(0b10), (0, VirqLine::Unchanged));
        assert_eq!(d.flags(), 0b10);
    }

    #[test]
    fn receive_rules() {
        let mut d = Doorbell::new();
        assert_eq!(d.receive(0), Err(Error::ArgumentInvalid));
        d.send(0b111);
        let before = d;
        assert_eq!(d.receive(0), Err(Error::ArgumentInvalid));
        assert_eq!(d, before);
        assert_eq!(d.receive(0b001), Ok((0b111, VirqLine::Unchanged)));
        assert_eq!(d.receive(0b110), Ok((0b110, VirqLine::Deassert)));
        assert_eq!(d.receive(!0), Ok((0, VirqLine::Unchanged)));
        // Clearing the only enabled flag drops the line although disabled flags remain.
        d.mask(0b1, 0);
        d.send(0b11);
        assert_eq!(d.receive(0b1), Ok((0b11, VirqLine::Deassert)));
        assert_eq!(d.flags(), 0b10);
    }

    #[test]
    fn mask_rules() {
        let mut d = Doorbell::new();
        // Neither before nor after.
        assert_eq!(d.mask(0, !0), VirqLine::Unchanged);
        d.send(0b101);
        assert_eq!(d.flags(), 0b101);
        // Newly enabled flags that are set: assert, then acknowledge.
        assert_eq!(d.mask(0b100, 0b100), ASSERT_LOW);
        assert_eq!(d.flags(), 0b001);
        assert_eq!(d.mask(0b001, 0), ASSERT_HIGH);
        // Pending before and after: acknowledge; the line drops if nothing is left.
        d.send(0b010);
        assert_eq!(d.mask(0b011, 0b010), VirqLine::Unchanged);
        assert_eq!(d.flags(), 0b001);
        assert_eq!(d.mask(0b001, 0b001), VirqLine::Deassert);
        assert_eq!(d.flags(), 0);
        // Pending before, nothing enabled set after: clear, and no acknowledgement.
        assert_eq!(d.mask(!0, 0), VirqLine::Unchanged);
        d.send(0b11);
        assert_eq!(d.mask(0b100, 0b11), VirqLine::Deassert);
        assert_eq!(d.flags(), 0b11);
        assert_eq!((d.enable_mask(), d.ack_mask()), (0b100, 0b11));
    }

    #[test]
    fn reset_rules() {
        let mut d = Doorbell::new();
        assert_eq!(d.reset(), VirqLine::Deassert);
        d.mask(0b1, 0b1);
        d.send(0b110);
        assert_eq!(d.reset(), VirqLine::Deassert);
        assert_eq!(d, Doorbell::new());
    }

    /// A deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Mostly a few low bits (so masks and flags overlap often), sometimes anything.
        fn bits(&mut self) -> u64 {
            match self.next() % 8 {
                0 => 0,
                1 => !0,
                2 => self.next(),
                _ => self.next() & 0b1111,
            }
        }
    }

    /// The reference model: three words and the rules of the module docs.
    #[derive(Clone, Copy)]
    struct Model {
        flags: u64,
        enable: u64,
        ack: u64,
    }

    impl Model {
        fn pending(&self) -> bool {
            self.flags & self.enable != 0
        }
    }

    /// The bound vIRQ as the VIC sees it, driven by the returned [`VirqLine`]s.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Line {
        Off,
        Level,
        Edge,
    }

    fn run_model(seed: u64, steps: usize) {
        let mut r = Rng(seed | 1);
        let mut d = Doorbell::new();
        let mut m = Model {
            flags: 0,
            enable: !0,
            ack: 0,
        };
        let mut line = Line::Off;
        for step in 0..steps {
            let before = m.pending();
            let got: VirqLine = match r.next() % 12 {
                0..=3 => {
                    let new = r.bits();
                    let fallible = r.next() & 1 == 0;
                    let got = if fallible {
                        d.try_send(new)
                    } else {
                        Ok(d.send(new))
                    };
                    let old = m.flags;
                    let want = if new == 0 {
                        if fallible {
                            Err(Error::ArgumentInvalid)
                        } else {
                            Ok((old, VirqLine::Unchanged))
                        }
                    } else {
                        m.flags |= new;
                        if m.flags & m.enable != 0 {
                            m.flags &= !m.ack;
                            Ok((old, VirqLine::Assert { level: m.pending() }))
                        } else {
                            Ok((old, VirqLine::Unchanged))
                        }
                    };
                    assert_eq!(got, want, "step {step}");
                    want.map_or(VirqLine::Unchanged, |(_, v)| v)
                }
                4..=6 => {
                    let clear = r.bits();
                    let got = d.receive(clear);
                    let want = if clear == 0 {
                        Err(Error::ArgumentInvalid)
                    } else {
                        let old = m.flags;
                        m.flags &= !clear;
                        let v = if before && !m.pending() {
                            VirqLine::Deassert
                        } else {
                            VirqLine::Unchanged
                        };
                        Ok((old, v))
                    };
                    assert_eq!(got, want, "step {step}");
                    want.map_or(VirqLine::Unchanged, |(_, v)| v)
                }
                7..=8 => {
                    let (enable, ack) = (r.bits(), r.bits());
                    let got = d.mask(enable, ack);
                    let now = m.flags & enable != 0;
                    m.enable = enable;
                    m.ack = ack;
                    let want = if before && !now {
                        VirqLine::Deassert
                    } else if now {
                        m.flags &= !ack;
                        if !before {
                            VirqLine::Assert { level: m.pending() }
                        } else if m.pending() {
                            VirqLine::Unchanged
                        } else {
                            VirqLine::Deassert
                        }
                    } else {
                        VirqLine::Unchanged
                    };
                    assert_eq!(got, want, "step {step}");
                    want
                }
                9 => {
                    m = Model {
                        flags: 0,
                        enable: !0,
                        ack: 0,
                    };
                    let got = d.reset();
                    assert_eq!(got, VirqLine::Deassert, "step {step}");
                    got
                }
                _ => {
                    // The guest takes the interrupt: the VIC asks the re-check.
                    if line != Line::Off {
                        line = if d.pending() { Line::Level } else { Line::Off };
                    }
                    VirqLine::Unchanged
                }
            };
            assert_eq!(
                (d.flags(), d.enable_mask(), d.ack_mask()),
                (m.flags, m.enable, m.ack),
                "step {step}"
            );
            assert_eq!(d.pending(), m.pending());
            match got {
                VirqLine::Unchanged => {}
                VirqLine::Assert { level } => {
                    assert_eq!(level, d.pending());
                    line = if level { Line::Level } else { Line::Edge };
                }
                VirqLine::Deassert => {
                    assert!(!d.pending(), "step {step}: deasserted while pending");
                    line = Line::Off;
                }
            }
            assert!(
                !d.pending() || line != Line::Off,
                "step {step}: pending but line off"
            );
            assert!(
                line != Line::Level || d.pending(),
                "step {step}: stale level line"
            );
        }
    }

    #[test]
    fn model_check() {
        for seed in [1, 2, 0xDEAD_BEEF, 0x0123_4567_89AB_CDEF, 99_991] {
            run_model(seed, 20_000);
        }
    }
}

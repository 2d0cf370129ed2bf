//! Host tests of the virtual PL011.

#![allow(clippy::unwrap_used)]

use alloc::vec::Vec;

use super::*;

/// A UART plus everything it has transmitted.
struct Uart {
    u: VPl011,
    out: Vec<u8>,
}

impl Uart {
    fn new() -> Self {
        Self {
            u: VPl011::new(),
            out: Vec::new(),
        }
    }

    fn access(&mut self, access: MmioAccess) -> MmioResult {
        let out = &mut self.out;
        self.u.access(access, &mut |b| out.push(b))
    }

    fn rd(&mut self, offset: u64) -> u32 {
        match self.access(MmioAccess::read(offset, 4)) {
            MmioResult::Read(v) => u32::try_from(v).unwrap(),
            other => panic!("read of {offset:#x}: {other:?}"),
        }
    }

    fn wr(&mut self, offset: u64, value: u32) {
        assert_eq!(
            self.access(MmioAccess::write(offset, 4, value.into())),
            MmioResult::Written
        );
    }

    /// Linux's pl011_startup, roughly: FIFOs on, RX at 1/2, enabled, RX and RT unmasked.
    fn linux_startup() -> Self {
        let mut t = Self::new();
        t.wr(IMSC, 0);
        t.wr(ICR, 0xffff);
        t.wr(IBRD, 13);
        t.wr(FBRD, 1);
        t.wr(LCR_H, 0x70); // 8N1, FEN
        t.wr(IFLS, 0x12);
        t.wr(CR, CR_UARTEN | CR_TXE | CR_RXE);
        t.wr(ICR, INT_RX | INT_RT);
        while t.rd(FR) & FR_RXFE == 0 {
            t.rd(DR);
        }
        t.wr(IMSC, INT_RX | INT_RT);
        t
    }

    /// Linux's pl011_fifo_to_tty: read DR until RXFE.
    fn drain(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        while self.rd(FR) & FR_RXFE == 0 {
            let dr = self.rd(DR);
            assert_eq!(dr & !0xff, 0, "error bits set");
            got.push(dr as u8);
        }
        got
    }
}

#[test]
fn id_registers() {
    let mut t = Uart::new();
    let ids: Vec<u32> = (0..8).map(|i| t.rd(0xfe0 + 4 * i)).collect();
    assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    t.wr(0xfe0, 0xff);
    t.wr(0xffc, 0);
    assert_eq!(t.rd(0xfe0), 0x11);
    assert_eq!(t.rd(0xffc), 0xb1);
    // Byte reads (as an ID probe may do) see the same values.
    assert_eq!(t.access(MmioAccess::read(0xff8, 1)), MmioResult::Read(0x05));
}

#[test]
fn reset_state() {
    let mut t = Uart::new();
    assert_eq!(t.rd(FR), 0x90);
    assert_eq!(t.rd(CR), 0x300);
    assert_eq!(t.rd(IFLS), 0x12);
    for reg in [RSR, ILPR, IBRD, FBRD, LCR_H, IMSC, RIS, MIS, ICR, DMACR, DR] {
        assert_eq!(t.rd(reg), 0, "register {reg:#x}");
    }
    assert!(!t.u.irq_level());
    assert_eq!(t.u.rx_space(), 1);
    let d = VPl011::default();
    assert_eq!(d.rx_space(), 1);
}

#[test]
fn plain_registers_hold_their_implemented_bits() {
    let mut t = Uart::new();
    for (reg, written, read) in [
        (ILPR, 0xffff_ffff, 0xff),
        (IBRD, 0xffff_ffff, 0xffff),
        (FBRD, 0xffff_ffff, 0x3f),
        (LCR_H, 0xffff_ffef, 0xef),
        (IFLS, 0xffff_ffff, 0x3f),
        (IMSC, 0xffff_ffff, 0x7ff),
        (DMACR, 0xffff_ffff, 0x7),
        (CR, 0xffff_ff7f, 0xff07),
    ] {
        t.wr(reg, written);
        assert_eq!(t.rd(reg), read, "register {reg:#x}");
    }
    // Read-only and unknown registers ignore writes and read as zero.
    for reg in [
        FR, RIS, MIS, 0x080, 0x084, 0x088, 0x08c, 0x04c, 0x100, 0xfdc,
    ] {
        t.wr(reg, 0xffff_ffff);
    }
    assert_eq!(t.rd(FR), 0x90);
    for reg in [0x080, 0x084, 0x088, 0x08c, 0x04c, 0x100, 0xfdc] {
        assert_eq!(t.rd(reg), 0, "register {reg:#x}");
    }
}

#[test]
fn transmit_collects_bytes_even_before_enabling() {
    let mut t = Uart::new();
    // earlycon: UART not enabled, byte and halfword stores.
    assert_eq!(
        t.access(MmioAccess::write(DR, 1, u64::from(b'h'))),
        MmioResult::Written
    );
    assert_eq!(
        t.access(MmioAccess::write(DR, 2, 0x0569)),
        MmioResult::Written
    );
    t.wr(CR, 0);
    t.wr(DR, 0x1234_5621);
    assert_eq!(t.out, b"hi!");
    assert_eq!(t.rd(FR), 0x90, "TX never busy or full");
    assert_eq!(t.rd(RIS), INT_TX);
    assert_eq!(t.rd(DR), 0, "transmitting does not feed the receiver");
}

#[test]
fn loopback_feeds_the_receiver() {
    let mut t = Uart::new();
    t.wr(CR, CR_UARTEN | CR_TXE | CR_RXE | CR_LBE);
    t.wr(DR, u32::from(b'x'));
    assert!(t.out.is_empty());
    assert_eq!(t.rd(FR), FR_TXFE | FR_RXFF);
    assert_eq!(t.rd(DR), u32::from(b'x'));
    t.wr(CR, CR_UARTEN | CR_TXE | CR_RXE);
    t.wr(DR, u32::from(b'y'));
    assert_eq!(t.out, b"y");
}

#[test]
fn receive_without_fifo_holds_one_byte() {
    let mut t = Uart::new();
    assert_eq!(t.u.receive(b""), 0);
    assert_eq!(t.rd(RIS), 0);
    assert_eq!(t.u.receive(b"ab"), 1);
    assert_eq!(t.u.rx_space(), 0);
    assert_eq!(t.u.receive(b"c"), 0);
    assert_eq!(t.rd(FR), FR_TXFE | FR_RXFF);
    assert_eq!(t.rd(RIS), INT_RX, "trigger is one byte without FIFOs");
    assert_eq!(
        t.access(MmioAccess::read(DR, 1)),
        MmioResult::Read(u64::from(b'a'))
    );
    assert_eq!(t.rd(FR), 0x90);
    assert_eq!(t.rd(RIS), 0);
    assert_eq!(t.rd(DR), 0, "empty FIFO reads 0");
    assert_eq!(t.u.rx_space(), 1);
}

#[test]
fn receive_with_fifo_holds_32_in_order() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN);
    assert_eq!(t.u.rx_space(), 32);
    let data: Vec<u8> = (0..40).collect();
    assert_eq!(t.u.receive(&data[..10]), 10);
    assert_eq!(t.rd(DR), 0);
    assert_eq!(t.rd(DR), 1);
    assert_eq!(
        t.u.receive(&data[10..]),
        24,
        "wraps around the ring, drops the rest"
    );
    assert_eq!(t.u.rx_space(), 0);
    assert_eq!(t.rd(FR), FR_TXFE | FR_RXFF);
    assert_eq!(t.drain(), (2..34).collect::<Vec<u8>>());
    assert_eq!(t.rd(FR), 0x90);
}

#[test]
fn toggling_fen_empties_the_fifo() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN | 0x60);
    t.u.receive(b"abc");
    t.wr(LCR_H, LCR_H_FEN | 0x60 | 0x02); // same FEN: kept
    assert_eq!(t.u.rx_space(), 29);
    t.wr(LCR_H, 0x60);
    assert_eq!(t.rd(FR), 0x90);
    assert_eq!(t.rd(RIS) & (INT_RX | INT_RT), 0);
    assert_eq!(t.u.rx_space(), 1);
}

#[test]
fn rx_trigger_levels_follow_ifls() {
    for (rxiflsel, trigger) in [(0, 4), (1, 8), (2, 16), (3, 24), (4, 28), (5, 16), (7, 16)] {
        let mut t = Uart::new();
        t.wr(LCR_H, LCR_H_FEN);
        t.wr(IFLS, (rxiflsel << 3) | 0x2);
        for level in 1..=32 {
            assert_eq!(t.u.receive(b"z"), 1);
            let ris = t.rd(RIS);
            if level < trigger {
                assert_eq!(ris, INT_RT, "IFLS {rxiflsel} level {level}");
            } else {
                assert_eq!(ris & INT_RX, INT_RX, "IFLS {rxiflsel} level {level}");
            }
        }
        // Reading below the trigger drops RXIS and leaves a timeout for the rest.
        for _ in 0..=32 - trigger {
            t.rd(DR);
        }
        assert_eq!(t.rd(RIS), INT_RT, "IFLS {rxiflsel}");
    }
}

#[test]
fn rtis_for_partial_fifo_until_empty() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN);
    t.u.receive(b"ls\r");
    assert_eq!(t.rd(RIS), INT_RT);
    t.rd(DR);
    t.rd(DR);
    assert_eq!(t.rd(RIS), INT_RT);
    t.rd(DR);
    assert_eq!(t.rd(RIS), 0, "cleared when the FIFO empties");
}

#[test]
fn changing_the_trigger_reevaluates_rx() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN);
    t.u.receive(&[7; 6]);
    assert_eq!(t.rd(RIS), INT_RT);
    t.wr(IFLS, 0); // 1/8 = 4
    assert_eq!(t.rd(RIS) & INT_RX, INT_RX);
    t.wr(IFLS, 0x12); // 1/2 = 16
    assert_eq!(t.rd(RIS), INT_RT);
}

#[test]
fn icr_clears_until_the_next_change() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN);
    t.wr(DR, u32::from(b'a'));
    t.u.receive(&[1]);
    assert_eq!(t.rd(RIS), INT_TX | INT_RT);
    t.u.receive(&[1; 19]);
    assert_eq!(
        t.rd(RIS),
        INT_RX | INT_TX | INT_RT,
        "RTIS stays until drained or cleared"
    );
    t.wr(ICR, INT_TX);
    assert_eq!(t.rd(RIS), INT_RX | INT_RT);
    t.wr(ICR, INT_RX | INT_RT);
    assert_eq!(t.rd(RIS), 0);
    assert_eq!(t.rd(ICR), 0, "write-only");
    t.u.receive(&[1]);
    assert_eq!(t.rd(RIS), INT_RX);
    t.wr(ICR, 0xffff);
    assert_eq!(t.rd(RIS), 0);
    t.wr(DR, u32::from(b'b'));
    assert_eq!(t.rd(RIS), INT_TX, "set again after a transmit");
}

#[test]
fn txis_on_enabling_the_transmitter() {
    let mut t = Uart::new();
    t.wr(CR, CR_TXE);
    assert_eq!(t.rd(RIS), 0);
    t.wr(CR, CR_UARTEN | CR_TXE);
    assert_eq!(t.rd(RIS), INT_TX);
    t.wr(ICR, INT_TX);
    t.wr(CR, CR_UARTEN | CR_TXE | CR_RXE); // still on: no new edge
    assert_eq!(t.rd(RIS), 0);
    t.wr(CR, CR_UARTEN);
    t.wr(CR, CR_UARTEN | CR_TXE);
    assert_eq!(t.rd(RIS), INT_TX);
}

#[test]
fn mis_is_ris_and_imsc() {
    let mut t = Uart::new();
    t.wr(LCR_H, LCR_H_FEN);
    t.wr(DR, 0);
    t.u.receive(b"q");
    let ris = t.rd(RIS);
    assert_eq!(ris, INT_TX | INT_RT);
    for imsc in [0, INT_RX, INT_TX, INT_RT, INT_RX | INT_RT, 0x7ff, 0x40f] {
        t.wr(IMSC, imsc);
        assert_eq!(t.rd(MIS), ris & imsc);
        assert_eq!(t.u.irq_level(), ris & imsc != 0);
    }
}

#[test]
fn linux_like_session() {
    let mut t = Uart::linux_startup();
    assert!(!t.u.irq_level(), "TXIS pending but masked");

    // pl011_start_tx_pio: write until TXFF (never), then stop_tx; console writes the same way.
    for &b in b"login: " {
        assert_eq!(t.rd(FR) & (1 << 5), 0);
        t.wr(DR, b.into());
    }
    assert!(!t.u.irq_level());

    // A TX interrupt-driven burst: unmask TXIM, the handler writes half a FIFO per pass and
    // masks TXIM when its buffer is empty.
    let mut pending: &[u8] = b"Welcome to Wurley!\r\n";
    t.wr(IMSC, INT_RX | INT_RT | INT_TX);
    let mut passes = 0;
    while t.u.irq_level() {
        passes += 1;
        assert!(passes < 10, "TX interrupt storm");
        let mis = t.rd(MIS);
        assert_eq!(mis, INT_TX);
        let n = pending.len().min(8);
        for &b in &pending[..n] {
            t.wr(DR, b.into());
        }
        pending = &pending[n..];
        if pending.is_empty() {
            t.wr(IMSC, INT_RX | INT_RT);
        }
    }
    assert_eq!(passes, 3);
    assert_eq!(t.out, b"login: Welcome to Wurley!\r\n");

    // A typed line arrives in pieces; each raises the line, the handler drains, the line drops.
    let mut input = Vec::new();
    for chunk in [&b"r"[..], b"oot", b"\r"] {
        assert!(!t.u.irq_level());
        assert_eq!(t.u.receive(chunk), chunk.len());
        assert!(t.u.irq_level());
        // pl011_int: ICR everything but TX/RT/RX, then read until RXFE, then re-check.
        let mis = t.rd(MIS);
        assert_eq!(mis, INT_RT);
        t.wr(ICR, mis & !(INT_TX | INT_RT | INT_RX));
        input.extend(t.drain());
        assert_eq!(t.rd(MIS), 0);
    }
    assert_eq!(input, b"root\r");

    // A paste larger than the trigger: RXIS, then drained in one pass.
    let paste: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
    let n = t.u.receive(&paste);
    assert_eq!(n, 32);
    assert_eq!(t.rd(MIS), INT_RX);
    assert_eq!(t.drain(), paste[..32]);
    assert!(!t.u.irq_level());
    assert_eq!(t.u.receive(&paste[n..]), 8);
    assert_eq!(t.rd(MIS), INT_RT);
    assert_eq!(t.drain(), paste[32..]);
    assert!(!t.u.irq_level());

    // pl011_shutdown: mask and clear everything, FIFOs off.
    t.wr(IMSC, 0);
    t.wr(ICR, 0xffff);
    t.wr(LCR_H, 0x60);
    assert!(!t.u.irq_level());
    assert_eq!(t.rd(FR), 0x90);
}

#[test]
fn bad_sizes_and_alignment_fault() {
    let mut t = Uart::new();
    for (offset, size) in [
        (DR, 8),
        (CR, 8),
        (FR, 3),
        (FR, 0),
        (DR + 1, 1),
        (CR + 2, 2),
        (IMSC + 1, 4),
    ] {
        assert_eq!(t.access(MmioAccess::read(offset, size)), MmioResult::Fault);
        assert_eq!(
            t.access(MmioAccess::write(offset, size, 0x41)),
            MmioResult::Fault
        );
    }
    assert_eq!(
        t.access(MmioAccess::read(WINDOW_SIZE, 4)),
        MmioResult::Fault
    );
    assert_eq!(
        t.access(MmioAccess::write(u64::MAX - 3, 4, 0)),
        MmioResult::Fault
    );
    assert!(t.out.is_empty());
    for size in [1, 2, 4] {
        assert!(matches!(
            t.access(MmioAccess::read(FR, size)),
            MmioResult::Read(0x90)
        ));
    }
}

#[test]
fn narrow_writes_are_zero_extended() {
    let mut t = Uart::new();
    t.wr(IMSC, 0x7ff);
    assert_eq!(
        t.access(MmioAccess::write(IMSC, 1, 0x1_0050)),
        MmioResult::Written
    );
    assert_eq!(t.rd(IMSC), 0x50);
    assert_eq!(
        t.access(MmioAccess::write(CR, 2, 0xdead_0301)),
        MmioResult::Written
    );
    assert_eq!(t.rd(CR), 0x301);
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_accesses_never_panic_and_keep_invariants() {
    let mut t = Uart::new();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let r = rng.next();
        let offset = match r % 4 {
            0 => (r >> 8) % 0x50,
            1 => 0xfc0 + (r >> 8) % 0x40,
            2 => (r >> 8) % 0x2000,
            _ => r >> 8,
        };
        let size = [1, 2, 4, 8, 3, 0][(r >> 2) as usize % 6];
        if r & (1 << 62) != 0 {
            let len = (rng.next() % 40) as usize;
            let accepted = t.u.receive(&[0x55; 40][..len]);
            assert!(accepted <= len);
        } else if r & (1 << 63) != 0 {
            t.access(MmioAccess::write(offset, size, rng.next()));
        } else if let MmioResult::Read(v) = t.access(MmioAccess::read(offset, size)) {
            assert!(v <= u64::from(u32::MAX));
        }
        let u = &t.u;
        assert!(u.rx_len <= u.rx_depth());
        assert_eq!(u.ris & !(INT_RX | INT_TX | INT_RT), 0);
        assert_eq!(u.rx_len == 0, u.flags() & FR_RXFE != 0);
        if u.rx_len == 0 {
            assert_eq!(u.ris & (INT_RX | INT_RT), 0);
        }
        assert_eq!(u.irq_level(), u.ris & u.imsc != 0);
    }
}

//! The guest's virtual console: a register model of an Arm PL011 UART (PrimeCell UART r1p5)
//! as QEMU's `virt` machine presents it at IPA `0x0900_0000` (4 KiB window).
//!
//! A pure model: no hardware, no timing. [`VPl011::access`] emulates one trapped guest access,
//! handing transmitted bytes to the caller; [`VPl011::receive`] queues host input;
//! [`VPl011::irq_level`] is the level of the combined interrupt line (UARTINTR).
//!
//! # The model
//!
//! **Accesses.** 8, 16 or 32 bits at a 4-byte-aligned offset inside the window (Linux uses
//! 32-bit accesses, earlycon 8, 16 or 32). Anything else (64-bit, misaligned, beyond 4 KiB)
//! is [`MmioResult::Fault`]. A narrow store writes its value zero-extended, as QEMU does;
//! a narrow load returns the whole register (the caller truncates). Unknown offsets,
//! including the test registers ITCR/ITIP/ITOP/TDR, read as zero and ignore writes; so do
//! stores to the read-only FR, RIS, MIS and ID registers and loads of the write-only ICR.
//!
//! **Transmit.** The transmitter completes instantly: every store to DR hands its low byte to
//! the caller, whether or not UARTEN and TXE are set (earlycon writes before enabling; QEMU
//! only warns). The TX FIFO is therefore always empty: FR reads TXFE = 1, TXFF = 0, BUSY = 0.
//! In loopback (CR.LBE) the byte goes to the receive FIFO instead of the caller.
//!
//! **Receive.** A FIFO of 32 entries while LCR_H.FEN = 1, a one-entry holding register while
//! FEN = 0; toggling FEN empties it (as QEMU does). [`VPl011::receive`] accepts bytes while
//! there is room and drops the rest (no overrun error: the caller holds back what did not fit,
//! see [`VPl011::rx_space`]), whether or not the receiver is enabled. A DR load pops the oldest
//! byte with error bits 0; an empty FIFO reads 0. RSR/ECR read 0 and writes are ignored.
//! FR reports RXFE and RXFF from the fill level. The modem inputs CTS, DSR, DCD and RI read 0,
//! as on QEMU (Linux's console sets CLOCAL and the driver uses hardware CTS flow control, so
//! neither waits on them): reset FR is `0x90`.
//!
//! **Interrupts.** Only RXIS (bit 4), TXIS (bit 5) and RTIS (bit 6) are ever raised; the modem
//! and error sources never are. MIS = RIS & IMSC and UARTINTR = MIS != 0. ICR clears RIS bits.
//!
//! - *RX trigger*: with FEN = 1, IFLS.RXIFLSEL selects 1/8, 1/4, 1/2, 3/4 or 7/8 of 32 (4, 8,
//!   16, 24, 28 bytes; reserved values act as 1/2); with FEN = 0 it is 1 byte.
//! - *RXIS and RTIS* follow the FIFO: after every change of its level (host input, a DR load)
//!   and every write to IFLS or LCR_H (the trigger), an empty FIFO clears both; a level at or
//!   above the trigger sets RXIS; a non-empty level below the trigger clears RXIS and sets
//!   RTIS, standing in for the receive timeout that real hardware would raise once the line
//!   goes quiet. ICR clears them until the next such event. So input always ends in an interrupt (partial FIFOs via
//!   RTIS, which Linux unmasks alongside RXIS), and Linux's handler, which reads DR until RXFE,
//!   leaves both clear: no storm.
//! - *TXIS* means "TX FIFO at or below its trigger", which is always true here. As in QEMU it is
//!   set by every DR store (the store clears it, the instant drain sets it again), and also
//!   when the transmitter becomes enabled (UARTEN and TXE both set by a CR store); only ICR
//!   clears it. Linux writes DR until TXFF (never set) and masks TXIM once its buffer is empty,
//!   so output never stalls, and a TXIM it unmasks is serviced at once (up to half a FIFO per
//!   pass) until the buffer drains and it masks TXIM again: no storm.
//!
//! **Identity.** PeriphID0..3 = `11 10 14 00` and PCellID0..3 = `0D F0 05 B1`, the values
//! QEMU reports. (Linux reads the revision field, 1, as a 16-byte FIFO and so moves at most
//! 8 bytes per TX interrupt; the model's deeper FIFO is invisible to it.)
//!
//! **Reset.** CR = `0x300` (TXE | RXE, UARTEN clear), IFLS = `0x12`, everything else 0.

use crate::vm::mmio::{MmioAccess, MmioResult};

#[cfg(test)]
mod tests;

/// Size of the UART's MMIO window.
pub const WINDOW_SIZE: u64 = 0x1000;
/// Receive FIFO depth with FIFOs enabled (LCR_H.FEN = 1).
pub const FIFO_DEPTH: usize = 32;

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const PERIPH_ID: u64 = 0xfe0;

/// PeriphID0..3 then PCellID0..3, at 0xFE0..0xFFC.
const ID: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;

const LCR_H_FEN: u32 = 1 << 4;

const CR_UARTEN: u32 = 1 << 0;
const CR_LBE: u32 = 1 << 7;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
/// Implemented CR bits (bits 3..6 are reserved).
const CR_MASK: u32 = 0xff87;

const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
/// All interrupt bits (RIMIS .. OEMIS).
const INT_MASK: u32 = 0x7ff;

/// A virtual PL011 UART. See the [module documentation](self) for the exact model.
#[derive(Clone, Debug)]
pub struct VPl011 {
    rx: [u8; FIFO_DEPTH],
    rx_head: usize,
    rx_len: usize,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Default for VPl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl VPl011 {
    /// A UART in its reset state.
    pub const fn new() -> Self {
        Self {
            rx: [0; FIFO_DEPTH],
            rx_head: 0,
            rx_len: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_TXE | CR_RXE,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    /// Emulate one access; bytes the guest transmits are appended to `tx` (the caller forwards
    /// them to the console).
    pub fn access(&mut self, access: MmioAccess, tx: &mut impl FnMut(u8)) -> MmioResult {
        let mask: u64 = match access.size {
            1 => 0xff,
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => return MmioResult::Fault,
        };
        if access.offset >= WINDOW_SIZE || !access.offset.is_multiple_of(4) {
            return MmioResult::Fault;
        }
        match access.write {
            None => MmioResult::Read(u64::from(self.read(access.offset))),
            Some(value) => {
                // Lossless: masked to at most 32 bits.
                self.write(access.offset, (value & mask) as u32, tx);
                MmioResult::Written
            }
        }
    }

    /// Host input for the guest: push bytes into the receive FIFO (drop when full; return how
    /// many were accepted).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let accepted = bytes.len().min(self.rx_space());
        for &byte in &bytes[..accepted] {
            self.rx[(self.rx_head + self.rx_len) % FIFO_DEPTH] = byte;
            self.rx_len += 1;
        }
        if accepted > 0 {
            self.settle_rx();
        }
        accepted
    }

    /// Level of the UART's combined interrupt line (UARTINTR): (RIS & IMSC) != 0.
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Free entries in the receive FIFO (its depth is 32 with FIFOs enabled, else 1).
    pub fn rx_space(&self) -> usize {
        self.rx_depth() - self.rx_len
    }

    fn fifo_enabled(&self) -> bool {
        self.lcr_h & LCR_H_FEN != 0
    }

    fn rx_depth(&self) -> usize {
        if self.fifo_enabled() { FIFO_DEPTH } else { 1 }
    }

    /// The RX FIFO level at which RXIS is raised.
    fn rx_trigger(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        match (self.ifls >> 3) & 7 {
            0 => FIFO_DEPTH / 8,
            1 => FIFO_DEPTH / 4,
            3 => FIFO_DEPTH * 3 / 4,
            4 => FIFO_DEPTH * 7 / 8,
            _ => FIFO_DEPTH / 2,
        }
    }

    /// Recompute RXIS and RTIS after the RX level or trigger changed.
    fn settle_rx(&mut self) {
        if self.rx_len == 0 {
            self.ris &= !(INT_RX | INT_RT);
        } else if self.rx_len >= self.rx_trigger() {
            self.ris |= INT_RX;
        } else {
            self.ris = (self.ris & !INT_RX) | INT_RT;
        }
    }

    fn pop_rx(&mut self) -> u32 {
        if self.rx_len == 0 {
            return 0;
        }
        let byte = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % FIFO_DEPTH;
        self.rx_len -= 1;
        self.settle_rx();
        u32::from(byte)
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.rx_len == 0 {
            fr |= FR_RXFE;
        }
        if self.rx_len == self.rx_depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            DR => self.pop_rx(),
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            DMACR => self.dmacr,
            PERIPH_ID..WINDOW_SIZE => ID
                .get(((offset - PERIPH_ID) / 4) as usize)
                .map_or(0, |&id| id),
            // No receive errors are ever recorded.
            RSR => 0,
            // ICR (write-only), test and unknown registers.
            _ => 0,
        }
    }

    fn write(&mut self, offset: u64, value: u32, tx: &mut impl FnMut(u8)) {
        match offset {
            DR => self.transmit(value as u8, tx),
            ILPR => self.ilpr = value & 0xff,
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => {
                let value = value & 0xff;
                if (self.lcr_h ^ value) & LCR_H_FEN != 0 {
                    self.rx_head = 0;
                    self.rx_len = 0;
                }
                self.lcr_h = value;
                self.settle_rx();
            }
            CR => {
                let tx_on = |cr: u32| cr & (CR_UARTEN | CR_TXE) == CR_UARTEN | CR_TXE;
                let value = value & CR_MASK;
                if tx_on(value) && !tx_on(self.cr) {
                    self.ris |= INT_TX;
                }
                self.cr = value;
            }
            IFLS => {
                self.ifls = value & 0x3f;
                self.settle_rx();
            }
            IMSC => self.imsc = value & INT_MASK,
            ICR => self.ris &= !(value & INT_MASK),
            DMACR => self.dmacr = value & 0x7,
            // ECR: there are no errors to clear.
            RSR => {}
            // Read-only, test and unknown registers.
            _ => {}
        }
    }

    fn transmit(&mut self, byte: u8, tx: &mut impl FnMut(u8)) {
        if self.cr & CR_LBE != 0 {
            self.receive(&[byte]);
        } else {
            tx(byte);
        }
        self.ris |= INT_TX;
    }
}

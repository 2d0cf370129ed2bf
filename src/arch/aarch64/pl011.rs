//! The PL011 UART that the device tree names as the console: transmit, and receive for input.
//!
//! Firmware has already set the baud rate; Wurley only moves characters. The handle is `Copy`:
//! concurrent writers can interleave characters but cannot break memory safety, so the emergency
//! paths (exception dumps, panics) write without taking the console lock.

use core::ptr::NonNull;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    IMSC [
        /// Receive timeout interrupt.
        RTIM OFFSET(6) NUMBITS(1) [],
        /// Receive interrupt.
        RXIM OFFSET(4) NUMBITS(1) []
    ],
    FR [
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ]
];

register_structs! {
    Pl011Regs {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x038 => imsc: ReadWrite<u32, IMSC::Register>),
        (0x03c => _reserved2),
        (0x044 => icr: ReadWrite<u32>),
        (0x048 => @END),
    }
}

/// A PL011 transmitter.
#[derive(Clone, Copy, Debug)]
pub struct Pl011 {
    regs: NonNull<Pl011Regs>,
}

// SAFETY: the registers are MMIO; accesses from several CPUs are individually atomic 32-bit
// device accesses and cannot violate memory safety.
unsafe impl Send for Pl011 {}
// SAFETY: as above; `&Pl011` only allows register reads and writes.
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` is the physical (= virtual) address of a PL011, mapped Device-nGnRE in the EL2
    /// stage-1 tables (or the MMU is off), and stays mapped for the life of the handle.
    pub unsafe fn new(base: u64) -> Option<Self> {
        NonNull::new(base as *mut Pl011Regs).map(|regs| Self { regs })
    }

    fn regs(&self) -> &Pl011Regs {
        // SAFETY: `new`'s caller promised a mapped PL011 at this address.
        unsafe { self.regs.as_ref() }
    }

    /// Write one byte, waiting while the FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        let regs = self.regs();
        while regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        regs.dr.set(u32::from(byte));
    }

    /// Take one received byte, if any.
    pub fn read_byte(&self) -> Option<u8> {
        let regs = self.regs();
        if regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some((regs.dr.get() & 0xff) as u8)
        }
    }

    /// Interrupt on received data (RX and receive timeout), for console input.
    pub fn enable_rx_interrupt(&self) {
        let regs = self.regs();
        regs.icr.set(0x7ff);
        regs.imsc.write(IMSC::RXIM::SET + IMSC::RTIM::SET);
    }

    /// Write a string, turning `\n` into `\r\n`.
    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Pl011::write_str(self, s);
        Ok(())
    }
}

//! The device-tree reader lives in the shared `wurley-manifest` crate (the resource manager
//! reads the bundle with it too); these are the hypervisor's tests of it on its platform blobs.

pub(crate) use wurley_manifest::dt::with_tree;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::platform::DtError;
    use alloc::vec;

    fn root_props(dtb: &[u8]) -> Result<usize, DtError> {
        with_tree(dtb, |t| Ok(t.nodes().count()))
    }

    #[test]
    fn unaligned_and_padded_blobs_parse_the_same() {
        let expect = root_props(VIRT_SMP2).unwrap();
        // Shift by one byte: the blob is copied to an aligned buffer.
        let mut shifted = vec![0u8; VIRT_SMP2.len() + 1];
        shifted[1..].copy_from_slice(VIRT_SMP2);
        assert_eq!(root_props(&shifted[1..]).unwrap(), expect);
        // QEMU hands guests a blob whose totalsize leaves free space after the strings.
        let mut padded = VIRT_SMP2.to_vec();
        padded.resize(1 << 20, 0);
        padded[4..8].copy_from_slice(&(1u32 << 20).to_be_bytes());
        assert_eq!(root_props(&padded).unwrap(), expect);
        assert_eq!(
            root_props(&padded[1..]).unwrap_err().problem,
            "not a flattened device tree (bad magic)"
        );
    }

    #[test]
    fn truncated_and_foreign_blobs_are_errors() {
        let half = &VIRT_SMP2[..VIRT_SMP2.len() / 2];
        assert_eq!(
            root_props(half).unwrap_err().problem,
            "blob shorter than the header's totalsize"
        );
        assert!(root_props(&[]).is_err());
        assert!(root_props(b"\xd0\x0d\xfe\xed").is_err());
        assert!(root_props(&VIRT_SMP2[8..]).is_err());
    }

    #[test]
    fn memreserve_entries_are_read() {
        let got = with_tree(SOC, |t| Ok(t.memreserve.clone())).unwrap();
        assert_eq!(got, [(0x8000_0000, 0x1_0000)]);
        assert!(with_tree(VIRT_SMP2, |t| Ok(t.memreserve.is_empty())).unwrap());
    }

    #[test]
    fn truncating_anywhere_never_panics() {
        for blob in [SOC, VIRT_SMP2] {
            for cut in 0..blob.len() {
                let mut buf = blob[..cut].to_vec();
                if let Some(total) = buf.get_mut(4..8) {
                    total.copy_from_slice(&(cut as u32).to_be_bytes());
                }
                assert!(super::super::Platform::parse(&buf).is_err());
            }
        }
    }

    #[test]
    fn corrupting_any_byte_never_panics() {
        for blob in [SOC, VIRT_SMP2] {
            let mut buf = blob.to_vec();
            for i in 0..buf.len() {
                for v in [0x00, 0xff, 0x03] {
                    let old = core::mem::replace(&mut buf[i], v);
                    let _ = super::super::Platform::parse(&buf);
                    buf[i] = old;
                }
            }
        }
    }
}

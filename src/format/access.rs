//! Random access to an input's bytes, for the readers that also run on part of an input.
//!
//! A file in memory (a map, a buffer) never misses; a remote file's image misses the ranges it
//! has not fetched. A reader written against [`RandomAccess`] runs unchanged on both: when it
//! needs bytes that are not there it returns [`Missing`], the caller fetches them and runs it
//! again. So a format is parsed in one place, and the remote scan needs no copy of it.

/// Bytes of an input by range.
pub trait RandomAccess {
    /// Size of the input.
    fn size(&self) -> u64;
    /// The bytes of `[start, end)`, clipped to the size (so possibly fewer), or the first part
    /// of the range that is not available.
    fn get(&self, start: u64, end: u64) -> Result<&[u8], Missing>;
}

/// A range of the input a reader needs and does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// First byte.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
}

impl RandomAccess for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn get(&self, start: u64, end: u64) -> Result<&[u8], Missing> {
        let end = end.min(self.len() as u64);
        let start = start.min(end);
        Ok(&self[start as usize..end as usize])
    }
}

/// Little-endian `u16` at `at` of `b`, if `b` is long enough.
pub fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Where `needle` first occurs in `b` at or after `from`.
pub fn find_from(b: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(b.get(from..)?, needle).map(|p| p + from)
}

/// Little-endian `u32` at `at` of `b`, if `b` is long enough.
pub fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Little-endian `u64` at `at` of `b`, if `b` is long enough.
pub fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Part of an input, for tests: the bytes of `have` only, as a remote image holds them.
#[cfg(test)]
pub(crate) struct Partial<'a> {
    pub data: &'a [u8],
    pub have: (u64, u64),
}

#[cfg(test)]
impl RandomAccess for Partial<'_> {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn get(&self, start: u64, end: u64) -> Result<&[u8], Missing> {
        let end = end.min(self.size());
        let start = start.min(end);
        if start < end && (start < self.have.0 || end > self.have.1) {
            return Err(Missing { start, end });
        }
        Ok(&self.data[start as usize..end as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_never_misses_and_clips_to_its_size() {
        let b: &[u8] = &[1, 2, 3, 4, 5];
        assert_eq!(RandomAccess::get(b, 1, 3), Ok(&[2u8, 3][..]));
        assert_eq!(RandomAccess::get(b, 3, 100), Ok(&[4u8, 5][..]));
        assert_eq!(RandomAccess::get(b, 7, 9), Ok(&[][..]));
        assert_eq!(le_u32(b, 1), Some(0x0504_0302));
        assert_eq!(le_u32(b, 2), None);
        assert_eq!(le_u16(b, usize::MAX), None);
    }
}

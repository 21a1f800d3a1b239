//! The filter pipeline message (spec IV.A.2.l, versions 1 and 2) and the filters extraction
//! undoes: deflate (1), shuffle (2) and fletcher32 (3). Any other filter is named and refused.
//!
//! Every filter's output is bounded: inflation stops at the size the chunk must have, and a
//! chunk whose filters do not give exactly that size is an error (the library would pad or cut).

use super::{Cur, Hdf5Error, Result};

/// Deflate (zlib stream).
pub const DEFLATE: u16 = 1;
/// Byte shuffle.
pub const SHUFFLE: u16 = 2;
/// Fletcher-32 checksum appended to the chunk.
pub const FLETCHER32: u16 = 3;
/// Most filters in one pipeline (the library's own limit, H5Z_MAX_NFILTERS).
const MAX_FILTERS: u8 = 32;

/// One filter of a dataset's pipeline, in the order they were applied when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Filter id (1 deflate, 2 shuffle, 3 fletcher32, 4 szip, 32000 lzf, …).
    pub id: u16,
    /// Name as stored (often empty for the library's own filters).
    pub name: String,
    /// Flags (bit 0: optional).
    pub flags: u16,
    /// Client data values.
    pub params: Vec<u32>,
}

impl Filter {
    /// A name for messages.
    pub fn describe(&self) -> String {
        let known = match self.id {
            DEFLATE => "deflate",
            SHUFFLE => "shuffle",
            FLETCHER32 => "fletcher32",
            4 => "szip",
            5 => "nbit",
            6 => "scaleoffset",
            307 => "bzip2",
            32000 => "lzf",
            32001 => "blosc",
            32004 => "lz4",
            32008 => "bitshuffle",
            32015 => "zstd",
            32017 => "sz",
            32026 => "blosc2",
            _ if !self.name.is_empty() => return format!("{} ({})", self.name, self.id),
            _ => return format!("filter {}", self.id),
        };
        format!("{known} ({})", self.id)
    }

    /// Whether extraction can undo it.
    pub fn supported(&self) -> bool {
        matches!(self.id, DEFLATE | SHUFFLE | FLETCHER32)
    }
}

/// A filter pipeline message.
pub(super) fn pipeline(c: &mut Cur<'_>) -> Result<Vec<Filter>> {
    let version = c.u8()?;
    let count = c.u8()?;
    if count > MAX_FILTERS {
        return Err(Hdf5Error::Invalid(format!("a pipeline of {count} filters")));
    }
    match version {
        1 => c.skip(6)?, // reserved
        2 => {}
        v => {
            return Err(Hdf5Error::Invalid(format!(
                "filter pipeline message version {v}"
            )))
        }
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let id = c.u16()?;
        // Version 2 leaves the name length out for the library's own filters (ids below 256).
        let name_len = if version == 1 || id >= 256 {
            c.u16()? as usize
        } else {
            0
        };
        let flags = c.u16()?;
        let values = c.u16()? as usize;
        // Version 1 pads the name to a multiple of eight bytes.
        let stored = if version == 1 {
            name_len.div_ceil(8) * 8
        } else {
            name_len
        };
        let raw = c.bytes(stored)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut params = Vec::with_capacity(values.min(c.left() / 4));
        for _ in 0..values {
            params.push(c.u32()?);
        }
        if version == 1 && values % 2 == 1 {
            c.skip(4)?; // padding to a multiple of eight bytes
        }
        out.push(Filter {
            id,
            name,
            flags,
            params,
        });
    }
    Ok(out)
}

/// Undo `filters` (skipping those whose bit is set in `mask`) on one stored chunk, which must
/// then be exactly `expected` bytes. `elem_size` is the shuffle's default element size.
pub(super) fn decode(
    filters: &[Filter],
    mask: u32,
    raw: &[u8],
    expected: usize,
    elem_size: usize,
) -> Result<Vec<u8>> {
    let mut buf = raw.to_vec();
    for (i, f) in filters.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        buf = match f.id {
            DEFLATE => {
                // What deflate wrote is the chunk plus the checksums of fletcher32 filters
                // applied before it; never inflate past that.
                let checksums = filters[..i]
                    .iter()
                    .enumerate()
                    .filter(|(j, g)| g.id == FLETCHER32 && mask & (1 << j) == 0)
                    .count();
                inflate(&buf, expected.saturating_add(4 * checksums))?
            }
            SHUFFLE => {
                let size = match f.params.first() {
                    Some(&s) if s > 0 => s as usize,
                    _ => elem_size,
                };
                unshuffle(&buf, size)
            }
            FLETCHER32 => {
                let n = buf.len().checked_sub(4).ok_or_else(|| {
                    Hdf5Error::Invalid("a fletcher32 chunk shorter than its checksum".into())
                })?;
                let stored = u32::from_le_bytes([buf[n], buf[n + 1], buf[n + 2], buf[n + 3]]);
                let sum = fletcher32(&buf[..n]);
                // HDF5 1.6.0 and 1.6.1 wrote the checksum with the bytes of each half swapped;
                // the library still accepts that order.
                let swapped = ((sum & 0x00ff_00ff) << 8) | ((sum >> 8) & 0x00ff_00ff);
                if stored != sum && stored != swapped {
                    return Err(Hdf5Error::Invalid(format!(
                        "fletcher32 checksum mismatch: stored {stored:#010x}, computed {sum:#010x}"
                    )));
                }
                buf.truncate(n);
                buf
            }
            _ => {
                return Err(Hdf5Error::Unsupported(format!(
                    "the {} filter",
                    f.describe()
                )))
            }
        };
    }
    if buf.len() != expected {
        return Err(Hdf5Error::Invalid(format!(
            "a chunk decodes to {} bytes, not its {expected}",
            buf.len()
        )));
    }
    Ok(buf)
}

/// Inflate a zlib stream to at most `cap` bytes; a stream that would give more is an error.
fn inflate(input: &[u8], cap: usize) -> Result<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(true);
    // One byte of room past the cap tells "exactly cap" from "more than cap".
    let mut out = Vec::with_capacity(cap.saturating_add(1));
    loop {
        let before = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(
                &input[(d.total_in() as usize).min(input.len())..],
                &mut out,
                FlushDecompress::Finish,
            )
            .map_err(|e| Hdf5Error::Invalid(format!("a deflate chunk is corrupt: {e}")))?;
        if out.len() > cap {
            return Err(Hdf5Error::Invalid(format!(
                "a deflate chunk inflates past its {cap} bytes"
            )));
        }
        match status {
            Status::StreamEnd => return Ok(out),
            _ if (d.total_in(), d.total_out()) == before => {
                return Err(Hdf5Error::Invalid(
                    "a deflate chunk ends before its stream does".into(),
                ))
            }
            _ => {}
        }
    }
}

/// Undo the shuffle filter: byte `b` of every element was stored together, plane by plane;
/// bytes past the last whole element were left in place.
fn unshuffle(input: &[u8], size: usize) -> Vec<u8> {
    if size <= 1 || input.len() < size {
        return input.to_vec();
    }
    let n = input.len() / size;
    let mut out = vec![0u8; input.len()];
    for (b, plane) in input[..n * size].chunks_exact(n).enumerate() {
        for (i, &x) in plane.iter().enumerate() {
            out[i * size + b] = x;
        }
    }
    out[n * size..].copy_from_slice(&input[n * size..]);
    out
}

/// HDF5's Fletcher-32 (`H5_checksum_fletcher32`): sums of big-endian 16-bit words, both sums
/// starting at 0, an odd last byte taken as a word's high byte.
pub fn fletcher32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (0u32, 0u32);
    let words = data.chunks_exact(2);
    let odd = words.remainder().first().copied();
    // 360 words is the most that can be summed before the 32-bit sums could overflow.
    let mut count = 0;
    for w in words {
        a += u32::from(u16::from_be_bytes([w[0], w[1]]));
        b += a;
        count += 1;
        if count == 360 {
            a = (a & 0xffff) + (a >> 16);
            b = (b & 0xffff) + (b >> 16);
            count = 0;
        }
    }
    if count > 0 {
        a = (a & 0xffff) + (a >> 16);
        b = (b & 0xffff) + (b >> 16);
    }
    if let Some(x) = odd {
        a += u32::from(x) << 8;
        b += a;
        a = (a & 0xffff) + (a >> 16);
        b = (b & 0xffff) + (b >> 16);
    }
    a = (a & 0xffff) + (a >> 16);
    b = (b & 0xffff) + (b >> 16);
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(id: u16) -> Filter {
        Filter {
            id,
            name: String::new(),
            flags: 0,
            params: vec![],
        }
    }

    #[test]
    fn inflation_stops_at_the_chunk_size() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).unwrap();
        let bomb = z.finish().unwrap();
        let e = decode(&[filter(DEFLATE)], 0, &bomb, 64, 4).unwrap_err();
        assert!(e.to_string().contains("inflates past"), "{e}");
        // Masked: the deflate filter is skipped, and the raw bytes are not 64 bytes.
        assert!(decode(&[filter(DEFLATE)], 1, &bomb, 64, 4).is_err());
        assert!(decode(&[filter(DEFLATE)], 0, &bomb[..bomb.len() / 2], 1 << 20, 4).is_err());
        assert_eq!(
            decode(&[filter(DEFLATE)], 0, &bomb, 1 << 20, 4)
                .unwrap()
                .len(),
            1 << 20
        );
    }

    #[test]
    fn shuffle_round_trip() {
        let data: Vec<u8> = (0..23).collect();
        // Shuffled by hand: 5 elements of 4 bytes, then 3 bytes left in place.
        let mut shuffled = Vec::new();
        for b in 0..4 {
            for i in 0..5 {
                shuffled.push(data[i * 4 + b]);
            }
        }
        shuffled.extend_from_slice(&data[20..]);
        assert_eq!(unshuffle(&shuffled, 4), data);
    }

    #[test]
    fn fletcher32_matches_the_library() {
        // Values from HDF5's H5_checksum_fletcher32 on these inputs.
        assert_eq!(fletcher32(&[1, 2]), 0x0102_0102);
        assert_eq!(fletcher32(&[1, 2, 3]), 0x0504_0402);
        let mut with = vec![0u8; 64];
        with.extend_from_slice(&fletcher32(&[0u8; 64]).to_le_bytes());
        assert_eq!(
            decode(&[filter(FLETCHER32)], 0, &with, 64, 4).unwrap(),
            [0; 64]
        );
        with[3] = 1;
        assert!(decode(&[filter(FLETCHER32)], 0, &with, 64, 4).is_err());
    }

    #[test]
    fn unknown_filters_are_named() {
        let e = decode(&[filter(32000)], 0, &[0; 8], 8, 4).unwrap_err();
        assert!(e.to_string().contains("lzf (32000)"), "{e}");
    }
}

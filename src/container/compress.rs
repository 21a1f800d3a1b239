//! Whole-file compression as joblib writes it (zlib, gzip, bz2, lzma, xz, lz4) and joblib's
//! pre-0.10 "z-file": recognise the magic, inflate as a stream under a byte budget.

use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};

/// A compression format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Raw zlib stream (RFC 1950), joblib's default (`78 …`).
    Zlib,
    /// gzip (`1F 8B`).
    Gzip,
    /// bzip2 (`BZh`).
    Bz2,
    /// Legacy LZMA-alone (`5D 00 00`).
    Lzma,
    /// xz (`FD 37 7A 58 5A 00`).
    Xz,
    /// LZ4 frame (`04 22 4D 18`).
    Lz4,
    /// joblib < 0.10 z-file: `ZF` + 19 hex/space characters + zlib.
    ZFile,
}

impl Codec {
    /// Short lower-case name (`zlib`, `gzip`, …).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Zlib => "zlib",
            Codec::Gzip => "gzip",
            Codec::Bz2 => "bz2",
            Codec::Lzma => "lzma",
            Codec::Xz => "xz",
            Codec::Lz4 => "lz4",
            Codec::ZFile => "zfile",
        }
    }
}

/// The codec whose magic `data` starts with, in joblib's detection order.
pub fn sniff(data: &[u8]) -> Option<Codec> {
    if data.starts_with(b"ZF") && data.len() >= 21 && is_zfile_header(&data[2..21]) {
        return Some(Codec::ZFile);
    }
    if is_zlib_header(data) {
        return Some(Codec::Zlib);
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        return Some(Codec::Gzip);
    }
    if data.starts_with(b"BZh") {
        return Some(Codec::Bz2);
    }
    // joblib's own test: the .lzma properties byte and the dictionary size's low byte (the next
    // byte is not 0 for small dictionaries, e.g. 0x18 for 6 KiB).
    if data.starts_with(&[0x5d, 0x00]) {
        return Some(Codec::Lzma);
    }
    if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Some(Codec::Xz);
    }
    if data.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        return Some(Codec::Lz4);
    }
    None
}

/// A zlib header as `zlib.compress` writes it (what joblib's zlib files start with): deflate
/// with a 32 KiB window (0x78), a check byte making the pair a multiple of 31, no preset
/// dictionary. zlib refuses any other pair with "incorrect header check", so a file starting with
/// `x` and anything else is not a stream a loader could read (joblib tries zlib on every file
/// starting with 0x78).
fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [0x78, flg, ..] => (0x7800 | u16::from(*flg)) % 31 == 0 && flg & 0x20 == 0,
        _ => false,
    }
}

/// `0x…` followed by spaces: the length field of a joblib z-file.
fn is_zfile_header(field: &[u8]) -> bool {
    let text = field.trim_ascii_end();
    text.len() > 2 && text.starts_with(b"0x") && text[2..].iter().all(|c| c.is_ascii_hexdigit())
}

/// Why decompression stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// More output than allowed.
    #[error("decompresses to more than {0} bytes")]
    Budget(u64),
    /// The stream is corrupt or cut off; `produced` bytes came out before the error.
    #[error("corrupt {codec} stream after {produced} bytes: {detail}")]
    Corrupt {
        /// Codec name.
        codec: &'static str,
        /// Bytes produced before the error.
        produced: u64,
        /// The decoder's message.
        detail: String,
    },
}

/// A writer that refuses to grow past its budget (asked again at each write: it may grow with
/// the input read).
struct Capped<'b> {
    out: Vec<u8>,
    budget: &'b dyn Fn() -> u64,
    over: bool,
}

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let budget = (self.budget)();
        if self.out.len() as u64 + buf.len() as u64 > budget {
            let room = budget.saturating_sub(self.out.len() as u64) as usize;
            self.out.extend_from_slice(&buf[..room.min(buf.len())]);
            self.over = true;
            return Err(io::Error::other("decompression budget exceeded"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Output of a decompression: what came out, and why it stopped early if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    /// The bytes produced (all of them, or those before the error or the budget).
    pub data: Vec<u8>,
    /// Why decompression did not reach the end of the stream.
    pub error: Option<DecompressError>,
}

/// Decompress `data` as a stream with at most `budget` bytes of output. A corrupt stream or an
/// exhausted budget is reported with the bytes produced until then: a loader reading the stream
/// would have acted on them before failing.
pub fn decompress(codec: Codec, data: &[u8], budget: u64) -> Decompressed {
    let budget = || budget;
    let mut sink = Capped {
        out: Vec::new(),
        budget: &budget,
        over: false,
    };
    let result = match codec {
        Codec::Xz => xz(data, &mut sink),
        _ => decode(codec, data, &mut sink),
    };
    finish(codec, sink, result)
}

/// [`decompress`] reading the compressed bytes from `input`, with at most `budget()` bytes of
/// output (asked at each write). Only xz input is read whole first (its chunk sizes are walked
/// before decoding: see [`xz_cut`]); the other codecs hold no more input than a read buffer.
pub fn decompress_from(
    codec: Codec,
    mut input: impl BufRead,
    budget: &dyn Fn() -> u64,
) -> Decompressed {
    let mut sink = Capped {
        out: Vec::new(),
        budget,
        over: false,
    };
    let result = match codec {
        Codec::Xz => {
            let mut data = Vec::new();
            match input.read_to_end(&mut data) {
                Ok(_) => xz(&data, &mut sink),
                Err(e) => Err(e),
            }
        }
        _ => decode(codec, input, &mut sink),
    };
    finish(codec, sink, result)
}

/// Bytes read through a reader, counted into a cell that others may look at meanwhile.
pub struct Counting<'c, R> {
    /// The reader.
    pub inner: R,
    /// Bytes read so far.
    pub count: &'c Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Decode every codec but xz from `input` into `sink`.
fn decode(codec: Codec, mut input: impl BufRead, sink: &mut Capped<'_>) -> io::Result<()> {
    match codec {
        Codec::Zlib => copy(flate2::bufread::ZlibDecoder::new(input), sink),
        Codec::Gzip => copy(flate2::bufread::MultiGzDecoder::new(input), sink),
        Codec::Bz2 => copy(bzip2::bufread::MultiBzDecoder::new(input), sink),
        Codec::Lz4 => copy(lz4_flex::frame::FrameDecoder::new(input), sink),
        Codec::Lzma => {
            let opts = lzma_rs::decompress::Options {
                memlimit: Some(usize::try_from((sink.budget)()).unwrap_or(usize::MAX)),
                ..Default::default()
            };
            lzma_rs::lzma_decompress_with_options(&mut input, sink, &opts).map_err(io::Error::other)
        }
        Codec::ZFile => {
            // `ZF` + 19 characters; joblib ≤ 0.8.4 wrote one more space.
            io::copy(&mut (&mut input).take(21), &mut io::sink())?;
            if input.fill_buf()?.first() == Some(&b' ') {
                input.consume(1);
            }
            copy(flate2::bufread::ZlibDecoder::new(input), sink)
        }
        Codec::Xz => Err(io::Error::other("xz is decoded from a slice")),
    }
}

fn xz(data: &[u8], sink: &mut Capped<'_>) -> io::Result<()> {
    // lzma-rs decodes each xz block into memory before writing any of it, so the sink's cap
    // alone would let a bomb's block grow to its full size first (1 GiB of zeros in 156 KB:
    // 2 GB of memory, 15 s). The LZMA2 chunk headers declare their unpacked sizes: when they
    // add up past the budget, the stream is cut at that chunk and ended there, so at most the
    // budget plus one chunk (2 MiB) is ever decoded.
    match xz_cut(data, (sink.budget)()) {
        Some(cut) => {
            let mut input = &cut[..];
            let _ = lzma_rs::xz_decompress(&mut input, sink);
            sink.over = true;
            Err(io::Error::other("decompression budget exceeded"))
        }
        None => {
            let mut input = data;
            lzma_rs::xz_decompress(&mut input, sink).map_err(io::Error::other)
        }
    }
}

fn finish(codec: Codec, sink: Capped<'_>, result: io::Result<()>) -> Decompressed {
    let error = match result {
        Ok(()) => None,
        Err(_) if sink.over => Some(DecompressError::Budget((sink.budget)())),
        Err(e) => Some(DecompressError::Corrupt {
            codec: codec.name(),
            produced: sink.out.len() as u64,
            detail: e.to_string(),
        }),
    };
    Decompressed {
        data: sink.out,
        error,
    }
}

fn copy<R: Read>(mut r: R, w: &mut Capped<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
}

/// When the LZMA2 chunks of an xz stream declare more than `budget` bytes in all, the stream cut
/// after the first chunk that crosses the budget, with an end-of-data marker so the decoder
/// flushes what it has (its checks then fail, which is expected). `None` when the declared sizes
/// fit, or the structure cannot be walked (the decoder then reports it).
fn xz_cut(data: &[u8], budget: u64) -> Option<Vec<u8>> {
    // Stream header: magic (6), flags (2), CRC32 (4).
    let check = match *data.get(7)? & 0x0f {
        0 => 0,
        id => 4usize << ((id - 1) / 3),
    };
    let be16 = |p: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*data.get(p)?, *data.get(p + 1)?]) as usize)
    };
    let mut pos = 12;
    let mut total: u64 = 0;
    loop {
        let b = *data.get(pos)? as usize;
        if b == 0 {
            return None; // the index: every block fits
        }
        let block = pos;
        pos += (b + 1) * 4;
        loop {
            let control = *data.get(pos)?;
            let (unpacked, header, packed) = match control {
                0x00 => break,
                0x01 | 0x02 => (be16(pos + 1)? + 1, 3, be16(pos + 1)? + 1),
                0x80..=0xff => (
                    ((control as usize & 0x1f) << 16) + be16(pos + 1)? + 1,
                    if control >= 0xc0 { 6 } else { 5 },
                    be16(pos + 3)? + 1,
                ),
                _ => return None,
            };
            pos += header + packed;
            total += unpacked as u64;
            if total > budget {
                let mut cut = data.get(..pos)?.to_vec();
                cut.push(0x00);
                return Some(cut);
            }
        }
        pos += 1;
        pos += (4 - (pos - block) % 4) % 4 + check;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_is_told_by_its_header_check() {
        // The four levels' headers zlib writes.
        for flg in [0x01, 0x5e, 0x9c, 0xda] {
            assert_eq!(sniff(&[0x78, flg, 0, 0]), Some(Codec::Zlib));
        }
        // Text that starts with `x`, and a header asking for a preset dictionary.
        assert_eq!(sniff(b"x\n"), None);
        assert_eq!(sniff(b"xyz"), None);
        assert_eq!(sniff(&[0x78, 0xbb]), None);
        assert_eq!(sniff(&[0x78]), None);
    }

    #[test]
    fn lzma_is_told_by_joblibs_two_bytes() {
        // Properties 0x5d and a dictionary size whose low byte is 0: 8 MiB and 6 KiB.
        assert_eq!(sniff(&[0x5d, 0x00, 0x00, 0x80, 0x00]), Some(Codec::Lzma));
        assert_eq!(sniff(&[0x5d, 0x00, 0x18, 0x00, 0x00]), Some(Codec::Lzma));
        // An empty list opcode followed by anything else is not lzma.
        assert_eq!(sniff(b"]q\x00"), None);
    }
}

//! Whole-file compression as joblib writes it (zlib, gzip, bz2, lzma, xz, lz4) and joblib's
//! pre-0.10 "z-file": recognise the magic, inflate as a stream under a byte budget.

use std::io::{self, BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Zstandard frame (`28 B5 2F FD`).
    Zstd,
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
            Codec::Zstd => "zstd",
            Codec::ZFile => "zfile",
        }
    }
}

/// A Zstandard skippable frame's magic (`5? 2A 4D 18`): `zstd -d` skips such frames and
/// decodes what follows, so a file may start with one.
fn zstd_skippable(data: &[u8]) -> bool {
    data.len() >= 4 && data[0] & 0xf0 == 0x50 && data[1..4] == [0x2a, 0x4d, 0x18]
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
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || zstd_skippable(data) {
        return Some(Codec::Zstd);
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

/// Decoder memory an xz block may ask for: the largest dictionary xz makes (1.5 GiB, `-9e`
/// uses 64 MiB) and its state. Its window is allocated as the output grows, so the output cap,
/// not this, bounds what a stream costs.
const XZ_MEMORY_KIB: u32 = (1536 + 16) * 1024;

/// A writer that refuses to grow past its budget (asked again at each write: it may grow with
/// the input read).
struct Capped<'b, 'o> {
    out: &'o mut dyn Write,
    written: u64,
    budget: &'b dyn Fn() -> u64,
    over: bool,
}

impl<'b, 'o> Capped<'b, 'o> {
    fn new(budget: &'b dyn Fn() -> u64, out: &'o mut dyn Write) -> Self {
        Capped {
            out,
            written: 0,
            budget,
            over: false,
        }
    }
}

impl Write for Capped<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let budget = (self.budget)();
        if self.written + buf.len() as u64 > budget {
            let room = budget.saturating_sub(self.written).min(buf.len() as u64) as usize;
            self.out.write_all(&buf[..room])?;
            self.written += room as u64;
            self.over = true;
            return Err(io::Error::other("decompression budget exceeded"));
        }
        self.out.write_all(buf)?;
        self.written += buf.len() as u64;
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
    decompress_from(codec, data, &|| budget)
}

/// [`decompress`] reading the compressed bytes from `input`, with at most `budget()` bytes of
/// output (asked at each write). No more of the input is held than a read buffer.
pub fn decompress_from(
    codec: Codec,
    input: impl BufRead,
    budget: &dyn Fn() -> u64,
) -> Decompressed {
    let mut data = Vec::new();
    let error = decompress_into(codec, input, budget, &mut data);
    Decompressed { data, error }
}

/// [`decompress_from`] writing the output to `out` as it comes instead of holding it: why
/// decompression stopped early, if it did (an error of `out` is reported as a corrupt stream).
pub fn decompress_into(
    codec: Codec,
    input: impl BufRead,
    budget: &dyn Fn() -> u64,
    out: &mut dyn Write,
) -> Option<DecompressError> {
    let mut sink = Capped::new(budget, out);
    match decode(codec, input, &mut sink) {
        Ok(()) => None,
        Err(_) if sink.over => Some(DecompressError::Budget((sink.budget)())),
        Err(e) => Some(DecompressError::Corrupt {
            codec: codec.name(),
            produced: sink.written,
            detail: e.to_string(),
        }),
    }
}

/// Bytes read through a reader, counted where others (other threads too) may look meanwhile.
pub struct Counting<'c, R> {
    /// The reader.
    pub inner: R,
    /// Bytes read so far.
    pub count: &'c AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decode `input` with `codec` into `sink`.
fn decode(codec: Codec, mut input: impl BufRead, sink: &mut Capped<'_, '_>) -> io::Result<()> {
    match codec {
        Codec::Zlib => copy(flate2::bufread::ZlibDecoder::new(input), sink),
        Codec::Gzip => copy(flate2::bufread::MultiGzDecoder::new(input), sink),
        Codec::Bz2 => copy(bzip2::bufread::MultiBzDecoder::new(input), sink),
        Codec::Lz4 => copy(lz4_flex::frame::FrameDecoder::new(input), sink),
        // Frame after frame, as `zstd -d` reads concatenated frames. ruzstd refuses windows over
        // 128 MiB (libzstd's default limit), and the sink's cap bounds the output.
        Codec::Zstd => loop {
            let head = input.fill_buf()?;
            if head.is_empty() {
                return Ok(());
            }
            // Skippable frames: magic, a 4-byte length, that many bytes of user data.
            if zstd_skippable(head) {
                let mut header = [0u8; 8];
                input.read_exact(&mut header)?;
                let len = u64::from(u32::from_le_bytes([
                    header[4], header[5], header[6], header[7],
                ]));
                if io::copy(&mut (&mut input).take(len), &mut io::sink())? < len {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                continue;
            }
            let frame =
                ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(io::Error::other)?;
            copy(frame, sink)?;
        },
        Codec::Lzma => lzma_streams(input, sink),
        Codec::ZFile => {
            // `ZF` + 19 characters; joblib ≤ 0.8.4 wrote one more space.
            io::copy(&mut (&mut input).take(21), &mut io::sink())?;
            if input.fill_buf()?.first() == Some(&b' ') {
                input.consume(1);
            }
            copy(flate2::bufread::ZlibDecoder::new(input), sink)
        }
        // Concatenated streams are read on, as Python's `lzma` does. The dictionary grows with
        // the output, so the sink's cap bounds memory too (an xz bomb stops at the budget).
        Codec::Xz => copy(
            lzma_rust2::XzReader::new_mem_limit(input, true, XZ_MEMORY_KIB),
            sink,
        ),
    }
}

/// An LZMA-alone (`.lzma`) stream's reader: the 13-byte header (properties, dictionary size,
/// uncompressed size or all ones for "ends with a marker"), then the range-coded data, read as a
/// stream. The decoder's window grows with its output (it is not allocated at the header's
/// size), so the sink's cap bounds memory; a dictionary size above the decoder's largest is
/// read as its largest, which no stream can tell apart (no match reaches that far back).
fn lzma_alone<R: Read>(mut input: R) -> io::Result<lzma_rust2::LzmaReader<R>> {
    let mut header = [0u8; 13];
    input.read_exact(&mut header)?;
    let [props, d0, d1, d2, d3, size @ ..] = header;
    let dict = u32::from_le_bytes([d0, d1, d2, d3]).min(lzma_rust2::DICT_SIZE_MAX);
    lzma_rust2::LzmaReader::new_with_props(input, u64::from_le_bytes(size), props, dict, None)
}

/// Most `.lzma` streams read one after the other from one file. Each new stream costs a decoder's
/// setup whatever its size, so a file of many tiny streams would cost time out of proportion to
/// its bytes; joblib writes one.
pub const MAX_LZMA_STREAMS: usize = 4096;

/// `.lzma` streams one after the other, as Python's `LZMAFile` (joblib's reader) reads them: when
/// a stream ends and input remains, a new decoder starts on what follows, and its output
/// continues the file's. What follows that does not start like a stream (too short for a header,
/// or a header the decoder refuses) ends the output quietly, as `LZMAFile` ignores trailing data
/// it cannot decode; a later stream that starts well and then breaks is a corrupt file.
fn lzma_streams(input: impl BufRead, sink: &mut Capped<'_, '_>) -> io::Result<()> {
    let mut rest = Unread {
        head: Vec::new(),
        at: 0,
        inner: input,
    };
    for n in 0..MAX_LZMA_STREAMS {
        let mut reader = match lzma_alone(&mut rest) {
            Ok(reader) => reader,
            Err(e) if n == 0 => return Err(e),
            Err(_) => return Ok(()),
        };
        copy(&mut reader, sink)?;
        // The decoder reads ahead: what it read past its stream's end starts the next.
        let (_, ahead) = reader.into_parts();
        rest.unread(ahead);
        if rest.at_end()? {
            return Ok(());
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LZMA_STREAMS} concatenated streams"
    )))
}

/// A reader that gives out bytes put back (`head`, from `at`) before its `inner` reader's.
struct Unread<R> {
    head: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: BufRead> Unread<R> {
    /// Put `bytes` back in front of what is left.
    fn unread(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.head[self.at..]);
        self.head = bytes;
        self.at = 0;
    }

    fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.at == self.head.len() && self.inner.fill_buf()?.is_empty())
    }
}

impl<R: BufRead> Read for Unread<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

fn copy<R: Read>(mut r: R, w: &mut Capped<'_, '_>) -> io::Result<()> {
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
    fn xz_streams_stop_at_the_budget() {
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &data[..], &mut xz).unwrap();
        let whole = decompress(Codec::Xz, &xz, 8 << 20);
        assert!(whole.error.is_none(), "{:?}", whole.error);
        assert_eq!(whole.data, data);
        // Read from a stream as from a slice.
        let budget = || 8 << 20;
        let streamed = decompress_from(Codec::Xz, io::BufReader::new(&xz[..]), &budget);
        assert_eq!(streamed.data, data);
        let cut = decompress(Codec::Xz, &xz, 1 << 20);
        assert!(
            matches!(cut.error, Some(DecompressError::Budget(_))),
            "{:?}",
            cut.error
        );
        assert!(cut.data.len() <= 1 << 20 && data.starts_with(&cut.data));
        // A stream cut short is corrupt, not over budget.
        let short = decompress(Codec::Xz, &xz[..xz.len() / 2], 8 << 20);
        assert!(
            matches!(short.error, Some(DecompressError::Corrupt { .. })),
            "{:?}",
            short.error
        );
    }

    fn lzma(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::lzma_compress(&mut &data[..], &mut out).unwrap();
        out
    }

    #[test]
    fn lzma_streams_are_read_one_after_the_other() {
        let (a, b): (Vec<u8>, Vec<u8>) = (
            (0..100_000u32).map(|i| (i % 7) as u8).collect(),
            b"second".to_vec(),
        );
        let mut two = lzma(&a);
        two.extend(lzma(&b));
        let d = decompress(Codec::Lzma, &two, 1 << 20);
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!(d.data, [&a[..], &b[..]].concat());
        // From a stream with a small read buffer: the first decoder reads past its end.
        let budget = || 1 << 20;
        let streamed = decompress_from(
            Codec::Lzma,
            io::BufReader::with_capacity(7, &two[..]),
            &budget,
        );
        assert_eq!(streamed.data, d.data);
        // Trailing bytes that are no stream are ignored, as Python's LZMAFile ignores them.
        let mut trailing = lzma(&a);
        trailing.extend(b"\xffnot a stream");
        let d = decompress(Codec::Lzma, &trailing, 1 << 20);
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!(d.data, a);
        // A second stream that starts well and breaks is corrupt.
        let mut broken = lzma(&a);
        let second = lzma(&a);
        broken.extend(&second[..second.len() / 2]);
        let d = decompress(Codec::Lzma, &broken, 1 << 20);
        assert!(
            matches!(d.error, Some(DecompressError::Corrupt { .. })),
            "{:?}",
            d.error
        );
        assert!(d.data.starts_with(&a) && d.data.len() < 2 * a.len());
        // So is a first stream cut short.
        let first = lzma(&a);
        let d = decompress(Codec::Lzma, &first[..first.len() / 2], 1 << 20);
        assert!(
            matches!(d.error, Some(DecompressError::Corrupt { .. })),
            "{:?}",
            d.error
        );
    }

    #[test]
    fn lzma_streams_beyond_the_limit_are_refused() {
        let one = lzma(b"x");
        let many = one.repeat(MAX_LZMA_STREAMS + 1);
        let d = decompress(Codec::Lzma, &many, 1 << 20);
        assert!(
            matches!(d.error, Some(DecompressError::Corrupt { .. })),
            "{:?}",
            d.error
        );
        assert_eq!(d.data.len(), MAX_LZMA_STREAMS);
        let d = decompress(Codec::Lzma, &one.repeat(MAX_LZMA_STREAMS), 1 << 20);
        assert!(d.error.is_none(), "{:?}", d.error);
        assert_eq!(d.data, b"x".repeat(MAX_LZMA_STREAMS));
    }

    #[test]
    fn lzma_is_told_by_joblibs_two_bytes() {
        // Properties 0x5d and a dictionary size whose low byte is 0: 8 MiB and 6 KiB.
        assert_eq!(sniff(&[0x5d, 0x00, 0x00, 0x80, 0x00]), Some(Codec::Lzma));
        assert_eq!(sniff(&[0x5d, 0x00, 0x18, 0x00, 0x00]), Some(Codec::Lzma));
        // An empty list opcode followed by anything else is not lzma.
        assert_eq!(sniff(b"]q\x00"), None);
    }

    #[test]
    fn zstd_skippable_frames_are_skipped() {
        let frame: &[u8] = include_bytes!("../../corpus/formats/zstd/evil.pkl.zst");
        let plain = decompress(Codec::Zstd, frame, 1 << 20);
        assert!(plain.error.is_none() && !plain.data.is_empty());
        let mut skipped = vec![0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        skipped.extend_from_slice(frame);
        assert_eq!(sniff(&skipped), Some(Codec::Zstd));
        let d = decompress(Codec::Zstd, &skipped, 1 << 20);
        assert!(d.error.is_none());
        assert_eq!(d.data, plain.data);
        // Data shorter than the frame says: an error, never a silent end.
        let short = [0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1];
        assert!(decompress(Codec::Zstd, &short, 1 << 20).error.is_some());
        assert_eq!(sniff(&[0x50, 0x2a, 0x4d, 0x19]), None);
    }
}

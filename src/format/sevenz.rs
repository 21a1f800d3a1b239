//! 7z archives, read as 7-Zip's `DOC/7zFormat.txt` describes them: the signature header (its
//! CRC checked), the next header (plain, or `kEncodedHeader`: itself packed in a folder, as
//! 7-Zip and py7zr write it), pack info, folders (coders, bind pairs, packed streams), unpack
//! sizes and CRCs, substreams and file names.
//!
//! Folders are decoded whole, as a loader would: Copy, LZMA, LZMA2, Deflate and BZip2 coders and
//! the Delta and branch-converter filters (x86, ARM, ARM Thumb, ARM64, PowerPC, SPARC, IA-64,
//! RISC-V) in a chain of one-input, one-output coders. Anything else (AES encryption, PPMd,
//! BCJ2, Deflate64, Zstandard, …) is an error naming the method: the member is not read, never
//! reported as read. Counts from the file are checked against the bytes left before they size
//! anything; every decoder stops at the size the header declares and at the caller's budget,
//! and its dictionary is never larger than that output.

use lzma_rust2::filter::FilterType;
use std::borrow::Cow;
use std::io::{self, Read};

/// The signature.
pub const SIGNATURE: &[u8; 6] = &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c];
/// Largest next header read.
pub const MAX_HEADER: u64 = 64 << 20;
/// Most coders in one folder, folders, and files.
const MAX_CODERS: u64 = 8;
const MAX_FOLDERS: u64 = 1 << 20;
const MAX_FILES: u64 = 1 << 20;
/// Deepest chain of encoded headers followed.
const MAX_HEADER_LEVELS: usize = 4;

/// Why an archive or a folder could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SevenZipError {
    /// A structure runs past the end.
    #[error("{0} runs past the end of the archive")]
    Truncated(&'static str),
    /// A malformed structure.
    #[error("{0}")]
    Invalid(String),
    /// A method (codec, filter, encryption) this reader does not decode.
    #[error("{0} (not decoded by this scan)")]
    Unsupported(String),
    /// A CRC does not match.
    #[error("CRC mismatch: {0}")]
    Crc(String),
    /// More files than the caller reads.
    #[error("{0}")]
    Limit(String),
    /// Decoding would exceed the output budget.
    #[error("decoding exceeds the budget of {0} bytes")]
    Budget(u64),
}

type Result<T> = std::result::Result<T, SevenZipError>;

/// One coder of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coder {
    /// Method id bytes.
    pub method: Vec<u8>,
    /// Input streams.
    pub inputs: u64,
    /// Output streams.
    pub outputs: u64,
    /// Properties.
    pub props: Vec<u8>,
}

/// A folder: coders whose output is one or more files' bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folder {
    /// The coders.
    pub coders: Vec<Coder>,
    /// `(in index, out index)` pairs.
    pub bind_pairs: Vec<(u64, u64)>,
    /// In-stream indexes fed by packed streams.
    pub packed: Vec<u64>,
    /// Size of every coder output stream.
    pub unpack_sizes: Vec<u64>,
    /// CRC of the folder's output.
    pub crc: Option<u32>,
    /// First packed stream of this folder (index into the pack sizes).
    pub first_pack: usize,
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Folder holding its bytes (`None`: empty file or directory).
    pub folder: Option<usize>,
    /// Offset in the folder's output.
    pub offset: u64,
    /// Size.
    pub size: u64,
    /// CRC, when recorded.
    pub crc: Option<u32>,
}

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archive {
    /// Offset of the first packed stream.
    pub pack_pos: u64,
    /// Sizes of the packed streams, in order.
    pub pack_sizes: Vec<u64>,
    /// Folders.
    pub folders: Vec<Folder>,
    /// Files, in order.
    pub entries: Vec<Entry>,
}

/// True when `data` starts with the 7z signature.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(SIGNATURE)
}

struct Cur<'a> {
    d: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(d: &'a [u8], what: &'static str) -> Self {
        Cur { d, pos: 0, what }
    }
    fn bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| SevenZipError::Truncated(self.what))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or(SevenZipError::Truncated(self.what))?;
        let b = &self.d[self.pos..end];
        self.pos = end;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// 7z's variable-length number: the first byte's leading ones count the bytes that follow.
    fn number(&mut self) -> Result<u64> {
        let first = self.u8()?;
        let mut mask = 0x80u8;
        let mut value = 0u64;
        for i in 0..8 {
            if first & mask == 0 {
                let high = u64::from(first & mask.wrapping_sub(1));
                return Ok(value | (high << (8 * i)));
            }
            value |= u64::from(self.u8()?) << (8 * i);
            mask >>= 1;
        }
        Ok(value)
    }
    /// A count whose items need at least `min` bytes each.
    fn count(&mut self, min: u64, max: u64, what: &str) -> Result<u64> {
        let n = self.number()?;
        let left = (self.d.len() - self.pos) as u64;
        if n > max || n.saturating_mul(min) > left {
            return Err(SevenZipError::Invalid(format!("{what}: a count of {n}")));
        }
        Ok(n)
    }
    fn left(&self) -> u64 {
        (self.d.len() - self.pos) as u64
    }
    fn bits(&mut self, n: u64) -> Result<Vec<bool>> {
        let bytes = self.bytes(n.div_ceil(8))?;
        Ok((0..n as usize)
            .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect())
    }
    /// `AllAreDefined` then a bit vector when not, then a CRC for each defined item.
    fn digests(&mut self, n: u64) -> Result<Vec<Option<u32>>> {
        let defined = if self.u8()? == 0 {
            self.bits(n)?
        } else {
            vec![true; n as usize]
        };
        defined
            .into_iter()
            .map(|d| if d { self.u32().map(Some) } else { Ok(None) })
            .collect()
    }
}

// Property ids.
const K_END: u8 = 0x00;
const K_HEADER: u8 = 0x01;
const K_ARCHIVE_PROPERTIES: u8 = 0x02;
const K_ADDITIONAL_STREAMS: u8 = 0x03;
const K_MAIN_STREAMS: u8 = 0x04;
const K_FILES_INFO: u8 = 0x05;
const K_PACK_INFO: u8 = 0x06;
const K_UNPACK_INFO: u8 = 0x07;
const K_SUBSTREAMS_INFO: u8 = 0x08;
const K_SIZE: u8 = 0x09;
const K_CRC: u8 = 0x0a;
const K_FOLDER: u8 = 0x0b;
const K_CODERS_UNPACK_SIZE: u8 = 0x0c;
const K_NUM_UNPACK_STREAM: u8 = 0x0d;
const K_EMPTY_STREAM: u8 = 0x0e;
const K_NAME: u8 = 0x11;
const K_ENCODED_HEADER: u8 = 0x17;

/// Streams info: pack info, folders, and per-folder substreams (sizes, CRCs).
#[derive(Default)]
struct Streams {
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: Vec<Folder>,
    /// Per folder: the sizes of its substreams.
    substreams: Vec<Vec<u64>>,
    /// CRCs of all substreams, in order.
    substream_crcs: Vec<Option<u32>>,
}

/// Read the archive's header (decoding encoded headers, within `budget` bytes).
pub fn read(data: &[u8], budget: u64) -> Result<Archive> {
    read_limited(data, budget, MAX_FILES as usize)
}

/// [`read`], refusing an archive of more than `max_files` files before anything is sized by
/// its count.
pub fn read_limited(data: &[u8], budget: u64, max_files: usize) -> Result<Archive> {
    let max_files = (max_files as u64).min(MAX_FILES);
    if !looks_like(data) {
        return Err(SevenZipError::Invalid("no 7z signature".into()));
    }
    let mut c = Cur::new(data, "signature header");
    c.bytes(6)?;
    let major = c.u8()?;
    c.u8()?;
    if major != 0 {
        return Err(SevenZipError::Unsupported(format!(
            "7z format version {major}"
        )));
    }
    let start_crc = c.u32()?;
    let start = c.bytes(20)?;
    if crc32fast::hash(start) != start_crc {
        return Err(SevenZipError::Crc("start header".into()));
    }
    let mut s = Cur::new(start, "start header");
    let next_offset = s.u64()?;
    let next_size = s.u64()?;
    let next_crc = s.u32()?;
    if next_size == 0 {
        return Ok(Archive::default()); // an empty archive
    }
    if next_size > MAX_HEADER {
        return Err(SevenZipError::Invalid(format!(
            "a next header of {next_size} bytes"
        )));
    }
    let at = 32u64
        .checked_add(next_offset)
        .ok_or(SevenZipError::Truncated("next header"))?;
    let mut h = Cur::new(data, "next header");
    h.bytes(at)?;
    let header = h.bytes(next_size)?.to_vec();
    if crc32fast::hash(&header) != next_crc {
        return Err(SevenZipError::Crc("next header".into()));
    }
    let mut header = header;
    for _ in 0..MAX_HEADER_LEVELS {
        let mut c = Cur::new(&header, "header");
        match c.u8()? {
            K_HEADER => return parse_header(&mut c, max_files),
            K_ENCODED_HEADER => {
                let streams = streams_info(&mut c)?;
                let archive = Archive {
                    pack_pos: streams.pack_pos,
                    pack_sizes: streams.pack_sizes.clone(),
                    folders: streams.folders.clone(),
                    entries: Vec::new(),
                };
                let folder = archive.folders.first().ok_or_else(|| {
                    SevenZipError::Invalid("an encoded header without a folder".into())
                })?;
                let decoded = decode_folder(data, &archive, folder, budget.min(MAX_HEADER));
                if let Some(e) = decoded.error {
                    return Err(e);
                }
                header = decoded.data.into_owned();
            }
            p => {
                return Err(SevenZipError::Invalid(format!(
                    "header starts with property {p:#04x}"
                )))
            }
        }
    }
    Err(SevenZipError::Invalid(
        "headers encoded too many times".into(),
    ))
}

fn parse_header(c: &mut Cur<'_>, max_files: u64) -> Result<Archive> {
    let mut streams = Streams::default();
    let mut names: Vec<String> = Vec::new();
    let mut empty: Vec<bool> = Vec::new();
    let mut files = 0u64;
    loop {
        match c.u8()? {
            K_END => break,
            K_ARCHIVE_PROPERTIES => loop {
                if c.u8()? == K_END {
                    break;
                }
                let n = c.number()?;
                c.bytes(n)?;
            },
            K_ADDITIONAL_STREAMS => {
                streams_info(c)?;
            }
            K_MAIN_STREAMS => streams = streams_info(c)?,
            K_FILES_INFO => {
                files = c.number()?;
                if files > max_files {
                    return Err(SevenZipError::Limit(format!(
                        "{files} files (at most {max_files} are read)"
                    )));
                }
                if files > c.left() {
                    return Err(SevenZipError::Invalid(format!("files: a count of {files}")));
                }
                loop {
                    let kind = c.u8()?;
                    if kind == K_END {
                        break;
                    }
                    let size = c.number()?;
                    let body = c.bytes(size)?;
                    let mut b = Cur::new(body, "file property");
                    match kind {
                        K_EMPTY_STREAM => empty = b.bits(files)?,
                        K_NAME => {
                            if b.u8()? != 0 {
                                return Err(SevenZipError::Unsupported(
                                    "file names stored outside the header".into(),
                                ));
                            }
                            names = utf16_names(&body[1..], files)?;
                        }
                        _ => {} // times, attributes, empty-file and anti flags, padding
                    }
                }
            }
            p => {
                return Err(SevenZipError::Invalid(format!(
                    "unexpected property {p:#04x} in the header"
                )))
            }
        }
    }
    // Files with a stream take the substreams in order.
    let mut entries = Vec::with_capacity(files as usize);
    let mut slots = streams
        .substreams
        .iter()
        .enumerate()
        .flat_map(|(f, sizes)| {
            let mut off = 0u64;
            sizes
                .iter()
                .map(move |&s| {
                    let o = off;
                    off = off.saturating_add(s);
                    (f, o, s)
                })
                .collect::<Vec<_>>()
        })
        .zip(streams.substream_crcs.iter().copied());
    for i in 0..files as usize {
        let name = names.get(i).cloned().unwrap_or_else(|| format!("file{i}"));
        if empty.get(i).copied().unwrap_or(false) {
            entries.push(Entry {
                name,
                folder: None,
                offset: 0,
                size: 0,
                crc: None,
            });
            continue;
        }
        let ((folder, offset, size), crc) = slots
            .next()
            .ok_or_else(|| SevenZipError::Invalid(format!("file {name} has no stream")))?;
        entries.push(Entry {
            name,
            folder: Some(folder),
            offset,
            size,
            crc,
        });
    }
    Ok(Archive {
        pack_pos: streams.pack_pos,
        pack_sizes: streams.pack_sizes,
        folders: streams.folders,
        entries,
    })
}

fn utf16_names(b: &[u8], files: u64) -> Result<Vec<String>> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let names: Vec<String> = units
        .split(|&u| u == 0)
        .take(files as usize)
        .map(String::from_utf16_lossy)
        .collect();
    if (names.len() as u64) < files {
        return Err(SevenZipError::Invalid("fewer names than files".into()));
    }
    Ok(names)
}

fn streams_info(c: &mut Cur<'_>) -> Result<Streams> {
    let mut s = Streams::default();
    let mut have_substreams = false;
    loop {
        match c.u8()? {
            K_END => break,
            K_PACK_INFO => {
                s.pack_pos = c.number()?;
                let n = c.count(1, MAX_FOLDERS, "packed streams")?;
                loop {
                    match c.u8()? {
                        K_END => break,
                        K_SIZE => {
                            s.pack_sizes = (0..n).map(|_| c.number()).collect::<Result<_>>()?
                        }
                        K_CRC => {
                            c.digests(n)?;
                        }
                        p => {
                            return Err(SevenZipError::Invalid(format!(
                                "property {p:#04x} in pack info"
                            )))
                        }
                    }
                }
            }
            K_UNPACK_INFO => unpack_info(c, &mut s)?,
            K_SUBSTREAMS_INFO => {
                substreams_info(c, &mut s)?;
                have_substreams = true;
            }
            p => {
                return Err(SevenZipError::Invalid(format!(
                    "property {p:#04x} in streams info"
                )))
            }
        }
    }
    if !have_substreams {
        // One stream per folder, its CRC the folder's.
        s.substreams = s.folders.iter().map(|f| vec![main_size(f)]).collect();
        s.substream_crcs = s.folders.iter().map(|f| f.crc).collect();
    }
    Ok(s)
}

fn unpack_info(c: &mut Cur<'_>, s: &mut Streams) -> Result<()> {
    if c.u8()? != K_FOLDER {
        return Err(SevenZipError::Invalid("unpack info without folders".into()));
    }
    let n = c.count(2, MAX_FOLDERS, "folders")?;
    if c.u8()? != 0 {
        return Err(SevenZipError::Unsupported(
            "folders stored outside the header".into(),
        ));
    }
    let mut first_pack = 0usize;
    for _ in 0..n {
        let mut f = folder(c)?;
        f.first_pack = first_pack;
        first_pack += f.packed.len();
        s.folders.push(f);
    }
    if c.u8()? != K_CODERS_UNPACK_SIZE {
        return Err(SevenZipError::Invalid(
            "folders without unpack sizes".into(),
        ));
    }
    for f in &mut s.folders {
        let outs: u64 = f.coders.iter().map(|c| c.outputs).sum();
        f.unpack_sizes = (0..outs).map(|_| c.number()).collect::<Result<_>>()?;
    }
    loop {
        match c.u8()? {
            K_END => break,
            K_CRC => {
                let crcs = c.digests(n)?;
                for (f, crc) in s.folders.iter_mut().zip(crcs) {
                    f.crc = crc;
                }
            }
            p => {
                return Err(SevenZipError::Invalid(format!(
                    "property {p:#04x} in unpack info"
                )))
            }
        }
    }
    Ok(())
}

fn folder(c: &mut Cur<'_>) -> Result<Folder> {
    let n = c.count(1, MAX_CODERS, "coders")?;
    let mut f = Folder::default();
    for _ in 0..n {
        let flags = c.u8()?;
        if flags & 0x80 != 0 {
            return Err(SevenZipError::Unsupported(
                "alternative coder methods".into(),
            ));
        }
        let method = c.bytes(u64::from(flags & 0x0f))?.to_vec();
        let (inputs, outputs) = if flags & 0x10 != 0 {
            (
                c.count(0, MAX_CODERS, "coder inputs")?,
                c.count(0, MAX_CODERS, "coder outputs")?,
            )
        } else {
            (1, 1)
        };
        let props = if flags & 0x20 != 0 {
            let size = c.count(1, 1 << 16, "coder properties")?;
            c.bytes(size)?.to_vec()
        } else {
            Vec::new()
        };
        f.coders.push(Coder {
            method,
            inputs,
            outputs,
            props,
        });
    }
    let outs: u64 = f.coders.iter().map(|c| c.outputs).sum();
    let ins: u64 = f.coders.iter().map(|c| c.inputs).sum();
    if outs == 0 {
        return Err(SevenZipError::Invalid("a folder without outputs".into()));
    }
    for _ in 0..outs - 1 {
        f.bind_pairs.push((c.number()?, c.number()?));
    }
    let packed = ins
        .checked_sub(outs - 1)
        .ok_or_else(|| SevenZipError::Invalid("more bind pairs than inputs".into()))?;
    if packed == 1 {
        let free = (0..ins)
            .find(|i| !f.bind_pairs.iter().any(|(bi, _)| bi == i))
            .ok_or_else(|| SevenZipError::Invalid("no packed input".into()))?;
        f.packed.push(free);
    } else {
        for _ in 0..packed {
            f.packed.push(c.number()?);
        }
    }
    Ok(f)
}

/// Size of the folder's main output: the output stream no bind pair consumes.
fn main_size(f: &Folder) -> u64 {
    let outs = f.unpack_sizes.len() as u64;
    (0..outs)
        .find(|o| !f.bind_pairs.iter().any(|(_, bo)| bo == o))
        .and_then(|o| f.unpack_sizes.get(o as usize).copied())
        .unwrap_or(0)
}

fn substreams_info(c: &mut Cur<'_>, s: &mut Streams) -> Result<()> {
    let mut counts = vec![1u64; s.folders.len()];
    let mut prop = c.u8()?;
    if prop == K_NUM_UNPACK_STREAM {
        for n in counts.iter_mut() {
            *n = c.count(0, MAX_FILES, "substreams")?;
        }
        prop = c.u8()?;
    }
    let total: u64 = counts.iter().sum();
    if total > MAX_FILES {
        return Err(SevenZipError::Invalid(format!("{total} substreams")));
    }
    let mut sizes = Vec::with_capacity(s.folders.len());
    for (f, &n) in s.folders.iter().zip(&counts) {
        let mut v = Vec::new();
        if n > 0 {
            let mut sum = 0u64;
            if prop == K_SIZE {
                for _ in 0..n - 1 {
                    let x = c.number()?;
                    sum = sum.saturating_add(x);
                    v.push(x);
                }
            }
            let size = main_size(f);
            let last = size.checked_sub(sum).ok_or_else(|| {
                SevenZipError::Invalid("substreams larger than their folder".into())
            })?;
            v.push(last);
        }
        sizes.push(v);
    }
    if prop == K_SIZE {
        prop = c.u8()?;
    }
    // CRCs: one per substream, except single-substream folders whose folder CRC is known.
    let mut crcs: Vec<Option<u32>> = Vec::new();
    let unknown: u64 = s
        .folders
        .iter()
        .zip(&counts)
        .map(|(f, &n)| if n == 1 && f.crc.is_some() { 0 } else { n })
        .sum();
    let mut listed: Vec<Option<u32>> = Vec::new();
    loop {
        match prop {
            K_END => break,
            K_CRC => listed = c.digests(unknown)?,
            p => {
                return Err(SevenZipError::Invalid(format!(
                    "property {p:#04x} in substreams info"
                )))
            }
        }
        prop = c.u8()?;
    }
    let mut listed = listed.into_iter();
    for (f, &n) in s.folders.iter().zip(&counts) {
        if n == 1 && f.crc.is_some() {
            crcs.push(f.crc);
        } else {
            for _ in 0..n {
                crcs.push(listed.next().flatten());
            }
        }
    }
    s.substreams = sizes;
    s.substream_crcs = crcs;
    let _ = c.left();
    Ok(())
}

/// Name of a coder method, for messages.
fn method_name(m: &[u8]) -> String {
    match m {
        [0x00] => "Copy".into(),
        [0x21] => "LZMA2".into(),
        [0x03, 0x01, 0x01] => "LZMA".into(),
        [0x04, 0x01, 0x08] => "Deflate".into(),
        [0x04, 0x01, 0x09] => "Deflate64".into(),
        [0x04, 0x02, 0x02] => "BZip2".into(),
        [0x03, 0x04, 0x01] => "PPMd".into(),
        [0x03, 0x03, 0x01, 0x03] => "BCJ (x86)".into(),
        [0x03, 0x03, 0x01, 0x1b] => "BCJ2".into(),
        [0x03] => "Delta".into(),
        [0x06, 0xf1, 0x07, 0x01] => "7zAES (encrypted)".into(),
        other => format!(
            "method {}",
            other.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// What decoding a folder gave: its output, whole or the part before the decoder stopped, and
/// why it stopped short or cannot be trusted (`None`: every byte the header declares, CRC
/// checked when recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'d> {
    /// The folder's output (a prefix of it when `error` says it stopped early): the archive's
    /// own bytes for a folder stored without compression.
    pub data: Cow<'d, [u8]>,
    /// Why decoding stopped before the declared size, or the folder CRC that does not match.
    pub error: Option<SevenZipError>,
}

/// The bytes of `folder`'s main output (at most `budget` bytes). A coder that stops early (a
/// broken stream, the budget) leaves what it produced so far in [`Decoded::data`]: a loader
/// extracting the archive would have written those bytes before failing.
pub fn decode_folder<'d>(
    data: &'d [u8],
    archive: &Archive,
    folder: &Folder,
    budget: u64,
) -> Decoded<'d> {
    let failed = |e| Decoded {
        data: Cow::Borrowed(&[][..]),
        error: Some(e),
    };
    let order = match chain(folder) {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    let packed = match packed_stream(data, archive, folder) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    // The first coder reads the packed bytes in place; each later one reads its predecessor's
    // output.
    let mut stream: Cow<'d, [u8]> = Cow::Borrowed(packed);
    for (step, &i) in order.iter().enumerate() {
        let coder = &folder.coders[i];
        let Some(&out_size) = folder.unpack_sizes.get(i) else {
            return failed(SevenZipError::Invalid(
                "a coder without an unpack size".into(),
            ));
        };
        let input = std::mem::take(&mut stream);
        let (out, error) = decode(coder, input, out_size, budget);
        if let Some(e) = error {
            // A prefix survives filters, which map each byte to one byte; a decompressor fed a
            // prefix would only report the same break again.
            let rest = &order[step + 1..];
            if !rest.iter().all(|&j| filter_of(&folder.coders[j]).is_some()) {
                return failed(e);
            }
            let mut out = out;
            for &j in rest {
                let (o, _) = decode(&folder.coders[j], out, u64::MAX, budget);
                out = o;
            }
            return Decoded {
                data: out,
                error: Some(e),
            };
        }
        stream = out;
    }
    let out = stream;
    let error = folder
        .crc
        .filter(|&crc| crc32fast::hash(&out) != crc)
        .map(|_| SevenZipError::Crc("folder output".into()));
    Decoded { data: out, error }
}

/// The coders of a folder in the order they decode: a chain of one-in, one-out coders (coder
/// `i` has in-stream `i` and out-stream `i`) where the packed stream feeds the first and each
/// bind pair feeds a coder's output to the next.
fn chain(folder: &Folder) -> Result<Vec<usize>> {
    let n = folder.coders.len();
    if folder.packed.len() != 1
        || folder
            .coders
            .iter()
            .any(|c| c.inputs != 1 || c.outputs != 1)
    {
        return Err(SevenZipError::Unsupported(format!(
            "a folder of coders with several streams ({})",
            methods(folder)
        )));
    }
    let mut order = vec![folder.packed[0] as usize];
    while let Some(&(next, _)) = folder
        .bind_pairs
        .iter()
        .find(|&&(_, out)| out as usize == *order.last().expect("not empty"))
    {
        if order.len() > n || order.contains(&(next as usize)) {
            return Err(SevenZipError::Invalid("coders bound in a cycle".into()));
        }
        order.push(next as usize);
    }
    if order.len() != n || order.iter().any(|&i| i >= n) {
        return Err(SevenZipError::Unsupported(format!(
            "coders not bound in one chain ({})",
            methods(folder)
        )));
    }
    Ok(order)
}

fn methods(folder: &Folder) -> String {
    folder
        .coders
        .iter()
        .map(|c| method_name(&c.method))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The packed bytes of a folder (its first packed stream).
fn packed_stream<'d>(data: &'d [u8], archive: &Archive, folder: &Folder) -> Result<&'d [u8]> {
    let mut offset = 32u64
        .checked_add(archive.pack_pos)
        .ok_or(SevenZipError::Truncated("packed stream"))?;
    for s in archive.pack_sizes.iter().take(folder.first_pack) {
        offset = offset
            .checked_add(*s)
            .ok_or(SevenZipError::Truncated("packed stream"))?;
    }
    let size = *archive
        .pack_sizes
        .get(folder.first_pack)
        .ok_or_else(|| SevenZipError::Invalid("a folder without a packed stream".into()))?;
    let mut c = Cur::new(data, "packed stream");
    c.bytes(offset)?;
    c.bytes(size)
}

/// The branch-converter or delta filter a coder is, with its property (start offset or
/// distance), if it is one.
fn filter_of(coder: &Coder) -> Option<(FilterType, u32)> {
    let t = match coder.method.as_slice() {
        [0x03] => {
            // One byte: the distance minus one.
            return match coder.props.as_slice() {
                [d] => Some((FilterType::Delta, u32::from(*d) + 1)),
                _ => None,
            };
        }
        [0x03, 0x03, 0x01, 0x03] => FilterType::BcjX86,
        [0x03, 0x03, 0x02, 0x05] => FilterType::BcjPpc,
        [0x03, 0x03, 0x04, 0x01] => FilterType::BcjIa64,
        [0x03, 0x03, 0x05, 0x01] => FilterType::BcjArm,
        [0x03, 0x03, 0x07, 0x01] => FilterType::BcjArmThumb,
        [0x03, 0x03, 0x08, 0x05] => FilterType::BcjSparc,
        [0x0a] => FilterType::BcjArm64,
        [0x0b] => FilterType::BcjRiscv,
        _ => return None,
    };
    // No properties, or a 32-bit start offset.
    let start = match coder.props.as_slice() {
        [] => 0,
        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => return None,
    };
    Some((t, start))
}

/// Dictionary size for an LZ decoder: what the properties ask, but never more than the output
/// the decoder may produce (no match reaches further back than the bytes already written), so a
/// forged property cannot make it allocate more than the budget.
fn dictionary(asked: u32, out_size: u64, budget: u64) -> u32 {
    let most = out_size.min(budget).max(4096);
    u32::try_from(u64::from(asked).min(most)).unwrap_or(u32::MAX)
}

/// Read `r` to its end or to `cap` bytes, whichever comes first. Room for up to four times the
/// `packed` bytes is reserved at once (model weights rarely pack smaller), so that a large
/// member is not copied over and over as its buffer grows; past that it grows as it fills.
fn read_capped<'d>(r: impl Read, packed: usize, cap: u64) -> (Cow<'d, [u8]>, Option<io::Error>) {
    let reserve = (packed as u64).saturating_mul(4).min(cap);
    let mut out = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    let err = r.take(cap).read_to_end(&mut out).err();
    (Cow::Owned(out), err)
}

/// Decode one coder's input into at most `min(out_size, budget)` bytes. A decoder stops at the
/// size the header declares, as 7-Zip's do. What came out before an error is returned with it.
/// Stored bytes stay borrowed.
fn decode<'d>(
    coder: &Coder,
    input: Cow<'d, [u8]>,
    out_size: u64,
    budget: u64,
) -> (Cow<'d, [u8]>, Option<SevenZipError>) {
    let name = method_name(&coder.method);
    let cap = out_size.min(budget);
    let cap_len = usize::try_from(cap).unwrap_or(usize::MAX);
    let invalid = |what: &str| Some(SevenZipError::Invalid(format!("{name}: {what}")));
    let nothing = || Cow::Borrowed(&[][..]);
    let (out, err): (Cow<'d, [u8]>, Option<io::Error>) = match coder.method.as_slice() {
        [0x00] => match input {
            Cow::Borrowed(b) => (Cow::Borrowed(&b[..b.len().min(cap_len)]), None),
            Cow::Owned(mut v) => {
                v.truncate(cap_len);
                (Cow::Owned(v), None)
            }
        },
        [0x21] => {
            // One property byte: the dictionary size, 2 or 3 times a power of two.
            let asked = match coder.props.as_slice() {
                [40] => u32::MAX,
                [p] if *p < 40 => (2 | (u32::from(*p) & 1)) << (p / 2 + 11),
                _ => return (nothing(), invalid("bad properties")),
            };
            let dict = dictionary(asked, out_size, budget);
            read_capped(
                lzma_rust2::Lzma2Reader::new(&input[..], dict, None),
                input.len(),
                cap,
            )
        }
        [0x03, 0x01, 0x01] => {
            // Five property bytes: lc/lp/pb, then the dictionary size.
            let [props, a, b, c, d] = coder.props[..] else {
                return (nothing(), invalid("properties are not 5 bytes"));
            };
            let dict = dictionary(u32::from_le_bytes([a, b, c, d]), out_size, budget);
            match lzma_rust2::LzmaReader::new_with_props(&input[..], out_size, props, dict, None) {
                Ok(r) => read_capped(r, input.len(), cap),
                Err(e) => (nothing(), Some(e)),
            }
        }
        [0x04, 0x01, 0x08] => read_capped(
            flate2::read::DeflateDecoder::new(&input[..]),
            input.len(),
            cap,
        ),
        [0x04, 0x02, 0x02] => read_capped(
            bzip2::read::MultiBzDecoder::new(&input[..]),
            input.len(),
            cap,
        ),
        _ => match filter_of(coder) {
            Some((filter_type, property)) => {
                if filter_type == FilterType::Delta && !(1..=256).contains(&property) {
                    return (nothing(), invalid("bad distance"));
                }
                let config = lzma_rust2::filter::FilterConfig {
                    filter_type,
                    property,
                };
                match lzma_rust2::filter::StreamFilter::new(&config) {
                    Ok(mut f) => {
                        let mut buf = input.into_owned();
                        buf.truncate(cap_len);
                        // The last bytes a branch filter holds back are left as they are:
                        // nothing follows them.
                        f.decode(&mut buf);
                        f.finish();
                        (Cow::Owned(buf), None)
                    }
                    Err(e) => (nothing(), Some(e)),
                }
            }
            None => return (nothing(), Some(SevenZipError::Unsupported(name.clone()))),
        },
    };
    if let Some(e) = err {
        return (out, invalid(&format!("broken stream ({e})")));
    }
    if (out.len() as u64) < out_size {
        let error = if out.len() as u64 == budget {
            SevenZipError::Budget(budget)
        } else {
            SevenZipError::Invalid(format!(
                "{name} stream gives {} bytes, the header says {out_size}",
                out.len()
            ))
        };
        return (out, Some(error));
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_decode_as_7zip_writes_them() {
        let n = |b: &[u8]| Cur::new(b, "n").number().unwrap();
        assert_eq!(n(&[0x05]), 5);
        assert_eq!(n(&[0x80, 0x80]), 0x80);
        assert_eq!(n(&[0x81, 0x00]), 0x100);
        assert_eq!(n(&[0xc0, 0x34, 0x12]), 0x1234);
        assert_eq!(n(&[0xff, 1, 0, 0, 0, 0, 0, 0, 0]), 1);
    }

    #[test]
    fn damaged_signature_headers_are_errors() {
        assert!(read(b"PK", 100).is_err());
        let mut d = SIGNATURE.to_vec();
        d.extend_from_slice(&[0, 4, 0, 0, 0, 0]);
        d.extend_from_slice(&[0u8; 20]);
        assert!(matches!(read(&d, 100), Err(SevenZipError::Crc(_))));
    }
}

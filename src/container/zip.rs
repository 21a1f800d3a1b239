//! A lenient, zero-copy zip reader (PKWARE APPNOTE subset: stored and deflated members, zip64).
//!
//! It is written to accept at least what torch's reader (miniz) and Python's `zipfile` accept, so
//! that nothing a loader would open escapes the scan: it finds the end record from the end of the
//! file, takes member sizes and offsets from the central directory, tolerates bytes before the
//! first header, wrong or zero CRCs, local headers that disagree with the central directory, odd
//! flag bits and duplicate names. Every such oddity is recorded as a [`Note`] for the caller to
//! report. Member data are slices of the input (stored) or inflated under a byte budget
//! (deflated); nothing is read that the caller does not ask for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const EOCD_LEN: usize = 22;
const MAX_COMMENT: usize = 0xFFFF;

/// General-purpose flag bits.
pub mod flags {
    /// Bit 0: the member is encrypted.
    pub const ENCRYPTED: u16 = 0x0001;
    /// Bits 1-2: compression options (deflate level); harmless.
    pub const COMPRESSION_OPTIONS: u16 = 0x0006;
    /// Bit 3: sizes and CRC follow the data in a descriptor.
    pub const DATA_DESCRIPTOR: u16 = 0x0008;
    /// Bit 5: compressed patched data.
    pub const PATCHED: u16 = 0x0020;
    /// Bit 6: strong encryption.
    pub const STRONG_ENCRYPTION: u16 = 0x0040;
    /// Bit 11: names are UTF-8.
    pub const UTF8: u16 = 0x0800;
    /// Bit 13: central directory encrypted, local headers masked.
    pub const MASKED_HEADERS: u16 = 0x2000;
    /// Bits any ordinary writer sets.
    pub const ORDINARY: u16 = COMPRESSION_OPTIONS | DATA_DESCRIPTOR | UTF8;
}

/// Compression method: stored.
pub const STORED: u16 = 0;
/// Compression method: deflate.
pub const DEFLATED: u16 = 8;

/// Why an archive or a member cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// No end-of-central-directory record and no local header.
    #[error("no zip end record or local header found")]
    NotAZip,
    /// A structure runs past the end of the file.
    #[error("{0}")]
    Truncated(String),
    /// A structure is inconsistent.
    #[error("{0}")]
    Malformed(String),
    /// Encrypted or compressed with a method this reader does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// Inflating would produce more than the allowed bytes.
    #[error("member inflates to more than {0} bytes")]
    Budget(u64),
}

/// One oddity of an archive: something a strict reader would reject or that differs between
/// readers. `offset` is a file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where in the file.
    pub offset: Option<u64>,
    /// The member concerned, if any.
    pub member: Option<String>,
    /// What is odd.
    pub message: String,
}

/// One member as the central directory (or, failing that, its local header) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name as stored (UTF-8, invalid bytes replaced).
    pub name: String,
    /// Position in the central directory.
    pub index: usize,
    /// Compression method (0 stored, 8 deflate, …).
    pub method: u16,
    /// General-purpose flags from the central directory.
    pub flags: u16,
    /// CRC-32 recorded in the central directory.
    pub crc32: u32,
    /// Compressed size.
    pub compressed_size: u64,
    /// Uncompressed size.
    pub size: u64,
    /// File offset of the local header (after correcting for bytes before the archive).
    pub local_offset: u64,
}

impl Entry {
    /// True when the member is marked encrypted (traditional or strong encryption).
    pub fn is_encrypted(&self) -> bool {
        self.flags & (flags::ENCRYPTED | flags::STRONG_ENCRYPTION) != 0
    }

    /// True for directory entries (names ending in `/`, no data).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') && self.compressed_size == 0
    }
}

/// Where a member's data lie in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// File offset of the first data byte.
    pub start: u64,
    /// Compressed length.
    pub len: u64,
}

/// A parsed archive over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Archive<'a> {
    data: &'a [u8],
    /// Members in central-directory order.
    pub entries: Vec<Entry>,
    /// Bytes before the archive proper (self-extractor stubs, polyglot prefixes).
    pub prefix_len: u64,
    /// File offset of the central directory (or of the end of the data when there is none).
    pub directory_offset: u64,
    /// Oddities found while parsing.
    pub notes: Vec<Note>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at.checked_add(8)?)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// The end record: where the central directory is, as recorded.
#[derive(Debug, Clone, Copy)]
struct End {
    /// File offset of the EOCD record.
    at: usize,
    entries: u64,
    cd_size: u64,
    cd_offset: u64,
    /// File offset of the zip64 end record, when present.
    zip64_at: Option<usize>,
}

/// Offsets of end-record signatures in the last 64 KiB, last first (an archive usually ends with its end record,
/// so the first candidate is normally the one used and the rest are never searched for).
fn end_candidates(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let last = data.len().checked_sub(EOCD_LEN);
    let lowest = data.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    last.into_iter()
        .flat_map(move |last| (lowest..=last).rev())
        .filter(move |&i| u32_at(data, i) == Some(EOCD_SIG))
}

fn read_end(data: &[u8], at: usize) -> Option<End> {
    let mut end = End {
        at,
        entries: u64::from(u16_at(data, at + 10)?),
        cd_size: u64::from(u32_at(data, at + 12)?),
        cd_offset: u64::from(u32_at(data, at + 16)?),
        zip64_at: None,
    };
    // A zip64 locator sits right before the end record.
    if at >= 20 && u32_at(data, at - 20) == Some(ZIP64_LOCATOR_SIG) {
        let rec = u64_at(data, at - 20 + 8)?;
        // The recorded offset may be off by the prefix length; the record normally sits right
        // before the locator, so look there too.
        let guesses = [Some(rec), (at as u64).checked_sub(20 + 56)];
        for g in guesses.into_iter().flatten() {
            let g = usize::try_from(g).ok()?;
            if u32_at(data, g) == Some(ZIP64_EOCD_SIG) {
                end.entries = u64_at(data, g + 32)?;
                end.cd_size = u64_at(data, g + 40)?;
                end.cd_offset = u64_at(data, g + 48)?;
                end.zip64_at = Some(g);
                break;
            }
        }
    }
    Some(end)
}

impl<'a> Archive<'a> {
    /// Parse the archive in `data`. Fails only when neither an end record nor a local header
    /// can be found; everything else is a [`Note`].
    pub fn parse(data: &'a [u8], max_members: usize) -> Result<Archive<'a>, ZipError> {
        let mut last_err = None;
        for at in end_candidates(data) {
            let Some(end) = read_end(data, at) else {
                continue;
            };
            match Self::from_end(data, end, max_members) {
                Ok(a) => return Ok(a),
                Err(e) => last_err = Some(e),
            }
        }
        // No usable central directory: walk the local headers as a streaming reader would.
        match Self::from_local_headers(data, max_members) {
            Ok(mut a) => {
                let why = match &last_err {
                    Some(e) => format!("central directory unusable ({e})"),
                    None => "no end-of-central-directory record".to_string(),
                };
                a.notes.insert(0, Note {
                    offset: None,
                    member: None,
                    message: format!(
                        "{why}: torch and Python's zipfile refuse this archive; members were found by walking local headers"
                    ),
                });
                Ok(a)
            }
            Err(e) => Err(last_err.unwrap_or(e)),
        }
    }

    fn from_end(data: &'a [u8], end: End, max_members: usize) -> Result<Archive<'a>, ZipError> {
        let mut notes = Vec::new();
        // Where the directory really starts: as recorded (miniz), or right before the end record
        // (zipfile's correction for bytes prepended to the archive).
        let end_of_cd = end.zip64_at.unwrap_or(end.at) as u64;
        let actual = end_of_cd.checked_sub(end.cd_size);
        let mut shift = 0u64;
        let cd_start = if end.cd_size == 0 && end.entries == 0 {
            end_of_cd
        } else if u32_at(data, end.cd_offset as usize) == Some(CENTRAL_SIG)
            && end.cd_offset <= end_of_cd
        {
            end.cd_offset
        } else if let Some(a) = actual.filter(|&a| u32_at(data, a as usize) == Some(CENTRAL_SIG)) {
            shift = a - end.cd_offset.min(a);
            a
        } else {
            return Err(ZipError::Malformed(format!(
                "central directory not found at offset {} (end record at {})",
                end.cd_offset, end.at
            )));
        };
        if shift > 0 {
            notes.push(Note {
                offset: Some(0),
                member: None,
                message: format!(
                    "{shift} bytes before the archive: recorded offsets are shifted (self-extractor or polyglot layout)"
                ),
            });
        }
        if end.cd_offset.checked_add(end.cd_size) != Some(end_of_cd.saturating_sub(shift)) {
            notes.push(Note {
                offset: Some(end.at as u64),
                member: None,
                message: format!(
                    "end record says the central directory spans {}+{}, but it ends at {}",
                    end.cd_offset, end.cd_size, end_of_cd
                ),
            });
        }
        if end.at + EOCD_LEN < data.len() {
            let comment = u16_at(data, end.at + 20).unwrap_or(0) as usize;
            let extra =
                data.len() - (end.at + EOCD_LEN) - comment.min(data.len() - end.at - EOCD_LEN);
            if extra > 0 {
                notes.push(Note {
                    offset: Some((end.at + EOCD_LEN) as u64),
                    member: None,
                    message: format!("{extra} bytes after the end record"),
                });
            }
        }

        let mut entries = Vec::new();
        let mut pos = cd_start as usize;
        let cd_end = (cd_start + end.cd_size).min(data.len() as u64) as usize;
        while pos + 46 <= data.len() && u32_at(data, pos) == Some(CENTRAL_SIG) {
            if entries.len() >= max_members {
                notes.push(Note {
                    offset: Some(pos as u64),
                    member: None,
                    message: format!("more than {max_members} members; the rest are not scanned"),
                });
                break;
            }
            let (entry, next) = Self::central_entry(data, pos, entries.len(), shift)?;
            entries.push(entry);
            pos = next;
        }
        if entries.is_empty() && end.entries > 0 {
            return Err(ZipError::Malformed(format!(
                "end record lists {} members but the central directory has none",
                end.entries
            )));
        }
        if entries.len() as u64 != end.entries {
            notes.push(Note {
                offset: Some(end.at as u64),
                member: None,
                message: format!(
                    "end record lists {} members, central directory has {}",
                    end.entries,
                    entries.len()
                ),
            });
        }
        if pos != cd_end && !entries.is_empty() {
            notes.push(Note {
                offset: Some(pos as u64),
                member: None,
                message: "central directory size disagrees with its entries".into(),
            });
        }
        let mut a = Archive {
            data,
            entries,
            prefix_len: 0,
            directory_offset: cd_start,
            notes,
        };
        a.prefix_len = a
            .entries
            .iter()
            .map(|e| e.local_offset)
            .min()
            .unwrap_or(cd_start)
            .min(cd_start);
        if a.prefix_len > 0 && shift == 0 {
            a.notes.push(Note {
                offset: Some(0),
                member: None,
                message: format!(
                    "{} bytes before the first member: torch.load does not open this as a zip",
                    a.prefix_len
                ),
            });
        }
        a.check_names();
        Ok(a)
    }

    fn central_entry(
        data: &[u8],
        pos: usize,
        index: usize,
        shift: u64,
    ) -> Result<(Entry, usize), ZipError> {
        let trunc = || ZipError::Truncated(format!("central directory entry at {pos} is cut off"));
        let flags = u16_at(data, pos + 8).ok_or_else(trunc)?;
        let method = u16_at(data, pos + 10).ok_or_else(trunc)?;
        let crc32 = u32_at(data, pos + 16).ok_or_else(trunc)?;
        let mut csize = u64::from(u32_at(data, pos + 20).ok_or_else(trunc)?);
        let mut usize_ = u64::from(u32_at(data, pos + 24).ok_or_else(trunc)?);
        let n = u16_at(data, pos + 28).ok_or_else(trunc)? as usize;
        let e = u16_at(data, pos + 30).ok_or_else(trunc)? as usize;
        let c = u16_at(data, pos + 32).ok_or_else(trunc)? as usize;
        let mut local = u64::from(u32_at(data, pos + 42).ok_or_else(trunc)?);
        let name_bytes = data.get(pos + 46..pos + 46 + n).ok_or_else(trunc)?;
        let extra = data.get(pos + 46 + n..pos + 46 + n + e).ok_or_else(trunc)?;
        // Zip64 extra: only the fields whose 32-bit value is saturated are present, in order.
        let mut x = 0usize;
        while x + 4 <= extra.len() {
            let id = u16_at(extra, x).unwrap_or(0);
            let len = u16_at(extra, x + 2).unwrap_or(0) as usize;
            let body = extra.get(x + 4..x + 4 + len).unwrap_or(&[]);
            if id == 0x0001 {
                let mut k = 0usize;
                let mut take = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF {
                        if let Some(w) = u64_at(body, k) {
                            *v = w;
                            k += 8;
                        }
                    }
                };
                take(&mut usize_);
                take(&mut csize);
                take(&mut local);
            }
            x += 4 + len;
        }
        let entry = Entry {
            name: String::from_utf8_lossy(name_bytes).into_owned(),
            index,
            method,
            flags,
            crc32,
            compressed_size: csize,
            size: usize_,
            local_offset: local.saturating_add(shift),
        };
        Ok((entry, pos + 46 + n + e + c))
    }

    /// Members found by walking local headers from the first signature (no central directory).
    fn from_local_headers(data: &'a [u8], max_members: usize) -> Result<Archive<'a>, ZipError> {
        let first = find(data, &LOCAL_SIG.to_le_bytes(), 0).ok_or(ZipError::NotAZip)?;
        let mut entries = Vec::new();
        let mut notes = Vec::new();
        let mut pos = first;
        while u32_at(data, pos) == Some(LOCAL_SIG) && entries.len() < max_members {
            let Some(h) = LocalHeader::read(data, pos) else {
                break;
            };
            let start = pos + 30 + h.name.len() + h.extra_len;
            let mut csize = h.csize;
            if h.flags & flags::DATA_DESCRIPTOR != 0 && csize == 0 {
                // Size unknown from the header: the data end at the descriptor or next header.
                let next = [
                    &0x0807_4b50u32.to_le_bytes()[..],
                    &LOCAL_SIG.to_le_bytes()[..],
                    &CENTRAL_SIG.to_le_bytes()[..],
                ]
                .iter()
                .filter_map(|sig| find(data, sig, start))
                .min()
                .unwrap_or(data.len());
                csize = (next - start) as u64;
            }
            entries.push(Entry {
                name: String::from_utf8_lossy(h.name).into_owned(),
                index: entries.len(),
                method: h.method,
                flags: h.flags,
                crc32: h.crc32,
                compressed_size: csize,
                size: if h.method == STORED { csize } else { h.usize },
                local_offset: pos as u64,
            });
            let data_end = start.saturating_add(csize as usize).min(data.len());
            // Skip a data descriptor if one follows.
            pos = match find(data, &LOCAL_SIG.to_le_bytes(), data_end) {
                Some(p) => p,
                None => break,
            };
        }
        if entries.is_empty() {
            return Err(ZipError::NotAZip);
        }
        if first > 0 {
            notes.push(Note {
                offset: Some(0),
                member: None,
                message: format!("{first} bytes before the first local header"),
            });
        }
        let mut a = Archive {
            data,
            entries,
            prefix_len: first as u64,
            directory_offset: data.len() as u64,
            notes,
        };
        a.check_names();
        Ok(a)
    }

    /// Notes for names that several members share (case-insensitively, as torch looks them up).
    fn check_names(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for e in &self.entries {
            *seen.entry(e.name.to_lowercase()).or_default() += 1;
        }
        let mut dups: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
        dups.sort();
        for (name, n) in dups {
            self.notes.push(Note {
                offset: None,
                member: Some(name.clone()),
                message: format!(
                    "{n} members named '{name}' (ignoring case): readers disagree on which one they load; all are scanned"
                ),
            });
        }
    }

    /// The bytes the archive lives in.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Locate a member's data through its local header, noting where the local header disagrees
    /// with the central directory.
    pub fn span(&self, e: &Entry, notes: &mut Vec<Note>) -> Result<Span, ZipError> {
        let at = usize::try_from(e.local_offset)
            .map_err(|_| ZipError::Truncated("local header offset out of range".into()))?;
        if u32_at(self.data, at) != Some(LOCAL_SIG) {
            return Err(ZipError::Malformed(format!(
                "no local header at offset {at} (bad signature)"
            )));
        }
        let h = LocalHeader::read(self.data, at)
            .ok_or_else(|| ZipError::Truncated(format!("local header at {at} is cut off")))?;
        let mut odd = Vec::new();
        if h.name != e.name.as_bytes() && String::from_utf8_lossy(h.name) != e.name {
            odd.push(format!(
                "local header names it '{}'",
                String::from_utf8_lossy(h.name)
            ));
        }
        if h.method != e.method {
            odd.push(format!(
                "local header method {} but central directory method {}",
                h.method, e.method
            ));
        }
        if (h.flags ^ e.flags) & !flags::COMPRESSION_OPTIONS != 0 {
            odd.push(format!(
                "local header flags {:#06x} but central directory flags {:#06x}",
                h.flags, e.flags
            ));
        }
        if h.flags & flags::DATA_DESCRIPTOR == 0
            && (h.csize != 0 || h.crc32 != 0)
            && h.csize != 0xFFFF_FFFF
            && (h.csize != e.compressed_size || h.crc32 != e.crc32)
        {
            odd.push("local header sizes or CRC differ from the central directory".into());
        }
        if !odd.is_empty() {
            notes.push(Note {
                offset: Some(at as u64),
                member: Some(e.name.clone()),
                message: odd.join("; "),
            });
        }
        let start = at as u64 + 30 + h.name.len() as u64 + h.extra_len as u64;
        let end = start.checked_add(e.compressed_size);
        match end {
            Some(end) if end <= self.data.len() as u64 => Ok(Span {
                start,
                len: e.compressed_size,
            }),
            _ => Err(ZipError::Truncated(format!(
                "data of {} bytes at offset {start} run past the end of the file",
                e.compressed_size
            ))),
        }
    }

    /// The raw (possibly compressed) bytes of a member.
    pub fn raw(&self, e: &Entry, notes: &mut Vec<Note>) -> Result<&'a [u8], ZipError> {
        let s = self.span(e, notes)?;
        Ok(&self.data[s.start as usize..(s.start + s.len) as usize])
    }

    /// The uncompressed bytes of a member: a slice of the input when stored, inflated with at
    /// most `budget` bytes of output when deflated. Encrypted members and other methods are
    /// [`ZipError::Unsupported`]. A size or CRC that differs from the record is a note, not an
    /// error (torch does not check CRCs).
    pub fn read(
        &self,
        e: &Entry,
        budget: u64,
        notes: &mut Vec<Note>,
    ) -> Result<Cow<'a, [u8]>, ZipError> {
        if e.is_encrypted() {
            return Err(ZipError::Unsupported("member is encrypted".into()));
        }
        let raw = self.raw(e, notes)?;
        let out: Cow<'a, [u8]> = match e.method {
            STORED => Cow::Borrowed(raw),
            DEFLATED => {
                let mut out = Vec::new();
                let mut dec = flate2::read::DeflateDecoder::new(raw).take(budget.saturating_add(1));
                dec.read_to_end(&mut out).map_err(|err| {
                    ZipError::Malformed(format!("deflate stream is corrupt: {err}"))
                })?;
                if out.len() as u64 > budget {
                    return Err(ZipError::Budget(budget));
                }
                Cow::Owned(out)
            }
            m => {
                return Err(ZipError::Unsupported(format!(
                    "compression method {m} ({}) is not supported by torch's reader",
                    method_name(m)
                )))
            }
        };
        if out.len() as u64 != e.size {
            notes.push(Note {
                offset: Some(e.local_offset),
                member: Some(e.name.clone()),
                message: format!(
                    "member holds {} bytes but the central directory records {}",
                    out.len(),
                    e.size
                ),
            });
        }
        if e.crc32 != 0 || !out.is_empty() {
            let crc = crc32fast::hash(&out);
            // torch can write CRC 0 for every member (set_crc32_options(False)): not an oddity.
            if crc != e.crc32 && e.crc32 != 0 {
                notes.push(Note {
                    offset: Some(e.local_offset),
                    member: Some(e.name.clone()),
                    message: format!(
                        "CRC-32 mismatch (recorded {:#010x}, actual {crc:#010x}): Python's zipfile refuses this member, torch loads it",
                        e.crc32
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The first `n` uncompressed bytes of a member (fewer if it is shorter), without inflating
    /// the rest.
    pub fn head(&self, e: &Entry, n: usize, notes: &mut Vec<Note>) -> Result<Vec<u8>, ZipError> {
        if e.is_encrypted() {
            return Err(ZipError::Unsupported("member is encrypted".into()));
        }
        let raw = self.raw(e, notes)?;
        match e.method {
            STORED => Ok(raw[..raw.len().min(n)].to_vec()),
            DEFLATED => {
                let mut out = Vec::new();
                let mut dec = flate2::read::DeflateDecoder::new(raw).take(n as u64);
                dec.read_to_end(&mut out).map_err(|err| {
                    ZipError::Malformed(format!("deflate stream is corrupt: {err}"))
                })?;
                Ok(out)
            }
            m => Err(ZipError::Unsupported(format!(
                "compression method {m} ({})",
                method_name(m)
            ))),
        }
    }
}

/// Name of a zip compression method.
pub fn method_name(m: u16) -> &'static str {
    match m {
        0 => "stored",
        8 => "deflate",
        9 => "deflate64",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        99 => "AES encryption",
        _ => "unknown",
    }
}

struct LocalHeader<'a> {
    flags: u16,
    method: u16,
    crc32: u32,
    csize: u64,
    usize: u64,
    name: &'a [u8],
    extra_len: usize,
}

impl<'a> LocalHeader<'a> {
    fn read(data: &'a [u8], at: usize) -> Option<LocalHeader<'a>> {
        let n = u16_at(data, at + 26)? as usize;
        let e = u16_at(data, at + 28)? as usize;
        let name = data.get(at + 30..at + 30 + n)?;
        if at + 30 + n + e > data.len() {
            return None;
        }
        Some(LocalHeader {
            flags: u16_at(data, at + 6)?,
            method: u16_at(data, at + 8)?,
            crc32: u32_at(data, at + 14)?,
            csize: u64::from(u32_at(data, at + 18)?),
            usize: u64::from(u32_at(data, at + 22)?),
            name,
            extra_len: e,
        })
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// True when `data` ends with a usable zip end record (for content whose start is not a zip).
pub fn has_end_record(data: &[u8]) -> bool {
    end_candidates(data)
        .any(|at| read_end(data, at).is_some_and(|end| Archive::from_end(data, end, 1).is_ok()))
}

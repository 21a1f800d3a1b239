//! A lenient, zero-copy zip reader (PKWARE APPNOTE subset: stored and deflated members, zip64).
//!
//! It is written to accept at least what torch's reader (miniz) and Python's `zipfile` accept, so
//! that nothing a loader would open escapes the scan: it finds the end record from the end of the
//! file, takes member sizes and offsets from the central directory, tolerates bytes before the
//! first header, wrong or zero CRCs, local headers that disagree with the central directory, odd
//! flag bits and duplicate names. Every such oddity is recorded as a [`Note`] for the caller to
//! report. Member data are slices of the input (stored) or inflated under a byte budget
//! (deflated); nothing is read that the caller does not ask for.

use crate::format::access::{find_from, le_u16, le_u32, le_u64, Missing, RandomAccess};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
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
    /// The members were found by walking local headers (no usable central directory): what the
    /// archive holds then depends on every byte of it.
    pub walked: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRecord {
    /// File offset of the end record.
    pub at: u64,
    /// Members, as recorded.
    pub entries: u64,
    /// Size of the central directory, as recorded.
    pub cd_size: u64,
    /// Offset of the central directory, as recorded.
    pub cd_offset: u64,
    /// File offset of the zip64 end record, when present.
    pub zip64_at: Option<u64>,
}

impl EndRecord {
    /// The range holding the central directory wherever a reader may take it to start (as
    /// recorded, or right before the end records when bytes were prepended), up to the end
    /// records.
    pub fn directory_span(&self) -> (u64, u64) {
        let end_of_cd = self.zip64_at.unwrap_or(self.at);
        let lo = match end_of_cd.checked_sub(self.cd_size) {
            Some(a) if self.cd_offset <= end_of_cd => a.min(self.cd_offset),
            Some(a) => a,
            None => self.cd_offset.min(end_of_cd),
        };
        (lo, end_of_cd)
    }
}

/// Offsets of end-record signatures in the last 64 KiB that `src` has, last first (an archive
/// usually ends with its end record, so the first candidate is normally the one used and the
/// rest are never searched for).
pub fn end_candidates<S: RandomAccess + ?Sized>(src: &S) -> impl Iterator<Item = u64> + '_ {
    let size = src.size();
    let last = size.checked_sub(EOCD_LEN as u64);
    let lowest = end_search_start(size);
    last.into_iter()
        .flat_map(move |last| (lowest..=last).rev())
        .filter(move |&i| src.get(i, i + 4).is_ok_and(|b| b == EOCD_SIG.to_le_bytes()))
}

/// Where the search for end records in an input of `size` bytes starts: an end record is in
/// the last `22 + 65535` bytes (its comment is at most 65535 bytes).
pub fn end_search_start(size: u64) -> u64 {
    size.saturating_sub((EOCD_LEN + MAX_COMMENT) as u64)
}

/// The end record at `at` (and the zip64 end record it points to). `Ok(None)` when cut off.
pub fn read_end<S: RandomAccess + ?Sized>(src: &S, at: u64) -> Result<Option<EndRecord>, Missing> {
    let rec = src.get(at, at + EOCD_LEN as u64)?;
    let (Some(entries), Some(cd_size), Some(cd_offset)) =
        (le_u16(rec, 10), le_u32(rec, 12), le_u32(rec, 16))
    else {
        return Ok(None);
    };
    let mut end = EndRecord {
        at,
        entries: u64::from(entries),
        cd_size: u64::from(cd_size),
        cd_offset: u64::from(cd_offset),
        zip64_at: None,
    };
    // A zip64 locator sits right before the end record.
    let Some(locator_at) = at.checked_sub(20) else {
        return Ok(Some(end));
    };
    let locator = src.get(locator_at, at)?;
    if le_u32(locator, 0) != Some(ZIP64_LOCATOR_SIG) {
        return Ok(Some(end));
    }
    let Some(recorded) = le_u64(locator, 8) else {
        return Ok(None);
    };
    // The recorded offset may be off by the prefix length; the record normally sits right
    // before the locator, so look there too.
    for g in [Some(recorded), locator_at.checked_sub(56)]
        .into_iter()
        .flatten()
    {
        if g.checked_add(56).is_none_or(|e| e > src.size()) {
            continue;
        }
        let r = src.get(g, g + 56)?;
        if le_u32(r, 0) == Some(ZIP64_EOCD_SIG) {
            let (Some(n), Some(size), Some(offset)) = (le_u64(r, 32), le_u64(r, 40), le_u64(r, 48))
            else {
                return Ok(None);
            };
            end.entries = n;
            end.cd_size = size;
            end.cd_offset = offset;
            end.zip64_at = Some(g);
            break;
        }
    }
    Ok(Some(end))
}

/// The end record of `data`, which never misses.
fn end_in(data: &[u8], at: u64) -> Option<EndRecord> {
    read_end(data, at).ok().flatten()
}

impl<'a> Archive<'a> {
    /// Parse the archive in `data`. Fails only when neither an end record nor a local header
    /// can be found; everything else is a [`Note`].
    pub fn parse(data: &'a [u8], max_members: usize) -> Result<Archive<'a>, ZipError> {
        let mut last_err = None;
        for at in end_candidates(data) {
            let Some(end) = end_in(data, at) else {
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

    fn from_end(
        data: &'a [u8],
        end: EndRecord,
        max_members: usize,
    ) -> Result<Archive<'a>, ZipError> {
        let mut notes = Vec::new();
        // Where the directory really starts: as recorded (miniz), or right before the end record
        // (zipfile's correction for bytes prepended to the archive).
        let end_of_cd = end.zip64_at.unwrap_or(end.at);
        // The end record lies inside `data` (it was read from there).
        let end_at = end.at as usize;
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
                end.cd_offset, end_at
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
                offset: Some(end.at),
                member: None,
                message: format!(
                    "end record says the central directory spans {}+{}, but it ends at {}",
                    end.cd_offset, end.cd_size, end_of_cd
                ),
            });
        }
        if end_at + EOCD_LEN < data.len() {
            let comment = u16_at(data, end_at + 20).unwrap_or(0) as usize;
            let extra =
                data.len() - (end_at + EOCD_LEN) - comment.min(data.len() - end_at - EOCD_LEN);
            if extra > 0 {
                notes.push(Note {
                    offset: Some((end_at + EOCD_LEN) as u64),
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
                offset: Some(end.at),
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
            walked: false,
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
        let first = find_from(data, &LOCAL_SIG.to_le_bytes(), 0).ok_or(ZipError::NotAZip)?;
        let mut entries = Vec::new();
        let mut notes = Vec::new();
        let mut pos = first;
        while u32_at(data, pos) == Some(LOCAL_SIG) && entries.len() < max_members {
            let Some(h) = LocalHeader::at(data, pos) else {
                break;
            };
            let start = h.data_start as usize;
            let mut csize = h.csize;
            if h.flags & flags::DATA_DESCRIPTOR != 0 && csize == 0 {
                // Size unknown from the header: the data end at the descriptor or next header.
                let next = [
                    &DESCRIPTOR_SIG.to_le_bytes()[..],
                    &LOCAL_SIG.to_le_bytes()[..],
                    &CENTRAL_SIG.to_le_bytes()[..],
                ]
                .iter()
                .filter_map(|sig| find_from(data, sig, start))
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
            pos = match find_from(data, &LOCAL_SIG.to_le_bytes(), data_end) {
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
            walked: true,
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
        let h = LocalHeader::at(self.data, at)
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
        let start = h.data_start;
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

    /// What `image` (the part of the input at hand: a remote file's fetched ranges) lacks for
    /// reading member `e`: all of it, or with `head`, its first `head` uncompressed bytes (as
    /// [`Archive::head`] reads them). The range returned starts at the first byte missing and
    /// covers what the read needs from there (for a deflated head, at least 16 KiB more of the
    /// stream, or twice what was there). `None` when nothing is missing, or the member cannot
    /// be read anyway (its error is the read's to report).
    pub fn missing_in(
        &self,
        image: &(impl RandomAccess + ?Sized),
        e: &Entry,
        head: Option<usize>,
    ) -> Option<Missing> {
        if let Err(m) = LocalHeader::read(image, e.local_offset) {
            // The rest of the header and the data after it are asked for at once (the local
            // extra field's length is not known yet: a margin covers the usual ones).
            let data = match (head, e.method) {
                (Some(n), STORED) => n as u64,
                (Some(_), _) => 16 * 1024,
                (None, _) => e.compressed_size,
            };
            let end = (e.local_offset + 30 + e.name.len() as u64 + 256)
                .saturating_add(data.min(e.compressed_size))
                .min(image.size());
            return Some(Missing {
                start: m.start,
                end: end.max(m.end),
            });
        }
        let s = self.span(e, &mut Vec::new()).ok()?;
        let end = s.start.saturating_add(s.len);
        let need_end = match (head, e.method) {
            (None, _) => end,
            (Some(n), STORED) => s.start.saturating_add(n as u64).min(end),
            (Some(_), DEFLATED) => end,
            // Other methods are not read.
            (Some(_), _) => return None,
        };
        let Err(m) = image.get(s.start, need_end) else {
            return None;
        };
        if let (Some(n), DEFLATED) = (head, e.method) {
            // Enough of the stream may be there for the head already.
            let there = &self.data[s.start as usize..m.start as usize];
            let mut out = Vec::new();
            let read = flate2::read::DeflateDecoder::new(there)
                .take(n as u64)
                .read_to_end(&mut out);
            if read.is_ok() && out.len() >= n {
                return None;
            }
            let more = (m.start - s.start).max(16 * 1024);
            return Some(Missing {
                start: m.start,
                end: m.start.saturating_add(more).min(end),
            });
        }
        Some(Missing {
            start: m.start,
            end: need_end,
        })
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

/// A local header: the fields a reader needs, and where the member's data start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHeader<'a> {
    /// General-purpose flags.
    pub flags: u16,
    /// Compression method.
    pub method: u16,
    /// CRC-32, as recorded (0 when a data descriptor follows the data).
    pub crc32: u32,
    /// Compressed size, as recorded (32 bits: 0xFFFFFFFF means zip64).
    pub csize: u64,
    /// Uncompressed size, as recorded.
    pub usize: u64,
    /// The member's name.
    pub name: &'a [u8],
    /// Offset of the member's data.
    pub data_start: u64,
}

/// Bytes of a local header before the member's name.
pub const LOCAL_HEADER_LEN: u64 = 30;

/// Where the data of the member whose local header starts at `at` begin (after the header's own
/// name and extra field, as torch's `getRecordOffset` computes it), from the header's first
/// [`LOCAL_HEADER_LEN`] bytes; `None` when they are no local header.
pub fn local_data_start(fixed: &[u8], at: u64) -> Option<u64> {
    if le_u32(fixed, 0) != Some(LOCAL_SIG) {
        return None;
    }
    let (n, e) = (le_u16(fixed, 26)?, le_u16(fixed, 28)?);
    Some(at + LOCAL_HEADER_LEN + u64::from(n) + u64::from(e))
}

impl<'a> LocalHeader<'a> {
    /// The local header at `at`; `Ok(None)` when there is none (another signature) or it is
    /// cut off by the end of the input.
    pub fn read<S: RandomAccess + ?Sized>(
        src: &'a S,
        at: u64,
    ) -> Result<Option<LocalHeader<'a>>, Missing> {
        let fixed = src.get(at, at + LOCAL_HEADER_LEN)?;
        let Some(data_start) = local_data_start(fixed, at) else {
            return Ok(None);
        };
        let (Some(flags), Some(method), Some(crc32), Some(csize), Some(usize), Some(n)) = (
            le_u16(fixed, 6),
            le_u16(fixed, 8),
            le_u32(fixed, 14),
            le_u32(fixed, 18),
            le_u32(fixed, 22),
            le_u16(fixed, 26),
        ) else {
            return Ok(None);
        };
        let name_at = at + LOCAL_HEADER_LEN;
        if data_start > src.size() {
            return Ok(None);
        }
        let name = src.get(name_at, name_at + u64::from(n))?;
        Ok(Some(LocalHeader {
            flags,
            method,
            crc32,
            csize: u64::from(csize),
            usize: u64::from(usize),
            name,
            data_start,
        }))
    }

    /// The local header at `at` of `data`, which never misses.
    fn at(data: &'a [u8], at: usize) -> Option<LocalHeader<'a>> {
        LocalHeader::read(data, at as u64).ok().flatten()
    }
}

/// Bytes to keep from one window to the next when searching for a member's end with
/// [`described_member_end`]: the longest data descriptor (24) and a signature less one byte.
pub const DESCRIPTOR_BACK: usize = 24 + 3;

/// Where a member whose size only its data descriptor gives (flag bit 3, what `torch.save`
/// writes when it streams) ends, for a reader that sees the file as a stream: the first `i` in
/// `w` (which starts at file offset `w0`) where a local header or central directory signature
/// starts right after a data descriptor of the member whose data start at `data`, with or
/// without its signature, with 32- or 64-bit sizes, its compressed size equal to the bytes
/// between `data` and the descriptor.
pub fn described_member_end(w: &[u8], w0: u64, data: u64) -> Option<usize> {
    let end = w.len().saturating_sub(3);
    let from = 12.min(w.len());
    let mut candidates = memchr::memmem::find_iter(&w[from..], b"PK").map(|i| i + from);
    candidates.find(|&i| {
        if i >= end || !matches!(le_u32(w, i), Some(LOCAL_SIG | CENTRAL_SIG)) {
            return false;
        }
        // (descriptor length, has signature, 64-bit sizes)
        [
            (16, true, false),
            (24, true, true),
            (12, false, false),
            (20, false, true),
        ]
        .iter()
        .any(|&(len, sig, wide)| {
            let Some(p) = i.checked_sub(len) else {
                return false;
            };
            let desc = w0 + p as u64;
            if desc < data || (sig && le_u32(w, p) != Some(DESCRIPTOR_SIG)) {
                return false;
            }
            let at = p + if sig { 8 } else { 4 };
            let csize = if wide {
                le_u64(w, at)
            } else {
                le_u32(w, at).map(u64::from)
            };
            csize == Some(desc - data)
        })
    })
}

/// True when `data` starts as a zip archive: a local header, or the end record of an empty
/// archive.
pub fn starts_like(data: &[u8]) -> bool {
    starts_with_local_header(data) || data.starts_with(&EOCD_SIG.to_le_bytes())
}

/// True when `data` starts with a local file header (`PK\x03\x04`).
pub fn starts_with_local_header(data: &[u8]) -> bool {
    data.starts_with(&LOCAL_SIG.to_le_bytes())
}

/// True when `data` ends with a usable zip end record (for content whose start is not a zip).
pub fn has_end_record(data: &[u8]) -> bool {
    end_candidates(data)
        .any(|at| end_in(data, at).is_some_and(|end| Archive::from_end(data, end, 1).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::access::Partial;

    /// An empty zip64 archive after `prefix` bytes: zip64 end record, locator, end record.
    fn zip64_tail(prefix: usize, cd_size: u64, cd_offset: u64) -> Vec<u8> {
        let mut d = vec![0u8; prefix];
        let rec = d.len() as u64;
        d.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        d.extend_from_slice(&44u64.to_le_bytes());
        d.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        d.extend_from_slice(&0u64.to_le_bytes()); // entries on this disk
        d.extend_from_slice(&7u64.to_le_bytes()); // entries
        d.extend_from_slice(&cd_size.to_le_bytes());
        d.extend_from_slice(&cd_offset.to_le_bytes());
        d.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&rec.to_le_bytes());
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&EOCD_SIG.to_le_bytes());
        d.extend_from_slice(&[0xFF; 8]);
        d.extend_from_slice(&[0xFF; 8]);
        d.extend_from_slice(&0u16.to_le_bytes());
        d
    }

    #[test]
    fn the_end_records_are_read_once_for_whole_and_partial_inputs() {
        let d = zip64_tail(1000, 300, 700);
        let at = end_candidates(&d[..]).next().unwrap();
        assert_eq!(at, d.len() as u64 - 22);
        let end = read_end(&d[..], at).unwrap().unwrap();
        assert_eq!(end.zip64_at, Some(1000));
        assert_eq!((end.entries, end.cd_size, end.cd_offset), (7, 300, 700));
        assert_eq!(end.directory_span(), (700, 1000));
        // With only the end record fetched, the reader asks for the locator, then the record.
        let tail = d.len() as u64 - 22;
        let p = Partial {
            data: &d,
            have: (tail, d.len() as u64),
        };
        assert_eq!(
            read_end(&p, at),
            Err(Missing {
                start: tail - 20,
                end: tail
            })
        );
        let p = Partial {
            data: &d,
            have: (tail - 20, d.len() as u64),
        };
        assert_eq!(
            read_end(&p, at),
            Err(Missing {
                start: 1000,
                end: 1056
            })
        );
        let p = Partial {
            data: &d,
            have: (1000, d.len() as u64),
        };
        assert_eq!(read_end(&p, at), Ok(Some(end)));
        // Offsets shifted by bytes prepended to the archive: the span covers both where the
        // directory is recorded and where it would sit right before the end records.
        let shifted = read_end(&zip64_tail(1000, 300, 200)[..], at)
            .unwrap()
            .unwrap();
        assert_eq!(shifted.directory_span(), (200, 1000));
    }

    #[test]
    fn a_local_header_is_read_through_what_is_fetched() {
        let mut d = LOCAL_SIG.to_le_bytes().to_vec();
        d.extend_from_slice(&[20, 0, 8, 0, 8, 0, 0, 0, 0, 0]);
        d.extend_from_slice(&[1, 2, 3, 4, 10, 0, 0, 0, 20, 0, 0, 0]);
        d.extend_from_slice(&[5, 0, 3, 0]);
        d.extend_from_slice(b"a.pklXYZ0123456789");
        let h = LocalHeader::read(&d[..], 0).unwrap().unwrap();
        assert_eq!((h.flags, h.method, h.csize, h.usize), (8, 8, 10, 20));
        assert_eq!(
            (h.name, h.data_start, h.crc32),
            (&b"a.pkl"[..], 38, 0x0403_0201)
        );
        let p = Partial {
            data: &d,
            have: (0, 30),
        };
        assert_eq!(
            LocalHeader::read(&p, 0),
            Err(Missing { start: 30, end: 35 })
        );
        assert_eq!(LocalHeader::read(&d[..37], 0), Ok(None), "cut off");
        assert_eq!(LocalHeader::read(&d[..], 1), Ok(None), "no signature");
    }

    #[test]
    fn a_described_member_ends_where_its_descriptor_says() {
        // Data of 20 bytes from offset 100, a signed 32-bit descriptor, then a local header.
        let mut w = vec![b'x'; 20];
        w.extend_from_slice(&DESCRIPTOR_SIG.to_le_bytes());
        w.extend_from_slice(&[0; 4]);
        w.extend_from_slice(&20u32.to_le_bytes());
        w.extend_from_slice(&20u32.to_le_bytes());
        w.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        assert_eq!(described_member_end(&w, 100, 100), Some(36));
        // A descriptor that records another size is not the end.
        assert_eq!(described_member_end(&w, 100, 90), None);
    }
}

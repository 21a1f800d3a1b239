//! What to fetch so that the scanner, run over the sparse image, reads only fetched bytes.
//!
//! The readers are the scanner's own, run over what has been fetched: the zip and GGUF readers
//! report the ranges they miss; the pickle scan (`Scanner::scan_pickles`), the legacy torch
//! and tar storage walks say where a prefix cut them off. This module decides from that what to
//! fetch:
//! * zip: the end records and the central directory; every member named like a pickle, whole;
//!   for every other member that is not a tensor storage named by a pickle's persistent ids,
//!   its local header and first bytes, and the whole member when those bytes are a pickle or a
//!   container. Storage members are never read (the scanner judges them from the central
//!   directory alone), nor TorchScript `code/` sources (reported from their names).
//! * safetensors: the 8-byte length and the JSON header. GGUF: the header, walked up to the
//!   end of the tensor infos. numpy `.npy` of plain dtype: the header.
//! * protocol 2+ pickles, uncompressed joblib dumps and legacy torch files: read as a stream,
//!   in growing chunks, as far as the scanner's run goes; bytes the run skips (large
//!   `BINBYTES*`/`BYTEARRAY8` payloads, joblib's inline arrays, legacy raw storages) are left out
//!   but for their first bytes, and fetching stops once a dangerous finding makes the verdict
//!   final.
//! * numpy `.npy` object arrays: the header, then the pickle read as a stream (as above).
//! * tar archives: the headers and members read as a stream; the raw storages of torch's
//!   oldest format (its `storages` member) are stepped over by their element counts.
//! * everything else (protocol 0/1 pickles, compressed files): the whole file.
//!
//! Whatever cannot be matched exactly falls back to fetching the whole file under the budget.

use super::range::{FetchError, Source, Sparse};
use crate::container;
use crate::finding::Verdict;
use crate::format::access::{le_u64, Missing};
use crate::format::detect::{detect, Kind};
use crate::format::joblib::JoblibHooks;
use crate::format::tar::{self, LongName, Step};
use crate::format::torch::{self, is_pickle_name};
use crate::format::zip::{self, Archive, Entry, DEFLATED, STORED};
use crate::pickle::opcode::Opcode;
use crate::pickle::vm::{EventKind, NoHooks};
use crate::scan::{PickleScan, Scanner, StreamEnd};
use std::collections::HashSet;
use std::io::Read;

/// Bytes of a member the zip scanner sniffs (`torch.rs` HEAD).
const MEMBER_HEAD: u64 = 64;
/// Compressed bytes fetched to inflate a deflated member's first bytes.
const DEFLATE_HEAD: u64 = 16 * 1024;
/// Extra-field bytes assumed in a local header before it is fetched (torch pads with up to
/// 63 bytes plus zip64 fields).
const LOCAL_SLACK: u64 = 256;

/// Where a zip's central directory is (see [`zip::EndRecord::directory_span`]), from the last
/// end record in the fetched tail, read by the zip reader itself. `Err`: the end records point at
/// bytes to fetch first (a zip64 end record elsewhere).
pub fn directory(s: &Sparse) -> Result<Option<(u64, u64)>, Missing> {
    let Some(at) = zip::end_candidates(s).next() else {
        return Ok(None);
    };
    Ok(zip::read_end(s, at)?.map(|end| end.directory_span()))
}

/// End of the safetensors header (`8 + n`) when the first bytes look like one: a plausible
/// length, and a header whose first byte other than white space, if fetched, is `{` (so that
/// other content whose first eight bytes happen to read as a small length, such as a gzip
/// file with no time stamp, does not cost a fetch of that length).
pub fn safetensors_header_end(s: &Sparse) -> Option<u64> {
    let d = s.bytes();
    if !s.has(0, 8) {
        return None;
    }
    let n = le_u64(d, 0)?;
    let end = n.checked_add(8)?;
    if !(2..=crate::format::safetensors::MAX_HEADER_SIZE).contains(&n) || end > d.len() as u64 {
        return None;
    }
    let fetched = &d[8..end.min(s.prefix().max(8)) as usize];
    match fetched.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(&b) if b != b'{' => None,
        _ => Some(end),
    }
}

/// What a pickle machine run over the fetched prefix says about the polyglot check the scanner
/// runs on safetensors and GGUF files (it runs the file as a pickle, to see if it acts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// The run stops inside the prefix on an error of its own, without doing anything: the
    /// scanner's run over the whole file stops at the same place, so the rest is not needed.
    Inert,
    /// The run reads past the prefix (a text opcode still looking for its newline, say).
    NeedMore,
    /// The run completes or acts: the scanner goes on to scan the whole file as a pickle.
    Whole,
}

/// The scanner's run over a fetched prefix of a pickle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRun {
    /// Where it ended.
    pub end: StreamEnd,
    /// A dangerous finding was made: no later byte can lower the verdict.
    pub dangerous: bool,
}

impl PrefixRun {
    /// The run of the scanner's own pickle scan.
    fn of(scan: &PickleScan) -> PrefixRun {
        PrefixRun {
            end: scan.end,
            dangerous: scan
                .findings
                .iter()
                .any(|f| f.severity.verdict() == Verdict::Dangerous),
        }
    }
}

/// Run the pickle streams of `prefix` as the container scanner runs a plain pickle or joblib
/// file (every stream, joblib's hooks), and say where the run ended.
pub fn pickle_prefix(scanner: &Scanner, prefix: &[u8]) -> PrefixRun {
    PrefixRun::of(&scanner.scan_pickles(prefix, &mut JoblibHooks::new(prefix)))
}

/// [`pickle_prefix`] for torch's legacy format: the five pickles, then the raw storages,
/// stepped over by their recorded sizes; bytes after the last storage are read whole.
pub fn legacy_prefix(scanner: &Scanner, prefix: &[u8]) -> PrefixRun {
    let (end, dangerous) = container::torch::legacy_reads(scanner, prefix);
    PrefixRun { end, dangerous }
}

/// [`pickle_prefix`] for a numpy `.npy` object array: the header, then the pickles after it
/// (run as the npy scanner runs them, without joblib's hooks).
pub fn npy_prefix(scanner: &Scanner, prefix: &[u8]) -> PrefixRun {
    let Ok(h) = crate::format::npy::parse_header(prefix) else {
        // Only a header that parsed from the first bytes is streamed: read on.
        return PrefixRun {
            end: StreamEnd::Cut { need: None },
            dangerous: false,
        };
    };
    if !h.has_object {
        // The scanner reads nothing past the header of a plain array.
        return PrefixRun {
            end: StreamEnd::Stopped {
                offset: h.data_start as u64,
            },
            dangerous: false,
        };
    }
    let at = h.data_start as u64;
    let run = PrefixRun::of(&scanner.scan_pickles(&prefix[h.data_start..], &mut NoHooks));
    let end = match run.end {
        StreamEnd::AtEnd => StreamEnd::AtEnd,
        StreamEnd::Cut { need } => StreamEnd::Cut {
            need: need.map(|n| n + at),
        },
        StreamEnd::Stopped { offset } => StreamEnd::Stopped {
            offset: offset + at,
        },
    };
    PrefixRun {
        end,
        dangerous: run.dangerous,
    }
}

/// [`pickle_prefix`] for a tar archive, as the tar scanner reads it: headers, long-name
/// records and members whole, but for members named `storages` (torch's oldest format), whose
/// raw storage bytes are stepped over by their element counts. Whether the archive is torch's
/// is only known at its end: [`tar_followed`] then checks that the walk was the scanner's.
pub fn tar_prefix(scanner: &Scanner, prefix: &[u8]) -> PrefixRun {
    let len = prefix.len() as u64;
    let mut pos = 0u64;
    let mut long = LongName::default();
    let mut members = 0usize;
    let end = loop {
        if pos + 512 > len {
            break StreamEnd::Cut { need: None };
        }
        let h = match tar::step(prefix, pos as usize) {
            Step::End => break StreamEnd::Stopped { offset: pos },
            Step::Bad(_) => break StreamEnd::Stopped { offset: pos },
            Step::Header(h) => h,
        };
        let start = pos + 512;
        let (Some(end), Some(next)) = (start.checked_add(h.size), tar::next_header(pos, h.size))
        else {
            break StreamEnd::Stopped { offset: pos };
        };
        let have = &prefix[start.min(len) as usize..end.min(len) as usize];
        if !tar::is_member(h.typeflag) {
            if end > len {
                break StreamEnd::Cut { need: None };
            }
            long.record(h.typeflag, have);
        } else {
            if members >= scanner.limits.max_members {
                break StreamEnd::Stopped { offset: pos };
            }
            members += 1;
            if long.member(h.name) == "storages" {
                let reads = container::torch::tar_storages_reads(scanner, have, h.size);
                if let container::torch::MemberReads::Cut { need } = reads {
                    break StreamEnd::Cut {
                        need: need.map(|n| n + start),
                    };
                }
            } else if end > len {
                break StreamEnd::Cut { need: None };
            }
        }
        pos = next;
    };
    PrefixRun {
        end,
        dangerous: false,
    }
}

/// True when a tar read as [`tar_prefix`] walks it kept everything the scanner reads: in
/// torch's format the scanner steps over raw storages as the walk did; in any other archive it
/// reads a `storages` member whole.
pub fn tar_followed(scanner: &Scanner, image: &Sparse) -> bool {
    let listing = tar::list(image.bytes(), scanner.limits.max_members);
    tar::is_torch(&listing)
        || listing
            .members
            .iter()
            .all(|m| image.has(m.offset, m.offset + m.data.len() as u64))
}

/// Judge the fetched prefix of `s`; see [`Prefix`].
pub fn polyglot_prefix(scanner: &Scanner, s: &Sparse) -> Prefix {
    let d = s.bytes();
    let Some(&first) = d.first() else {
        return Prefix::Inert;
    };
    if Opcode::from_byte(first).is_none() {
        return Prefix::Inert;
    }
    let prefix = &d[..s.prefix() as usize];
    let (vm, run) = scanner.run_one(prefix, &mut NoHooks);
    let acts = vm
        .events()
        .iter()
        .any(|e| !matches!(e.kind, EventKind::Import | EventKind::FrameAnomaly));
    match run.error {
        _ if acts => Prefix::Whole,
        Some(e) if e.is_truncation() => Prefix::NeedMore,
        Some(_) => Prefix::Inert,
        None => Prefix::Whole,
    }
}

/// True when the prefix is [`Prefix::Inert`].
pub fn inert_prefix(scanner: &Scanner, s: &Sparse) -> bool {
    polyglot_prefix(scanner, s) == Prefix::Inert
}

/// File offset of a member's data, from its local header when fetched.
fn data_start(s: &Sparse, e: &Entry) -> Option<u64> {
    zip::LocalHeader::read(s, e.local_offset)
        .ok()
        .flatten()
        .map(|h| h.data_start)
}

/// The range holding a member's local header and its first `n` data bytes.
fn member_range(s: &Sparse, e: &Entry, n: u64) -> (u64, u64) {
    let lo = e.local_offset;
    let start = data_start(s, e).unwrap_or(lo + 30 + e.name.len() as u64 + LOCAL_SLACK);
    (lo, start.saturating_add(n.min(e.compressed_size)))
}

/// Fetch `ranges`, then once more with the local headers now known.
fn fetch_members(
    rf: &mut impl Source,
    want: &[(&Entry, u64)],
    extra: &[(u64, u64)],
) -> Result<(), FetchError> {
    let mut ranges: Vec<(u64, u64)> = want
        .iter()
        .map(|(e, n)| member_range(rf.image(), e, *n))
        .collect();
    ranges.extend_from_slice(extra);
    rf.ensure(&ranges)?;
    let fix: Vec<(u64, u64)> = want
        .iter()
        .map(|(e, n)| member_range(rf.image(), e, *n))
        .collect();
    rf.ensure(&fix)
}

/// A member's first uncompressed bytes from what was fetched; `None` when more is needed.
fn member_head(s: &Sparse, e: &Entry) -> Option<Vec<u8>> {
    let start = data_start(s, e)?;
    let n = MEMBER_HEAD.min(e.compressed_size);
    match e.method {
        STORED => {
            if !s.has(start, start + n) {
                return None;
            }
            Some(s.bytes()[start as usize..(start + n) as usize].to_vec())
        }
        DEFLATED => {
            let end = start + e.compressed_size;
            let fetched = s
                .missing(start, end)
                .first()
                .map(|&(m, _)| m)
                .unwrap_or(end.min(s.size()));
            let raw = s.bytes().get(start as usize..fetched as usize)?;
            let mut out = Vec::new();
            let mut dec = flate2::read::DeflateDecoder::new(raw).take(MEMBER_HEAD);
            let ok = dec.read_to_end(&mut out).is_ok();
            // Enough output, or the whole stream was there to read.
            if (ok && out.len() as u64 == MEMBER_HEAD) || fetched >= end {
                Some(out)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// What [`zip`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipPlan {
    /// Everything the scanner reads is fetched.
    Ready,
    /// The archive is odd in a way this planner does not follow: fetch the whole file.
    Whole,
}

/// Fetch what the zip scanner reads, given the directory at `[lo, hi)` is fetched; with
/// `storage_headers`, the local headers of storage members too.
pub fn zip(
    scanner: &Scanner,
    rf: &mut impl Source,
    lo: u64,
    hi: u64,
    storage_headers: bool,
) -> Result<ZipPlan, FetchError> {
    let size = rf.image().size();
    let archive = match Archive::parse(rf.image().bytes(), scanner.limits.max_members) {
        Ok(a) => a,
        Err(_) => return Ok(ZipPlan::Whole),
    };
    if archive.directory_offset < lo || archive.directory_offset > hi || hi > size {
        return Ok(ZipPlan::Whole);
    }
    let entries: Vec<Entry> = archive.entries.clone();
    let prefix_len = archive.prefix_len;
    drop(archive);

    let torchscript = torch::is_torchscript(entries.iter().map(|e| e.name.as_str()));
    let is_code = |e: &Entry| torchscript && torch::is_torchscript_code(&e.name);
    let plain = |e: &Entry| !e.is_encrypted() && matches!(e.method, STORED | DEFLATED);
    // Folders where a pickle's storages may live: `<dir>data/`, `<dir>constants/`, `<dir><stem>/`.
    let mut storage_dirs: HashSet<String> = HashSet::new();
    for e in entries
        .iter()
        .filter(|e| !e.is_dir() && is_pickle_name(&e.name))
    {
        storage_dirs.extend(torch::storage_dirs(&e.name));
    }
    let parent = |e: &Entry| {
        let l = e.name.to_lowercase();
        l.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    };

    // Round 1: pickles whole; members that cannot be storages, their heads.
    let mut want: Vec<(&Entry, u64)> = Vec::new();
    let mut deferred: Vec<&Entry> = Vec::new();
    for e in entries.iter().filter(|e| !e.is_dir()) {
        if is_pickle_name(&e.name) || !plain(e) {
            want.push((e, e.compressed_size));
        } else if is_code(e) {
            continue;
        } else if storage_dirs.contains(&parent(e)) {
            deferred.push(e);
        } else {
            want.push((e, head_len(e)));
        }
    }
    let extra = if prefix_len > 0 {
        vec![(0, prefix_len)]
    } else {
        Vec::new()
    };
    fetch_members(rf, &want, &extra)?;

    // The storages the pickles name, as the scanner finds them.
    let mut storages: HashSet<String> = HashSet::new();
    {
        let archive = match Archive::parse(rf.image().bytes(), scanner.limits.max_members) {
            Ok(a) => a,
            Err(_) => return Ok(ZipPlan::Whole),
        };
        let mut notes = Vec::new();
        // The same inflation budget as the scanner's: what is left of the file's, within the
        // per-member ratio cap.
        let mut left = scanner.limits.max_decompressed;
        for e in archive
            .entries
            .iter()
            .filter(|e| !e.is_dir() && is_pickle_name(&e.name))
        {
            let budget = left.min(scanner.limits.inflate_budget(e.compressed_size));
            let Ok(bytes) = archive.read(e, budget, &mut notes) else {
                continue;
            };
            if let std::borrow::Cow::Owned(v) = &bytes {
                left = left.saturating_sub(v.len() as u64);
            }
            if !matches!(
                detect(&bytes, Some(&e.name)),
                Kind::Pickle | Kind::TorchLegacy
            ) {
                continue;
            }
            let (vm, _) = scanner.run_one(&bytes, &mut NoHooks);
            for (key, _, _) in container::torch::storage_ids(&vm, 0) {
                storages.extend(torch::storage_member_names(&e.name, &key));
            }
        }
    }

    // Round 2: heads of the members in storage folders that no pickle names.
    let heads: Vec<(&Entry, u64)> = deferred
        .iter()
        .filter(|e| storage_headers || !storages.contains(&e.name.to_lowercase()))
        .map(|e| {
            let storage = storages.contains(&e.name.to_lowercase());
            (*e, if storage { 0 } else { head_len(e) })
        })
        .collect();
    fetch_members(rf, &heads, &[])?;

    // Round 3: members whose first bytes are a pickle or a container, whole.
    let mut whole: Vec<(&Entry, u64)> = Vec::new();
    for e in entries.iter().filter(|e| !e.is_dir() && plain(e)) {
        if is_pickle_name(&e.name) || is_code(e) || storages.contains(&e.name.to_lowercase()) {
            continue;
        }
        match member_head(rf.image(), e) {
            Some(head) => {
                if !matches!(detect(&head, Some(&e.name)), Kind::Empty | Kind::Unknown) {
                    whole.push((e, e.compressed_size));
                }
            }
            // The head needs more of a deflate stream (or the local header is odd): take it
            // all; the scanner then reads exactly what a local scan reads.
            None => whole.push((e, e.compressed_size)),
        }
    }
    // A storage member whose local header happens to be fetched (it sits next to something
    // that was) gets its first bytes too: should the scanner disagree on what is a storage, it
    // then reads real bytes, not zeros. (With its header unfetched it reads a bad signature,
    // which is a finding.)
    for e in entries.iter().filter(|e| !e.is_dir() && plain(e)) {
        if !storages.contains(&e.name.to_lowercase()) {
            continue;
        }
        if let Some(ds) = data_start(rf.image(), e) {
            if !rf.image().has(ds, ds + head_len(e).min(e.compressed_size)) {
                whole.push((e, head_len(e)));
            }
        }
    }
    fetch_members(rf, &whole, &[])?;
    Ok(ZipPlan::Ready)
}

/// Bytes of a member kept by a streamed read before deciding on the rest (`head_len` of a
/// deflated member, which covers a stored one's too).
pub const STREAM_MEMBER_HEAD: u64 = DEFLATE_HEAD;

/// True when a member's first (uncompressed) bytes are a pickle or a container: the zip
/// scanner reads such a member whole.
pub fn head_is_scanned(head: &[u8], name: &str) -> bool {
    !matches!(detect(head, Some(name)), Kind::Empty | Kind::Unknown)
}

/// Uncompressed first bytes of a member from its compressed first bytes.
pub fn inflate_head(method: u16, raw: &[u8]) -> Option<Vec<u8>> {
    match method {
        STORED => Some(raw[..raw.len().min(MEMBER_HEAD as usize)].to_vec()),
        DEFLATED => {
            let mut out = Vec::new();
            let mut dec = flate2::read::DeflateDecoder::new(raw).take(MEMBER_HEAD);
            dec.read_to_end(&mut out).ok()?;
            Some(out)
        }
        _ => None,
    }
}

/// True for a member named like a pickle (`.pkl`, `.pickle`, TorchScript's `debug_pkl`).
pub fn named_like_pickle(name: &str) -> bool {
    is_pickle_name(name)
}

fn head_len(e: &Entry) -> u64 {
    if e.method == DEFLATED {
        DEFLATE_HEAD
    } else {
        MEMBER_HEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_header_length_needs_a_brace_after_it() {
        let image = |head: &[u8], size: u64| {
            let mut s = Sparse::new(size).unwrap();
            s.put(0, head);
            s
        };
        // A gzip file without time stamp: its first eight bytes read as 560,927.
        let gzip = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x04, 0xff, 0xec, 0xbd];
        assert_eq!(safetensors_header_end(&image(&gzip, 1 << 22)), None);
        // A header whose start is fetched: `{` after white space.
        let mut st = 100u64.to_le_bytes().to_vec();
        st.extend(b"  {\"a\"");
        assert_eq!(safetensors_header_end(&image(&st, 1 << 22)), Some(108));
        // Only the length fetched: its header cannot be ruled out.
        assert_eq!(safetensors_header_end(&image(&st[..8], 1 << 22)), Some(108));
    }
}

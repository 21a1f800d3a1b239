//! 7z archives: every folder decoded once, in order ([`crate::format::sevenz`]), within the
//! file's decompression budget, and each member scanned as what it is at the next container
//! depth, as zip and tar members are. A member that cannot be decoded (encryption, a method not
//! read here, a broken stream, the budget) is reported (PS911, PS910, PS916) and never counted as
//! read; members of a solid folder that came out whole before its decoder stopped are still
//! scanned, as an extractor would have written them. CRC mismatches are reported (PS910) and the
//! bytes scanned anyway.

use super::{ids, scan_content, speculative_pickle, Ctx, Kind, Scanned};
use crate::finding::Finding;
use crate::format::sevenz::{self, SevenZipError};
use crate::format::Format;

/// Names listed in one finding about a folder's members.
const NAMES_SHOWN: usize = 10;

/// Scan a 7z archive.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let mut findings = Vec::new();
    let max = ctx.scanner.limits.max_members;
    let archive = match sevenz::read_limited(data, ctx.budget(data.len() as u64), max) {
        Ok(a) => a,
        Err(e) => {
            findings.push(ctx.anomaly(rule_of(&e), Some(0), format!("7z archive not read: {e}")));
            return Scanned {
                format: Format::SevenZip,
                findings,
            };
        }
    };
    let mut by_folder: Vec<Vec<&sevenz::Entry>> = vec![Vec::new(); archive.folders.len()];
    for e in &archive.entries {
        if let Some(list) = e.folder.and_then(|f| by_folder.get_mut(f)) {
            list.push(e);
        }
    }
    for (folder, members) in archive.folders.iter().zip(&by_folder) {
        if members.is_empty() {
            continue;
        }
        let packed = archive
            .pack_sizes
            .get(folder.first_pack)
            .copied()
            .unwrap_or(0);
        let decoded = sevenz::decode_folder(data, &archive, folder, ctx.budget(packed));
        if let std::borrow::Cow::Owned(v) = &decoded.data {
            ctx.spend(v.len() as u64);
        }
        let mut unread: Vec<&str> = Vec::new();
        for m in members {
            let slice = usize::try_from(m.offset)
                .ok()
                .zip(usize::try_from(m.size).ok())
                .and_then(|(o, s)| decoded.data.get(o..o.checked_add(s)?));
            let Some(slice) = slice else {
                unread.push(&m.name);
                continue;
            };
            if let Some(crc) = m.crc.filter(|&crc| crc32fast::hash(slice) != crc) {
                findings.push(
                    ctx.anomaly(
                        ids::ZIP_ANOMALY,
                        None,
                        format!(
                            "7z member CRC mismatch (recorded {crc:#010x}, actual {:#010x}): the bytes were altered after packing; scanned as they are",
                            crc32fast::hash(slice)
                        ),
                    )
                    .in_member(&m.name),
                );
            }
            let fs = scan_member(ctx, slice, &m.name, depth);
            findings.extend(fs.into_iter().map(|f| f.in_member(&m.name)));
        }
        match decoded.error {
            None if unread.is_empty() => {}
            None => findings.push(ctx.anomaly(
                ids::ZIP_ANOMALY,
                None,
                format!(
                    "7z members {} lie outside their folder's output: not read",
                    names(&unread)
                ),
            )),
            Some(e) => {
                let what = match &e {
                    SevenZipError::Budget(b) => ctx.budget_reason(*b, packed),
                    other => other.to_string(),
                };
                let message = match unread.as_slice() {
                    [] => {
                        let all: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                        format!("7z folder of {}: {what}", names(&all))
                    }
                    [_] => format!("7z member not read: {what}"),
                    _ => format!("7z members {} not read: {what}", names(&unread)),
                };
                let f = ctx.anomaly(rule_of(&e), None, message);
                findings.push(match unread.as_slice() {
                    [one] => f.in_member(one),
                    _ => f,
                });
            }
        }
    }
    Scanned {
        format: Format::SevenZip,
        findings,
    }
}

/// The rule a reading error is reported under.
fn rule_of(e: &SevenZipError) -> &'static str {
    match e {
        SevenZipError::Unsupported(_) => ids::UNSUPPORTED_MEMBER,
        SevenZipError::Budget(_) => ids::DECOMPRESSION_BUDGET,
        _ => ids::ZIP_ANOMALY,
    }
}

/// Member names for a message, the first few of a long list.
fn names(list: &[&str]) -> String {
    let mut s = list
        .iter()
        .take(NAMES_SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > NAMES_SHOWN {
        s.push_str(&format!(" and {} more", list.len() - NAMES_SHOWN));
    }
    s
}

/// One member's findings, chosen as for zip and tar members: content of no known format is
/// data (unless named like a pickle), a protocol 0/1 opcode first counts only if the bytes act
/// as a pickle, and everything else is scanned as what it is.
fn scan_member(ctx: &Ctx<'_>, bytes: &[u8], name: &str, depth: usize) -> Vec<Finding> {
    let pickle_name = crate::format::torch::is_pickle_name(name);
    match super::detect(bytes, Some(name)) {
        Kind::Empty | Kind::Unknown if !pickle_name => Vec::new(),
        Kind::Pickle if bytes[0] != 0x80 && !pickle_name => {
            speculative_pickle(ctx, bytes).unwrap_or_default()
        }
        _ => scan_content(ctx, bytes, Some(name), depth + 1).findings,
    }
}

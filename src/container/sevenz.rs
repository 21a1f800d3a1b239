//! 7z archives: every member decoded ([`crate::format::sevenz`]) within the file's
//! decompression budget and scanned as what it is, at the next container depth, as zip and tar
//! members are. A member that cannot be decoded (encryption, a method not read here, a broken
//! stream, a CRC mismatch) is reported (PS911, PS910) and never counted as read; one past the
//! budget is reported as a bomb (PS916).

use super::{ids, scan_content, Ctx, Scanned};
use crate::format::sevenz::{self, SevenZipError};

/// Scan a 7z archive.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let mut findings = Vec::new();
    let archive = match sevenz::read(data, ctx.budget(data.len() as u64)) {
        Ok(a) => a,
        Err(e) => {
            let rule = match e {
                SevenZipError::Unsupported(_) => ids::UNSUPPORTED_MEMBER,
                SevenZipError::Budget(_) => ids::DECOMPRESSION_BUDGET,
                _ => ids::ZIP_ANOMALY,
            };
            findings.push(ctx.anomaly(rule, Some(0), format!("7z archive not read: {e}")));
            return Scanned {
                format: "7z".into(),
                findings,
            };
        }
    };
    if archive.entries.len() > ctx.scanner.limits.max_members {
        findings.push(ctx.anomaly(
            ids::ZIP_ANOMALY,
            Some(0),
            format!(
                "7z archive of {} members (at most {} are scanned)",
                archive.entries.len(),
                ctx.scanner.limits.max_members
            ),
        ));
        return Scanned {
            format: "7z".into(),
            findings,
        };
    }
    for (index, folder) in archive.folders.iter().enumerate() {
        let members: Vec<&sevenz::Entry> = archive
            .entries
            .iter()
            .filter(|e| e.folder == Some(index))
            .collect();
        if members.is_empty() {
            continue;
        }
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let packed = archive
            .pack_sizes
            .get(folder.first_pack)
            .copied()
            .unwrap_or(0);
        let budget = ctx.budget(packed);
        let bytes = match sevenz::decode_folder(data, &archive, folder, budget) {
            Ok(b) => b,
            Err(e) => {
                let (rule, what) = match &e {
                    SevenZipError::Unsupported(_) => (ids::UNSUPPORTED_MEMBER, e.to_string()),
                    SevenZipError::Budget(b) => {
                        (ids::DECOMPRESSION_BUDGET, ctx.budget_reason(*b, packed))
                    }
                    _ => (ids::ZIP_ANOMALY, e.to_string()),
                };
                findings.push(ctx.anomaly(
                    rule,
                    None,
                    format!("7z members {} not read: {what}", names.join(", ")),
                ));
                continue;
            }
        };
        ctx.spend(bytes.len() as u64);
        for m in members {
            let slice = usize::try_from(m.offset)
                .ok()
                .zip(usize::try_from(m.size).ok())
                .and_then(|(o, s)| bytes.get(o..o.checked_add(s)?));
            let Some(slice) = slice else {
                findings.push(ctx.anomaly(
                    ids::ZIP_ANOMALY,
                    None,
                    format!("7z member {} lies outside its folder's output", m.name),
                ));
                continue;
            };
            if let Some(crc) = m.crc {
                if crc32fast::hash(slice) != crc {
                    findings.push(ctx.anomaly(
                        ids::ZIP_ANOMALY,
                        None,
                        format!(
                            "7z member {}: CRC mismatch (the bytes were altered after packing)",
                            m.name
                        ),
                    ));
                }
            }
            let scanned = scan_content(ctx, slice, Some(&m.name), depth + 1);
            findings.extend(scanned.findings.into_iter().map(|f| f.in_member(&m.name)));
        }
    }
    Scanned {
        format: "7z".into(),
        findings,
    }
}

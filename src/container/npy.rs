//! numpy `.npy`: the header is read by [`crate::format::npy`]; an array whose dtype holds
//! objects is stored as a pickle, which is scanned; a plain array's size is checked against its
//! shape.

use super::{ids, shift, Ctx, Scanned};
use crate::format::npy::parse_header;
use crate::format::Format;
use crate::pickle::vm::NoHooks;

/// Scan a `.npy`.
pub(crate) fn scan(ctx: &Ctx<'_>, data: &[u8], _depth: usize) -> Scanned {
    let h = match parse_header(data) {
        Ok(h) => h,
        Err(e) => return ctx.unread(Format::Npy, ids::NPY_INVALID, format!("invalid .npy: {e}")),
    };
    let body = &data[h.data_start..];
    if h.has_object {
        // numpy.load(allow_pickle=True) unpickles the rest of the file.
        let mut scan = ctx.scanner.scan_pickles(body, &mut NoHooks);
        // numpy.load unpickles one stream and never reads what follows it (numpy ships such a
        // file itself, with a newline after the pickle): bytes there that are not a pickle are
        // noted, not suspicious. A further pickle is still scanned and judged.
        for f in &mut scan.findings {
            if f.rule == ids::TRAILING_DATA {
                f.severity = crate::finding::Severity::Info;
                f.message
                    .push_str(" (numpy.load reads one pickle and ignores them)");
            }
        }
        return Scanned {
            format: Format::Npy,
            findings: shift(scan.findings, h.data_start as u64),
        };
    }
    let mut findings = Vec::new();
    let nbytes = h
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(h.itemsize));
    match nbytes {
        None => {
            findings.push(ctx.anomaly(ids::NPY_INVALID, Some(0), "array size overflows".into()))
        }
        Some(n) if n > body.len() as u64 => findings.push(ctx.anomaly(
            ids::NPY_INVALID,
            Some(h.data_start as u64),
            format!(
                "array needs {n} bytes but only {} follow the header",
                body.len()
            ),
        )),
        Some(n) if n < body.len() as u64 => findings.push(ctx.anomaly(
            ids::NPY_INVALID,
            Some(h.data_start as u64 + n),
            format!("{} bytes after the array data", body.len() as u64 - n),
        )),
        Some(_) => {}
    }
    Scanned {
        format: Format::Npy,
        findings,
    }
}

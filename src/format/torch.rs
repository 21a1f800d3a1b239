//! The layouts `torch.save` writes, as far as they are a matter of bytes and names (reading the
//! pickles inside is the symbolic machine's job):
//!
//! * **zip** (torch >= 1.6): `<archive>/data.pkl` with each storage in `<archive>/data/<key>`,
//!   `<archive>/byteorder`, `<archive>/version`; TorchScript adds `constants.pkl` (storages in
//!   `constants/`) and `code/`. [`ZipLayout`] is torch's own reader's view of such an archive.
//! * **legacy**: five pickles in a row (the magic number [`LEGACY_MAGIC`], the protocol
//!   version, `sys_info`, the object, the storage keys), then the raw storages.
//! * **tar** (before 0.1.10): read by [`crate::format::tar`].
//!
//! Which zip members hold storages is decided here once ([`storage_member_names`]): the scan
//! skips them, the remote planner does not fetch them, and both follow the same names.

use super::zip::{Archive, Entry};
use std::collections::HashMap;

/// The pickle of `torch._utils`' legacy MAGIC_NUMBER at protocol 2: the first bytes of a file
/// in the legacy format.
pub const LEGACY_MAGIC: &[u8] = &[
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// Little-endian bytes of the legacy MAGIC_NUMBER itself (the long inside [`LEGACY_MAGIC`]).
pub const MAGIC_NUMBER_BYTES: [u8; 10] = {
    let mut out = [0u8; 10];
    let mut i = 0;
    while i < 10 {
        out[i] = LEGACY_MAGIC[i + 4];
        i += 1;
    }
    out
};

/// The MAGIC_NUMBER in decimal (how protocol 0 and 1 pickles write it).
pub const MAGIC_NUMBER_DECIMAL: &str = "119547037146038801333356";

/// The last part of a member name, lower-cased.
pub fn lower_basename(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_lowercase()
}

/// Whether a zip member is named like a pickle (`data.pkl`, `constants.pkl`, TorchScript's
/// `debug_pkl`, `*.pickle`): such members are read whole by the scan.
pub fn is_pickle_name(name: &str) -> bool {
    let b = lower_basename(name);
    b.ends_with(".pkl") || b.ends_with("debug_pkl") || b.ends_with(".pickle")
}

/// Whether an archive holds a TorchScript model (a `constants.pkl` member anywhere).
pub fn is_torchscript<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| lower_basename(n) == "constants.pkl")
}

/// Whether a member of a TorchScript archive is its compiled-from source (`code/…/*.py`),
/// which is judged as TorchScript rather than scanned as content.
pub fn is_torchscript_code(name: &str) -> bool {
    let l = name.to_lowercase();
    l.ends_with(".py") && l.contains("code/")
}

/// The lower-cased names a storage with `key` persisted by the pickle member `pickle` may have
/// in the archive: `<dir>/<stem>/<key>` (how `torch.save` names them relative to a pickle
/// called `<stem>.pkl`), `<dir>/data/<key>` and `<dir>/constants/<key>` (TorchScript).
pub fn storage_member_names(pickle: &str, key: &str) -> [String; 3] {
    let lname = pickle.to_lowercase();
    let key = key.to_lowercase();
    let (dir, base) = match lname.rsplit_once('/') {
        Some((d, b)) => (format!("{d}/"), b),
        None => (String::new(), lname.as_str()),
    };
    let stem = base.split('.').next().unwrap_or("");
    [
        format!("{dir}{stem}/{key}"),
        format!("{dir}data/{key}"),
        format!("{dir}constants/{key}"),
    ]
}

/// The folders ([`storage_member_names`] without the key) where the storages of the pickle
/// member `pickle` may live.
pub fn storage_dirs(pickle: &str) -> [String; 3] {
    storage_member_names(pickle, "").map(|mut n| {
        n.pop();
        n
    })
}

/// Why torch's zip reader refuses an archive's layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The first record is not inside a folder (torch takes the archive name from it).
    #[error("file in archive is not in a subdirectory")]
    NotInSubdirectory,
    /// Several records answer to the same name.
    #[error("the archive has several {0} records")]
    Duplicate(String),
}

/// A torch zip archive as `PyTorchStreamReader` reads it: the archive name is the folder of the
/// first record, and records are looked up by `<archive>/<name>`, case-insensitively (miniz's
/// lookup without its case-sensitive flag).
pub struct ZipLayout<'a> {
    /// The archive name with its slash (`archive/`).
    pub prefix: String,
    /// Records by lower-cased name.
    by_name: HashMap<String, Vec<&'a Entry>>,
}

impl<'a> ZipLayout<'a> {
    /// The layout of `archive`.
    pub fn of(archive: &'a Archive<'_>) -> Result<Self, LayoutError> {
        let first = archive
            .entries
            .first()
            .ok_or(LayoutError::NotInSubdirectory)?;
        let (dir, _) = first
            .name
            .split_once('/')
            .ok_or(LayoutError::NotInSubdirectory)?;
        let mut by_name: HashMap<String, Vec<&Entry>> = HashMap::new();
        for e in &archive.entries {
            by_name.entry(e.name.to_lowercase()).or_default().push(e);
        }
        Ok(ZipLayout {
            prefix: format!("{dir}/"),
            by_name,
        })
    }

    /// The record `<archive>/<name>`, without regard to case. Several records that match are
    /// refused: miniz finds one of them by a binary search over the sorted names, so which one
    /// torch reads is not something to rely on.
    pub fn record(&self, name: &str) -> Result<Option<&'a Entry>, LayoutError> {
        let want = format!("{}{name}", self.prefix);
        match self.by_name.get(&want.to_lowercase()).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([e]) => Ok(Some(*e)),
            Some(_) => Err(LayoutError::Duplicate(want)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_follow_the_pickle_member() {
        assert_eq!(
            storage_member_names("Model/Data.pkl", "0"),
            ["model/data/0", "model/data/0", "model/constants/0"]
        );
        assert_eq!(
            storage_member_names("archive/extra.pkl", "K1"),
            [
                "archive/extra/k1",
                "archive/data/k1",
                "archive/constants/k1"
            ]
        );
        assert_eq!(storage_dirs("top.pkl"), ["top", "data", "constants"]);
    }

    #[test]
    fn the_magic_number_is_the_long_inside_the_pickle() {
        let n = MAGIC_NUMBER_BYTES
            .iter()
            .rev()
            .fold(0u128, |acc, &b| acc << 8 | b as u128);
        assert_eq!(n.to_string(), MAGIC_NUMBER_DECIMAL);
    }

    #[test]
    fn names_like_pickles() {
        assert!(is_pickle_name("a/data.pkl"));
        assert!(is_pickle_name("a/code/__torch__.py.debug_pkl"));
        assert!(is_pickle_name("X.PICKLE"));
        assert!(!is_pickle_name("a/data/0"));
        assert!(is_torchscript(
            ["a/data.pkl", "a/Constants.pkl"].into_iter()
        ));
        assert!(is_torchscript_code("a/code/__torch__/m.py"));
    }
}

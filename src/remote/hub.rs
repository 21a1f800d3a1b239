//! Model-hub repositories (Hugging Face layout): list the files of a repository at a revision,
//! then scan each through `{endpoint}/{repo}/resolve/{commit}/{file}`.
//!
//! The listing is `GET {endpoint}/api/models/{repo}/revision/{revision}` (`siblings[].rfilename`
//! and the commit `sha`, which then pins every download so that a push during the scan cannot
//! mix two versions).
//!
//! Which files are looked at (detection is by content, so names only decide how much to fetch):
//! * **scanned**: names that suggest a pickle, a pickle container or a tensor format (`.bin .pt
//!   .pth .ckpt .pt2 .pkl .pkl3 .pickle .dill .joblib .jbl .sav .npy .npz .safetensors .gguf
//!   .mar .zip .7z .tar .gz .bz2 .xz .lz4 .zst`): always reported, whatever their content (a `.bin`
//!   that is no known format is suspicious, as it is locally);
//! * **skipped**: documentation, text configuration and images, which no pickle loader opens
//!   (`.md .json .txt .yaml .yml .toml .cfg .ini .csv .tsv .py .ipynb .js .css .html .jinja
//!   .gitattributes .gitignore .png .jpg .jpeg .gif .svg .webp .ico .pdf`, `LICENSE`);
//! * **sniffed**: everything else (names without extension, `.model`, `.onnx`, `.h5`, `.msgpack`,
//!   …): its first and last bytes are fetched, and it is scanned and reported only when its
//!   content is a pickle, a container, a model format read here (HDF5, ONNX, …) or an archive
//!   that cannot be looked into (rar, …);
//!   text that starts with a protocol 0 opcode is run as a pickle and reported only if it
//!   acts.

use super::http::{Client, HttpError, Meter};

/// A repository at a revision, written `ORG/NAME[@REVISION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// `ORG/NAME` (or a bare `NAME`).
    pub repo: String,
    /// Branch, tag or commit (`main` when not given).
    pub revision: String,
}

impl std::str::FromStr for HubRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let s = s.strip_prefix("hf://").unwrap_or(s);
        let (repo, revision) = match s.split_once('@') {
            Some((r, v)) if !v.is_empty() => (r, v),
            Some(_) => return Err(format!("empty revision in `{s}`")),
            None => (s, "main"),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        let ok_part = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
            return Err(format!(
                "bad repository `{repo}`: expected ORG/NAME[@REVISION]"
            ));
        }
        Ok(HubRef {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl HubRef {
    /// How a file of the repository is shown in reports: `hf://ORG/NAME/FILE`, with
    /// `@REVISION` after the name unless the revision is `main`.
    pub fn display(&self, file: Option<&str>) -> String {
        let mut s = format!("hf://{}", self.repo);
        if self.revision != "main" {
            s.push('@');
            s.push_str(&self.revision);
        }
        if let Some(f) = file {
            s.push('/');
            s.push_str(f);
        }
        s
    }
}

/// How much attention a file gets, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Scanned and reported.
    Scan,
    /// Scanned and reported only when its content is a pickle or a container.
    Sniff,
    /// Not fetched.
    Skip,
}

const SCAN_EXT: &[&str] = &[
    "bin",
    "pt",
    "pth",
    "ckpt",
    "pkl",
    "pickle",
    "joblib",
    "npy",
    "npz",
    "safetensors",
    "gguf",
    "zip",
    "7z",
    "tar",
    "gz",
    "bz2",
    "xz",
    "lz4",
    "zst",
    "pt2",
    "pkl3",
    "sav",
    "jbl",
    "dill",
    "mar",
];
const SKIP_EXT: &[&str] = &[
    "md",
    "json",
    "txt",
    "yaml",
    "yml",
    "toml",
    "cfg",
    "ini",
    "csv",
    "tsv",
    "py",
    "ipynb",
    "js",
    "css",
    "html",
    "jinja",
    "gitattributes",
    "gitignore",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "svg",
    "webp",
    "ico",
    "pdf",
];

/// The selection for a file name.
pub fn select(path: &str) -> Selection {
    let base = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if base == "license" || base == "licence" || base == "notice" {
        return Selection::Skip;
    }
    let ext = match base.rsplit_once('.') {
        Some((stem, e)) if !stem.is_empty() || base.starts_with('.') => e.to_string(),
        _ => return Selection::Sniff,
    };
    if SCAN_EXT.contains(&ext.as_str()) {
        Selection::Scan
    } else if SKIP_EXT.contains(&ext.as_str()) {
        Selection::Skip
    } else {
        Selection::Sniff
    }
}

/// One file of a repository to scan.
#[derive(Debug, Clone)]
pub struct HubFile {
    /// Path inside the repository.
    pub path: String,
    /// Where to fetch it.
    pub url: String,
    /// How it is shown in reports.
    pub shown: String,
    /// Scan or sniff.
    pub selection: Selection,
}

/// Percent-encode a path, keeping `/` when `keep_slash`.
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Largest listing accepted.
const MAX_LISTING: u64 = 64 * 1024 * 1024;

/// The files of `r` worth fetching, with their download URLs (pinned to the listed commit).
pub fn list(client: &Client, endpoint: &str, r: &HubRef) -> Result<Vec<HubFile>, HttpError> {
    let endpoint = endpoint.trim_end_matches('/');
    let api = format!(
        "{endpoint}/api/models/{}/revision/{}",
        r.repo,
        encode(&r.revision, false)
    );
    let meter = Meter::default();
    let v = client.get_json(&api, MAX_LISTING, &meter)?;
    let siblings = v
        .get("siblings")
        .and_then(|s| s.as_array())
        .ok_or_else(|| HttpError::Protocol(format!("{api}: no `siblings` in the answer")))?;
    let commit = v
        .get("sha")
        .and_then(|s| s.as_str())
        .filter(|s| s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| r.revision.clone());
    let mut out = Vec::new();
    for s in siblings {
        let Some(path) = s.get("rfilename").and_then(|f| f.as_str()) else {
            continue;
        };
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        let selection = select(path);
        if selection == Selection::Skip {
            continue;
        }
        out.push(HubFile {
            path: path.to_string(),
            url: format!(
                "{endpoint}/{}/resolve/{}/{}",
                r.repo,
                encode(&commit, false),
                encode(path, true)
            ),
            shown: r.display(Some(path)),
            selection,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        let r: HubRef = "org/model@v1.0".parse().unwrap();
        assert_eq!(r.repo, "org/model");
        assert_eq!(r.revision, "v1.0");
        assert_eq!(r.display(Some("a.bin")), "hf://org/model@v1.0/a.bin");
        let r: HubRef = "gpt2".parse().unwrap();
        assert_eq!(r.display(None), "hf://gpt2");
        assert!("a/b/c".parse::<HubRef>().is_err());
        assert!("a/..".parse::<HubRef>().is_err());
        assert!("a/b@".parse::<HubRef>().is_err());
    }

    #[test]
    fn selections() {
        assert_eq!(select("pytorch_model.bin"), Selection::Scan);
        assert_eq!(select("sub/model.safetensors"), Selection::Scan);
        assert_eq!(select("config.json"), Selection::Skip);
        assert_eq!(select(".gitattributes"), Selection::Skip);
        assert_eq!(select("README.md"), Selection::Skip);
        assert_eq!(select("weights"), Selection::Sniff);
        assert_eq!(select("tokenizer.model"), Selection::Sniff);
        assert_eq!(select("vocab.spm"), Selection::Sniff);
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a b/c", true), "a%20b/c");
    }
}

//! Hugging Face configs whose `auto_map` makes `trust_remote_code=True` import Python files: the
//! files are named (and, for a config on disk, looked for beside it and read for the obvious:
//! process, network, dynamic-code imports and calls). Never clean: the code is not a model format
//! and is not proven safe.

use super::Ctx;
use crate::finding::Finding;
use crate::format::hf::{self, CodeRef};

/// Rule id, from the one registry ([`crate::rules::ids`]).
pub use crate::rules::ids::HF_REMOTE_CODE as REMOTE_CODE;

/// Findings for a config's `auto_map` references. `dir`: the folder the config is in, when it is
/// a file on disk.
pub(crate) fn findings(
    ctx: &Ctx<'_>,
    refs: &[CodeRef],
    dir: Option<&std::path::Path>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut modules: Vec<(Option<&str>, &str)> = Vec::new();
    for r in refs {
        let key = (r.repo.as_deref(), r.module.as_str());
        if !modules.contains(&key) {
            modules.push(key);
        }
    }
    for (repo, module) in modules {
        let classes: Vec<String> = refs
            .iter()
            .filter(|r| r.repo.as_deref() == repo && r.module == module)
            .map(|r| format!("{} → {}", r.auto_class, r.class))
            .take(10)
            .collect();
        let file = format!("{}.py", module.replace('.', "/"));
        let mut message = match repo {
            Some(repo) => format!(
                "auto_map loads {file} from the repository {repo} with trust_remote_code ({})",
                classes.join(", ")
            ),
            None => format!(
                "auto_map makes trust_remote_code import {file} from this repository ({})",
                classes.join(", ")
            ),
        };
        if let (None, Some(dir)) = (repo, dir) {
            let path = dir.join(&file);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && m.len() as usize <= hf::MAX_SOURCE => {
                    match std::fs::read(&path) {
                        Ok(bytes) => {
                            let risky = hf::risky_python(&String::from_utf8_lossy(&bytes));
                            if !risky.is_empty() {
                                message.push_str(&format!("; {file} {}", risky.join(", ")));
                            }
                        }
                        Err(e) => message.push_str(&format!("; {file} cannot be read: {e}")),
                    }
                }
                Ok(m) if m.is_file() => message.push_str(&format!("; {file} is too large to read")),
                _ => message.push_str(&format!("; {file} is not beside the config")),
            }
        }
        out.push(ctx.anomaly(REMOTE_CODE, Some(0), message));
    }
    out
}

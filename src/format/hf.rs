//! Hugging Face repository configuration: `auto_map` (in `config.json`, `tokenizer_config.json`,
//! `processor_config.json`, …) maps auto classes to `module.Class` references that
//! `trust_remote_code=True` imports from the repository's own `.py` files, or from another
//! repository (`org/repo--module.Class`). And a reading of those Python files' imports and calls
//! that only looks for the obvious, never runs or compiles them.

use serde_json::Value;

/// Largest Python file read for its imports.
pub const MAX_SOURCE: usize = 4 << 20;

/// One `auto_map` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    /// The auto class (`AutoModel`, `AutoTokenizer`, …).
    pub auto_class: String,
    /// Another repository the code comes from (`org/repo`), if named.
    pub repo: Option<String>,
    /// The module (file stem) within the repository.
    pub module: String,
    /// The class.
    pub class: String,
}

/// Every `auto_map` reference of a parsed JSON config (`None`: no `auto_map`).
pub fn auto_map(v: &Value) -> Option<Vec<CodeRef>> {
    let m = v.as_object()?.get("auto_map")?.as_object()?;
    let mut out = Vec::new();
    for (auto_class, target) in m {
        let targets: Vec<&str> = match target {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for t in targets {
            let (repo, rest) = match t.split_once("--") {
                Some((r, rest)) => (Some(r.to_string()), rest),
                None => (None, t),
            };
            let (module, class) = rest.rsplit_once('.').unwrap_or((rest, ""));
            out.push(CodeRef {
                auto_class: auto_class.clone(),
                repo,
                module: module.to_string(),
                class: class.to_string(),
            });
        }
    }
    Some(out)
}

/// What a Python file obviously does that a model's code has no need for, as short labels
/// (`imports subprocess`, `calls eval(`). A reading of lines, not a parser: it names the
/// obvious and proves nothing.
pub fn risky_python(source: &str) -> Vec<String> {
    const PROCESS: &[&str] = &["subprocess", "pty", "pexpect", "multiprocessing.popen"];
    const NETWORK: &[&str] = &[
        "socket",
        "requests",
        "urllib.request",
        "urllib3",
        "http.client",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "websocket",
    ];
    const DYNAMIC: &[&str] = &["ctypes", "marshal", "pickle", "dill", "cloudpickle"];
    const CALLS: &[&str] = &[
        "os.system(",
        "os.popen(",
        "os.exec",
        "os.spawn",
        "eval(",
        "exec(",
        "__import__(",
        "compile(",
        "base64.b64decode(",
    ];
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !out.contains(&s) && out.len() < 20 {
            out.push(s);
        }
    };
    for line in source.lines() {
        let t = line.trim_start();
        if t.starts_with('#') {
            continue;
        }
        let modules: Vec<&str> = if let Some(rest) = t.strip_prefix("import ") {
            rest.split(',')
                .map(|m| m.split_whitespace().next().unwrap_or(""))
                .collect()
        } else if let Some(rest) = t.strip_prefix("from ") {
            vec![rest.split_whitespace().next().unwrap_or("")]
        } else {
            Vec::new()
        };
        for m in modules {
            let matches = |list: &[&str]| {
                list.iter()
                    .any(|x| m == *x || m.starts_with(&format!("{x}.")))
            };
            if matches(PROCESS) {
                add(format!("imports {m} (processes)"));
            } else if matches(NETWORK) {
                add(format!("imports {m} (network)"));
            } else if matches(DYNAMIC) {
                add(format!("imports {m} (code loading)"));
            }
        }
        for c in CALLS {
            if let Some(p) = t.find(c) {
                // `model.eval(` and `.compile(` methods are not the builtins.
                let before = t[..p].chars().last();
                if c.starts_with("os.")
                    || !matches!(before, Some('.') | Some('_'))
                        && !before.is_some_and(char::is_alphanumeric)
                {
                    add(format!("calls {c}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_python() {
        let v = serde_json::json!({"auto_map": {
            "AutoConfig": "configuration_x.XConfig",
            "AutoModel": "org/repo--modeling_x.XModel",
            "AutoTokenizer": ["tokenization_x.XTokenizer", null]
        }});
        let r = auto_map(&v).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].repo.as_deref(), Some("org/repo"));
        assert_eq!(r[1].module, "modeling_x");
        assert!(auto_map(&serde_json::json!({"a": 1})).is_none());
        let py = "import torch\nimport subprocess, os\nfrom requests import get\nmodel.eval()\nexec(code)\n# eval(x)\n";
        assert_eq!(
            risky_python(py),
            vec![
                "imports subprocess (processes)",
                "imports requests (network)",
                "calls exec("
            ]
        );
    }
}

//! TorchScript archives judged as TorchScript.
//!
//! In an archive written by `torch.jit.save`, the pickles' `__torch__.*` globals are classes
//! compiled from the archive's own `code/` sources by `torch.jit.load`, not Python imports: the
//! C++ unpickler resolves them in the archive's compilation unit. So they are not unknown
//! imports; what matters is what the compiled code can reach outside the model. TorchScript
//! has no `import`, `open`, `eval` or `os`; the only way out of the tensor world is an operator:
//! `aten::from_file` maps any file (read, and written back with `shared=True`), and operators
//! of other namespaces (`ops.NS.op`, `__torch__.torch.classes.NS.C`) come from a native library
//! the loading program must have loaded, whose behaviour the archive cannot show.
//!
//! The sources are read as text (bounded per member) and scanned for those names; everything
//! else in TorchScript is tensor arithmetic and control flow.

use std::collections::BTreeSet;

/// Operator namespaces of torch itself.
const TORCH_NAMESPACES: &[&str] = &["aten", "prim", "quantized", "_quantized", "profiler"];

/// Operators that reach the file system, with the qualifiers that must precede a call for it to
/// be that operator (empty: any): `aten::from_file` (`torch.from_file`,
/// `UntypedStorage.from_file`) maps a file; `aten::save` (`torch.save`, `ops.aten.save`,
/// registered for TorchScript in `register_prim_ops_fulljit.cpp`) writes one.
const FILE_OPERATORS: &[(&str, &[&str])] = &[("from_file", &[]), ("save", &["torch.", "aten."])];

/// What one code member reaches.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// File-system operators called (`from_file`), with the call text.
    pub file_access: Vec<String>,
    /// Operators or classes of namespaces torch does not define (`ops.myns.op`).
    pub foreign: BTreeSet<String>,
}

/// Scan one TorchScript source for what it reaches outside the model.
pub fn judge_code(code: &str) -> Reach {
    let mut reach = Reach::default();
    for line in code.lines() {
        for (op, qualifiers) in FILE_OPERATORS {
            for (i, _) in line.match_indices(op) {
                let before = &line[..i];
                let after = &line[i + op.len()..];
                // A call of the operator, not an identifier that contains the name.
                let qualified =
                    qualifiers.is_empty() || qualifiers.iter().any(|q| before.ends_with(q));
                if qualified && !is_ident_end(before) && after.trim_start().starts_with('(') {
                    reach.file_access.push(shorten(line.trim()));
                }
            }
        }
        for (i, _) in line.match_indices("ops.") {
            if i > 0 && is_ident_byte(line.as_bytes()[i - 1]) {
                continue;
            }
            let rest = &line[i + 4..];
            let ns: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ns.is_empty() && !TORCH_NAMESPACES.contains(&ns.as_str()) {
                let op: String = rest[ns.len()..]
                    .trim_start_matches('.')
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                reach.foreign.insert(format!("ops.{ns}.{op}"));
            }
        }
        for (i, _) in line.match_indices("torch.classes.") {
            let rest = &line[i + "torch.classes.".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            reach.foreign.insert(format!("torch.classes.{name}"));
        }
    }
    reach
}

/// True when the `__torch__.a.b.C` class has its source in the archive (`code/__torch__/a/b.py`
/// or, for a class at the top, `code/__torch__.py`), as `torch.jit.load` looks it up.
pub fn class_has_source(qualified: &str, code_files: &[String]) -> bool {
    let Some(rest) = qualified.strip_prefix("__torch__.") else {
        return false;
    };
    let module = match rest.rsplit_once('.') {
        Some((m, _)) => format!("__torch__/{}", m.replace('.', "/")),
        None => "__torch__".to_string(),
    };
    let want = format!("code/{module}.py").to_lowercase();
    code_files.iter().any(|f| f.to_lowercase().ends_with(&want))
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_ident_end(s: &str) -> bool {
    s.bytes().last().is_some_and(is_ident_byte)
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 160 {
        let mut t: String = s.chars().take(160).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_model_code_reaches_nothing() {
        let code = "class Linear(Module):\n  def forward(self, input: Tensor) -> Tensor:\n    return torch.linear(input, self.weight, self.bias)\n";
        assert_eq!(judge_code(code), Reach::default());
    }

    #[test]
    fn file_operators_and_foreign_namespaces() {
        let r = judge_code("    y = torch.from_file(\"/etc/passwd\", None, 10)\n    z = ops.evil.run(x)\n    w = ops.aten.relu(x)\n");
        assert_eq!(
            r.file_access,
            vec!["y = torch.from_file(\"/etc/passwd\", None, 10)"]
        );
        assert_eq!(r.foreign.iter().collect::<Vec<_>>(), vec!["ops.evil.run"]);
        let r = judge_code("  s = torch.UntypedStorage.from_file (name, True, 4)\n  c = __torch__.torch.classes.myns.Runner()\n");
        assert_eq!(r.file_access.len(), 1);
        assert!(r.foreign.contains("torch.classes.myns.Runner"));
        let r = judge_code("    _0 = ops.aten.save(1, \"/tmp/pwned\")\n    self.save(x)\n");
        assert_eq!(r.file_access, vec!["_0 = ops.aten.save(1, \"/tmp/pwned\")"]);
        // A name that merely contains the word is not a call of the operator.
        assert_eq!(
            judge_code("  my_from_file = 3\n  x = self.read_from_file_count\n"),
            Reach::default()
        );
    }

    #[test]
    fn class_sources() {
        let files = vec![
            "m/code/__torch__.py".to_string(),
            "m/code/__torch__/torch/nn/modules/linear.py".to_string(),
        ];
        assert!(class_has_source(
            "__torch__.torch.nn.modules.linear.Linear",
            &files
        ));
        assert!(class_has_source("__torch__.M", &files));
        assert!(!class_has_source(
            "__torch__.torch.nn.modules.conv.Conv2d",
            &files
        ));
        assert!(!class_has_source("torch.nn.Linear", &files));
    }
}

//! The `general.*` naming keys llama.cpp's converter derives from a model's id (gguf-py
//! `Metadata.get_model_id_components`, `id_to_title`, `size_label`): the same heuristics, so
//! the keys match what `convert_hf_to_gguf.py` writes for the same folder.
//!
//! The id is `_name_or_path` from `config.json` when it looks like `org/name`, then the
//! folder's name. A model card (`README.md` front matter) is not read.

/// What an id says about the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    /// `general.name`.
    pub name: Option<String>,
    /// `general.organization`.
    pub organization: Option<String>,
    /// `general.basename`.
    pub basename: Option<String>,
    /// `general.finetune`.
    pub finetune: Option<String>,
    /// `general.version`.
    pub version: Option<String>,
    /// `general.size_label`.
    pub size_label: Option<String>,
}

impl Naming {
    /// Naming from `_name_or_path` (when it has at most one `/`), completed by the folder's name,
    /// then the size label from the parameter count.
    pub fn derive(name_or_path: Option<&str>, folder: &str, total_params: u64) -> Naming {
        let mut n = Naming::default();
        if let Some(id) = name_or_path.filter(|s| s.matches('/').count() <= 1) {
            n.fill(&components(id, total_params));
        }
        n.fill(&components(folder, total_params));
        if n.name.is_none() {
            n.name = Some(folder.to_string());
        }
        if n.size_label.is_none() && total_params > 0 {
            n.size_label = Some(rounded_count(total_params));
        }
        n
    }

    fn fill(&mut self, c: &Components) {
        let set = |slot: &mut Option<String>, v: &Option<String>| {
            if slot.is_none() {
                slot.clone_from(v);
            }
        };
        set(&mut self.name, &c.full_name.as_deref().map(id_to_title));
        set(&mut self.organization, &c.org.as_deref().map(id_to_title));
        set(&mut self.basename, &c.basename);
        set(&mut self.finetune, &c.finetune);
        set(&mut self.version, &c.version);
        set(&mut self.size_label, &c.size_label);
    }
}

#[derive(Debug, Default)]
struct Components {
    full_name: Option<String>,
    org: Option<String>,
    basename: Option<String>,
    finetune: Option<String>,
    version: Option<String>,
    size_label: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    basename: bool,
    size_label: bool,
    finetune: bool,
    version: bool,
    ty: bool,
}

impl Kinds {
    fn is_empty(&self) -> bool {
        !(self.basename || self.size_label || self.finetune || self.version || self.ty)
    }
    fn count(&self) -> usize {
        [
            self.basename,
            self.size_label,
            self.finetune,
            self.version,
            self.ty,
        ]
        .iter()
        .filter(|&&b| b)
        .count()
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(v|iter)?\d+([.]\d+)*`, ignoring case.
fn is_version(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    let rest = l
        .strip_prefix("iter")
        .or_else(|| l.strip_prefix('v'))
        .unwrap_or(&l);
    // `v` alone followed by digits, or digits: every dot-separated piece is digits.
    (rest.len() < l.len() || !l.is_empty()) && rest.split('.').all(digits)
}

/// `i?q\d(_\w)*|b?fp?(16|32)`, ignoring case.
fn is_quant_type(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    let q = l.strip_prefix('i').unwrap_or(&l);
    if let Some(r) = q.strip_prefix('q') {
        let b = r.as_bytes();
        if b.first().is_some_and(u8::is_ascii_digit) {
            let tail = &b[1..];
            return tail.len() % 2 == 0
                && tail
                    .chunks(2)
                    .all(|c| c[0] == b'_' && (c[1].is_ascii_alphanumeric() || c[1] == b'_'));
        }
    }
    let f = l.strip_prefix('b').unwrap_or(&l);
    let Some(f) = f.strip_prefix('f') else {
        return false;
    };
    let f = f.strip_prefix('p').unwrap_or(f);
    f == "16" || f == "32"
}

/// `(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)`, ignoring case.
fn is_size(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    if matches!(
        l.as_str(),
        "small" | "mini" | "medium" | "large" | "xl" | "xxl"
    ) {
        return true;
    }
    let b = l.as_bytes();
    // Try each allowed prefix: none, `a`, digits + `x`.
    let mut starts = vec![0usize];
    if b.first() == Some(&b'a') {
        starts.push(1);
    }
    if let Some(x) = l.find('x') {
        if x > 0 && digits(&l[..x]) {
            starts.push(x + 1);
        }
    }
    starts.into_iter().any(|s| size_body(&b[s..]))
}

/// `\d+([._]\d+)?[kmbt]\d?` on lowercase bytes.
fn size_body(b: &[u8]) -> bool {
    let mut i = 0;
    let num = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if !num(&mut i) {
        return false;
    }
    if i < b.len() && (b[i] == b'.' || b[i] == b'_') {
        let save = i;
        i += 1;
        if !num(&mut i) {
            i = save;
        }
    }
    if i >= b.len() || !b"kmbt".contains(&b[i]) {
        return false;
    }
    i += 1;
    if i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i == b.len()
}

/// Python's `str.title()` for ASCII-dominated ids: a letter after a non-letter is upper-cased,
/// other letters lower-cased.
fn title(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut prev_letter = false;
    for c in w.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// Python's `str.islower()`: some cased character, none upper-case.
fn is_lower(w: &str) -> bool {
    w.chars().any(char::is_lowercase) && !w.chars().any(char::is_uppercase)
}

/// `^(v\d+(?:\.\d+)*|\d.*)$`.
fn is_version_or_number(w: &str) -> bool {
    if w.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return true;
    }
    w.strip_prefix('v')
        .is_some_and(|r| r.split('.').all(digits))
}

/// gguf-py `Metadata.id_to_title`.
pub fn id_to_title(s: &str) -> String {
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            if is_lower(w) && !is_version_or_number(w) {
                title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn components(model_id: &str, total_params: u64) -> Components {
    if model_id.contains(' ') {
        return Components {
            full_name: Some(model_id.to_string()),
            ..Components::default()
        };
    }
    let (mut org, full) = match model_id.split_once('/') {
        Some((o, n)) => (Some(o.to_string()), n.to_string()),
        None => (None, model_id.to_string()),
    };
    if org.as_deref().is_some_and(|o| o.starts_with('.')) {
        org = None;
    }
    let mut parts: Vec<String> = full
        .split('-')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut kinds = vec![Kinds::default(); parts.len()];
    for i in 0..parts.len() {
        let part = parts[i].clone();
        if is_version(&part) {
            kinds[i].version = true;
        } else if is_quant_type(&part) {
            kinds[i].ty = true;
            parts[i] = part.to_uppercase();
        } else if i > 0 && is_size(&part) {
            parts[i] = size_part(&part, total_params, &mut kinds[i]);
        } else if i > 0
            && matches!(
                part.to_ascii_lowercase().as_str(),
                "chat" | "instruct" | "vision" | "lora"
            )
        {
            kinds[i].finetune = true;
        }
    }
    // Word sizes (`small`) give way to a numeric one.
    let numeric_size = parts
        .iter()
        .zip(&kinds)
        .any(|(p, k)| k.size_label && p.chars().any(|c| c.is_ascii_digit()));
    if numeric_size {
        for (p, k) in parts.iter().zip(kinds.iter_mut()) {
            if k.size_label && p.chars().all(char::is_alphabetic) {
                k.size_label = false;
            }
        }
    }
    let mut at_start = true;
    for (p, k) in parts.iter().zip(kinds.iter_mut()) {
        let first_alpha = p.chars().next().is_some_and(char::is_alphabetic);
        if at_start && ((k.is_empty() && first_alpha) || k.version) {
            k.basename = true;
        } else {
            at_start = false;
            if k.is_empty() {
                k.finetune = true;
            }
        }
    }
    for k in kinds.iter_mut().rev() {
        if k.basename && k.count() > 1 {
            k.basename = false;
        } else {
            break;
        }
    }
    let join = |pick: &dyn Fn(&Kinds) -> bool| {
        let mut seen: Vec<&str> = Vec::new();
        for (p, k) in parts.iter().zip(&kinds) {
            if pick(k) {
                seen.push(p);
            }
        }
        (!seen.is_empty()).then(|| seen.join("-"))
    };
    let mut basename = join(&|k| k.basename);
    let size_label = {
        let mut seen: Vec<&str> = Vec::new();
        for (p, k) in parts.iter().zip(&kinds) {
            if k.size_label && !seen.contains(&p.as_str()) {
                seen.push(p);
            }
        }
        (!seen.is_empty()).then(|| seen.join("-"))
    };
    let finetune = join(&|k| k.finetune);
    let version = join(&|k| k.version && !k.basename);
    if size_label.is_none() && finetune.is_none() && version.is_none() {
        basename = None;
    }
    Components {
        full_name: Some(full),
        org,
        basename,
        finetune,
        version,
        size_label,
    }
}

/// Normalise a size part (`7b1` → `7.1B`) and decide whether it is a size or, far from the
/// real parameter count, a context length (a finetune part).
fn size_part(part: &str, total_params: u64, kinds: &mut Kinds) -> String {
    let mut p: Vec<char> = part.replace('_', ".").chars().collect();
    if p.last().is_some_and(|c| c.is_ascii_digit()) && p.len() >= 2 {
        // bloom-7b1 → 7.1b
        let (last, before) = (p[p.len() - 1], p[p.len() - 2]);
        p.truncate(p.len() - 2);
        p.push('.');
        p.push(last);
        p.push(before);
    }
    let n = p.len();
    if n > 1 && p[n - 2].is_ascii_digit() && "kmbt".contains(p[n - 1]) {
        p[n - 1] = p[n - 1].to_ascii_uppercase();
    }
    if total_params != 0 {
        let unit = p[n - 1];
        let head: String = p[..n - 1].iter().collect();
        if let Ok(v) = head.parse::<f64>() {
            let scale = match " KMBT".find(unit) {
                Some(e) => 1000f64.powi(e as i32),
                None => 0.001,
            };
            let label = v * scale;
            let total = total_params as f64;
            if (label - total).abs() > (7 * total_params / 8) as f64 {
                kinds.finetune = true;
                p[n - 1] = p[n - 1].to_ascii_lowercase();
            }
        }
    }
    if kinds.is_empty() {
        kinds.size_label = true;
    }
    p.into_iter().collect()
}

/// gguf-py `model_weight_count_rounded_notation(n, min_digits=2)`: `1.1B`, `22M`, `7.2K`.
pub fn rounded_count(n: u64) -> String {
    let x = n as f64;
    let (scaled, suffix) = if x > 1e12 {
        (x * 1e-12, "T")
    } else if x > 1e9 {
        (x * 1e-9, "B")
    } else if x > 1e6 {
        (x * 1e-6, "M")
    } else {
        (x * 1e-3, "K")
    };
    let rounded = round_half_even(scaled);
    let int_digits = rounded.to_string().trim_start_matches('0').len();
    let fix = 2usize.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

/// Python's `round(x)`: to the nearest integer, ties to even.
fn round_half_even(x: f64) -> u64 {
    let f = x.floor();
    let d = x - f;
    let r = if d > 0.5 || (d == 0.5 && (f as u64) % 2 == 1) {
        f + 1.0
    } else {
        f
    };
    r as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_split_as_gguf_py_splits_them() {
        let c = components("meta-llama/Llama-2-7b-chat-hf", 6_738_415_616);
        assert_eq!(c.org.as_deref(), Some("meta-llama"));
        assert_eq!(c.basename.as_deref(), Some("Llama-2"));
        assert_eq!(c.size_label.as_deref(), Some("7B"));
        assert_eq!(c.finetune.as_deref(), Some("chat-hf"));
        let c = components("TinyLlama-1.1B-Chat-v1.0", 1_100_048_384);
        assert_eq!(c.basename.as_deref(), Some("TinyLlama"));
        assert_eq!(c.size_label.as_deref(), Some("1.1B"));
        assert_eq!(c.finetune.as_deref(), Some("Chat"));
        assert_eq!(c.version.as_deref(), Some("v1.0"));
        // Nothing but a name: too ambiguous for a basename.
        let c = components("tiny", 1000);
        assert_eq!(c.basename, None);
    }

    #[test]
    fn titles_and_counts() {
        assert_eq!(id_to_title("tiny-llama-spm"), "Tiny Llama Spm");
        assert_eq!(id_to_title("Llama-2-7b-hf"), "Llama 2 7b Hf");
        assert_eq!(id_to_title("v1.0-model"), "v1.0 Model");
        assert_eq!(rounded_count(1_100_048_384), "1.1B");
        assert_eq!(rounded_count(6_738_415_616), "6.7B");
        assert_eq!(rounded_count(2_500_000), "2.5M");
        assert_eq!(rounded_count(22_000_000), "22M");
        assert_eq!(rounded_count(300), "0.30K");
    }
}

//! Chat templates (Jinja): where they live and how they parse. Nothing is ever rendered.
//!
//! Templates come from GGUF metadata (`tokenizer.chat_template` and `tokenizer.chat_template.<name>`,
//! see [`crate::format::gguf`]), from Hugging Face `tokenizer_config.json` (`chat_template` as a
//! string or a list of `{"name", "template"}`), legacy `chat_template.json`, and `*.jinja` files.
//!
//! Parsing uses minijinja's parser (its `unstable_machinery` AST). Two differences from Jinja2,
//! the engine that renders these templates in Python, are handled here:
//!
//! * Hugging Face adds the `{% generation %}` … `{% endgeneration %}` block tag (transformers'
//!   `AssistantTracker` extension); minijinja does not know it. Those two tags, and nothing else,
//!   are blanked to spaces of the same length before parsing, so every offset stays valid.
//! * Jinja2 decodes string literals with Python's `unicode-escape` (`\U0000005f`, `\N{LOW LINE}`,
//!   octal, `\x`); minijinja decodes a subset. [`python_literal`] re-decodes a literal's source
//!   text with Python's rules so the analyser sees what Jinja2 would.

use crate::format::access::find_from;
use minijinja::machinery::{ast, parse};
use minijinja::syntax::SyntaxConfig;

/// Largest template accepted, in bytes.
pub const MAX_TEMPLATE: usize = 1 << 20;
/// Most templates read from one file.
pub const MAX_TEMPLATES: usize = 64;
/// Largest JSON file read for templates.
pub const MAX_JSON: usize = 64 << 20;

/// Most operator, call, filter, attribute and subscript tokens in one `{{ … }}` or `{% … %}`
/// block. minijinja builds chains of these (`a.b.c…`, `x|f|g…`, `a + b + …`) into ASTs as deep
/// as the chain without a recursion limit, and walking or dropping a tree tens of thousands deep
/// overflows the stack; the longest block of the 70 llama.cpp templates has 26 such tokens.
pub const MAX_BLOCK_OPERATORS: usize = 200;

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Larger than [`MAX_TEMPLATE`].
    #[error("template of {0} bytes is larger than the limit of {MAX_TEMPLATE}")]
    TooLarge(usize),
    /// The Jinja parser rejected it (includes nesting beyond the parser's recursion limit).
    #[error("does not parse as Jinja: {0}")]
    Syntax(String),
    /// One block chains more operators than [`MAX_BLOCK_OPERATORS`].
    #[error("a block at byte {0} chains more than {MAX_BLOCK_OPERATORS} operators")]
    TooComplex(u32),
}

/// Why a JSON file's `chat_template` value is not one a loader reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateListError {
    /// More templates than [`MAX_TEMPLATES`].
    #[error("more than {MAX_TEMPLATES} chat templates")]
    TooMany,
    /// A list entry without a string `template`.
    #[error("chat_template entry {0} has no string `template`")]
    NoTemplate(usize),
    /// Neither a string, a list nor null.
    #[error("chat_template is neither a string nor a list")]
    Shape,
}

/// One template and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// Where: a GGUF key, `chat_template`, `chat_template[tool_use]`, or a file name.
    pub place: String,
    /// The template text.
    pub text: String,
}

/// A parsed template. `source` is the text the AST's spans refer to (HF block tags blanked).
pub struct Parsed {
    source: String,
}

impl Parsed {
    /// Parse `text` (after blanking the Hugging Face `generation` tags).
    pub fn new(text: &str) -> Result<Parsed, TemplateError> {
        if text.len() > MAX_TEMPLATE {
            return Err(TemplateError::TooLarge(text.len()));
        }
        let source = blank_generation_tags(text);
        if let Some(at) = too_complex(&source) {
            return Err(TemplateError::TooComplex(at));
        }
        // Parse once here to report errors; `with_ast` parses again borrowing `source`.
        parse(&source, "<template>", SyntaxConfig::default())
            .map_err(|e| TemplateError::Syntax(e.to_string()))?;
        Ok(Parsed { source })
    }

    /// The text spans refer to.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Run `f` over the AST.
    pub fn with_ast<R>(&self, f: impl FnOnce(&ast::Stmt<'_>) -> R) -> Result<R, TemplateError> {
        let ast = parse(&self.source, "<template>", SyntaxConfig::default())
            .map_err(|e| TemplateError::Syntax(e.to_string()))?;
        Ok(f(&ast))
    }
}

/// The offset of the first block with more than [`MAX_BLOCK_OPERATORS`] chaining tokens (the
/// lexer is iterative; a lexer error ends the check, and the parser reports it).
pub fn too_complex(source: &str) -> Option<u32> {
    use minijinja::machinery::{tokenize, Token};
    let mut count = 0usize;
    let mut start = 0u32;
    for tok in tokenize(source, false, SyntaxConfig::default()) {
        let Ok((tok, span)) = tok else { break };
        match tok {
            Token::VariableStart | Token::BlockStart => {
                count = 0;
                start = span.start_offset;
            }
            Token::Dot
            | Token::Pipe
            | Token::BracketOpen
            | Token::ParenOpen
            | Token::BraceOpen
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::FloorDiv
            | Token::Pow
            | Token::Mod
            | Token::Tilde
            | Token::Eq
            | Token::Ne
            | Token::Gt
            | Token::Gte
            | Token::Lt
            | Token::Lte
            | Token::Ident("and" | "or" | "not" | "in" | "is" | "if" | "else") => {
                count += 1;
                if count > MAX_BLOCK_OPERATORS {
                    return Some(start);
                }
            }
            _ => {}
        }
    }
    None
}

/// Replace `{% generation %}` / `{% endgeneration %}` (with any `-`/`+` whitespace control and
/// spacing) by spaces of the same length.
pub fn blank_generation_tags(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(p) = find_from(bytes, b"{%", i) {
        let mut j = p + 2;
        if j < bytes.len() && (bytes[j] == b'-' || bytes[j] == b'+') {
            j += 1;
        }
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let word_start = j;
        while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
            j += 1;
        }
        let word = &bytes[word_start..j];
        if word == b"generation" || word == b"endgeneration" {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && (bytes[j] == b'-' || bytes[j] == b'+') {
                j += 1;
            }
            if bytes[j..].starts_with(b"%}") {
                for b in &mut out[p..j + 2] {
                    *b = b' ';
                }
                i = j + 2;
                continue;
            }
        }
        i = p + 2;
    }
    // Only ASCII bytes were replaced by ASCII spaces: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Decode the source text of one or more adjacent Jinja string literals (`'a' "b"`) as Jinja2
/// does (Python `unicode-escape`). `None` when the text is not a run of quoted literals.
/// Unknown `\N{…}` names decode to U+FFFD; the second value says whether that happened.
pub fn python_literal(src: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut unknown = false;
    let mut chars = src.chars().peekable();
    let mut any = false;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(q) = chars.next() else { break };
        if q != '\'' && q != '"' {
            return None;
        }
        any = true;
        loop {
            let c = chars.next()?;
            if c == q {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = chars.next()?;
            match e {
                '\n' => {}
                '\\' | '\'' | '"' => out.push(e),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut v = e.to_digit(8)?;
                    for _ in 0..2 {
                        match chars.peek().and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                v = v * 8 + d;
                                chars.next();
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut v = 0u32;
                    for _ in 0..n {
                        let d = chars.next()?.to_digit(16)?;
                        v = v.checked_mul(16)?.checked_add(d)?;
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                'N' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let mut name = String::new();
                    loop {
                        let c = chars.next()?;
                        if c == '}' {
                            break;
                        }
                        if name.len() > 100 {
                            return None;
                        }
                        name.push(c);
                    }
                    match unicode_name(&name) {
                        Some(c) => out.push(c),
                        None => {
                            unknown = true;
                            out.push('\u{fffd}');
                        }
                    }
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }
    any.then_some((out, unknown))
}

/// The characters an attribute name is spelt with, by Unicode name (`\N{…}` escapes).
fn unicode_name(name: &str) -> Option<char> {
    let n = name.trim().to_ascii_uppercase();
    let simple = match n.as_str() {
        "LOW LINE" | "SPACING UNDERSCORE" => Some('_'),
        "FULL STOP" | "PERIOD" => Some('.'),
        "SPACE" => Some(' '),
        "LEFT SQUARE BRACKET" => Some('['),
        "RIGHT SQUARE BRACKET" => Some(']'),
        "APOSTROPHE" => Some('\''),
        "QUOTATION MARK" => Some('"'),
        "SOLIDUS" => Some('/'),
        "HYPHEN-MINUS" => Some('-'),
        _ => None,
    };
    if simple.is_some() {
        return simple;
    }
    let letter = |prefix: &str, lower: bool| -> Option<char> {
        let rest = n.strip_prefix(prefix)?;
        let mut cs = rest.chars();
        let c = cs.next()?;
        (cs.next().is_none() && c.is_ascii_uppercase()).then(|| {
            if lower {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
    };
    if let Some(c) = letter("LATIN SMALL LETTER ", true) {
        return Some(c);
    }
    if let Some(c) = letter("LATIN CAPITAL LETTER ", false) {
        return Some(c);
    }
    const DIGITS: [&str; 10] = [
        "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE",
    ];
    let d = n.strip_prefix("DIGIT ")?;
    DIGITS
        .iter()
        .position(|x| *x == d)
        .and_then(|i| char::from_digit(i as u32, 10))
}

/// Templates in a Hugging Face JSON file: `tokenizer_config.json` / `chat_template.json`
/// (`chat_template` as a string or a list of `{"name", "template"}`). `None` when the JSON has
/// no `chat_template` key. `Err` when the key is there but not of a known shape.
pub fn from_json(
    value: &serde_json::Value,
) -> Option<Result<Vec<TemplateSource>, TemplateListError>> {
    let t = value.as_object()?.get("chat_template")?;
    Some(match t {
        serde_json::Value::String(s) => Ok(vec![TemplateSource {
            place: "chat_template".into(),
            text: s.clone(),
        }]),
        serde_json::Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if out.len() >= MAX_TEMPLATES {
                    return Some(Err(TemplateListError::TooMany));
                }
                let name = item
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                match item.get("template").and_then(|t| t.as_str()) {
                    Some(text) => out.push(TemplateSource {
                        place: format!("chat_template[{name}]"),
                        text: text.to_string(),
                    }),
                    None => return Some(Err(TemplateListError::NoTemplate(i))),
                }
            }
            Ok(out)
        }
        serde_json::Value::Null => Ok(Vec::new()),
        _ => Err(TemplateListError::Shape),
    })
}

/// True when `text` looks like a Jinja template file (has a `{{ … }}` or `{% … %}` pair) and
/// nothing else we know. Used for `*.jinja` content detection.
pub fn looks_like_jinja(data: &[u8]) -> bool {
    if data.len() > MAX_TEMPLATE || std::str::from_utf8(data).is_err() {
        return false;
    }
    let has = |open: &[u8], close: &[u8]| {
        find_from(data, open, 0).is_some_and(|p| find_from(data, close, p + open.len()).is_some())
    };
    has(b"{%", b"%}") || has(b"{{", b"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_are_blanked_in_place() {
        let t = "a{%- generation -%}b{% endgeneration %}c{% if x %}{% endif %}";
        let b = blank_generation_tags(t);
        assert_eq!(b.len(), t.len());
        assert!(b.starts_with("a ") && b.contains("b ") && b.contains("{% if x %}"));
        assert!(Parsed::new(t).is_ok());
        assert!(Parsed::new("{% generationx %}").is_err());
    }

    #[test]
    fn python_escapes() {
        assert_eq!(
            python_literal(r#"'\x5f\u005f\U0000005fclass\N{LOW LINE}\137'"#),
            Some(("___class__".to_string(), false))
        );
        assert_eq!(
            python_literal(r#""a" 'b'"#),
            Some(("ab".to_string(), false))
        );
        assert_eq!(python_literal("x"), None);
        assert_eq!(
            python_literal(r"'\N{SNOWMAN}'"),
            Some(("\u{fffd}".to_string(), true))
        );
    }

    #[test]
    fn json_forms() {
        let v: serde_json::Value = serde_json::json!({"chat_template": [
            {"name": "default", "template": "{{ x }}"},
            {"name": "tool_use", "template": "{{ y }}"}
        ]});
        let t = from_json(&v).unwrap().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].place, "chat_template[tool_use]");
        assert!(from_json(&serde_json::json!({"a": 1})).is_none());
        assert!(from_json(&serde_json::json!({"chat_template": 3}))
            .unwrap()
            .is_err());
    }
}

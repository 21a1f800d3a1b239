//! Render symbolic values like Python source: `os.system('echo pwned')`.
//!
//! Rendering is bounded in depth and length, so a value shared a billion times through the memo
//! (or a list that contains itself) renders in a few hundred characters.

use super::value::{CallKind, Id, Value};
use super::vm::Vm;
use std::fmt::Write;

const MAX_DEPTH: usize = 8;
const MAX_ITEMS: usize = 8;
const MAX_BYTES_SHOWN: usize = 48;

/// Renders values of one machine within a character budget.
pub struct Renderer<'v, 'a> {
    vm: &'v Vm<'a>,
    out: String,
    budget: usize,
}

impl<'v, 'a> Renderer<'v, 'a> {
    /// Render `id` in at most about `budget` characters.
    pub fn render(vm: &'v Vm<'a>, id: Id, budget: usize) -> String {
        let mut r = Renderer {
            vm,
            out: String::new(),
            budget,
        };
        r.value(id, 0);
        r.finish()
    }

    /// Render a call; when the callable is a `functools.partial` object, add the call it really
    /// makes: `functools.partial(posix.system, 'x')()  ⇒ posix.system('x')`.
    pub fn render_effective_call(vm: &'v Vm<'a>, id: Id, budget: usize) -> String {
        let shown = Self::render(vm, id, budget);
        let Value::Object(call) = vm.value(id) else {
            return shown;
        };
        let Value::Object(partial) = vm.value(call.func) else {
            return shown;
        };
        if !super::resolve::Resolver::new(vm).is_partial(call.func) {
            return shown;
        }
        // `partial.__reduce__` gives the function alone as the argument and everything in the
        // BUILD state `(func, args, keywords, dict)`, which `__setstate__` installs.
        let state = partial.state.and_then(|s| vm.value(s).as_seq());
        let (func, bound, keywords) = match state {
            Some([func, args, rest @ ..]) => match vm.value(*args).as_seq() {
                Some(bound) => (*func, bound, rest.first().copied()),
                None => return shown,
            },
            _ => match vm
                .value(partial.args)
                .as_seq()
                .and_then(|a| a.split_first())
            {
                Some((&func, bound)) => (func, bound, None),
                None => return shown,
            },
        };
        let Some(extra) = vm.value(call.args).as_seq() else {
            return shown;
        };
        let mut r = Renderer {
            vm,
            out: String::new(),
            budget,
        };
        r.value(func, 1);
        r.push("(");
        let all: Vec<Id> = bound.iter().chain(extra.iter()).copied().collect();
        r.seq(&all, 1);
        if let Some(Value::Dict(pairs)) = keywords.map(|k| vm.value(k)) {
            for &(k, v) in pairs.iter().take(MAX_ITEMS) {
                if let Some(k) = vm.value(k).as_str() {
                    r.push(&format!("{}{k}=", if all.is_empty() { "" } else { ", " }));
                    r.value(v, 2);
                }
            }
        }
        r.push(")");
        format!("{shown}  ⇒ {}", r.finish())
    }

    /// Render `target.method(item)`.
    pub fn render_method(
        vm: &'v Vm<'a>,
        target: Id,
        method: &str,
        item: Id,
        budget: usize,
    ) -> String {
        let mut r = Renderer {
            vm,
            out: String::new(),
            budget,
        };
        r.value(target, 1);
        r.push(&format!(".{method}("));
        r.value(item, 1);
        r.push(")");
        r.finish()
    }

    fn finish(mut self) -> String {
        if self.out.chars().count() > self.budget {
            let cut: String = self.out.chars().take(self.budget).collect();
            self.out = cut + "…";
        }
        self.out
    }

    fn full(&self) -> bool {
        self.out.len() > self.budget * 4
    }

    fn push(&mut self, s: &str) {
        if !self.full() {
            self.out.push_str(s);
        }
    }

    fn seq(&mut self, items: &[Id], depth: usize) {
        for (i, &item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            if i >= MAX_ITEMS || self.full() {
                self.push(&format!("…{} more", items.len() - i));
                break;
            }
            self.value(item, depth + 1);
        }
    }

    fn value(&mut self, id: Id, depth: usize) {
        if self.full() {
            return;
        }
        if depth > MAX_DEPTH {
            self.push("…");
            return;
        }
        let vm = self.vm;
        match vm.value(id) {
            Value::None => self.push("None"),
            Value::Bool(b) => self.push(if *b { "True" } else { "False" }),
            Value::Int(i) => self.push(&i.to_string()),
            Value::BigInt(b) => self.push(&big_int(b)),
            Value::BigText(t) => self.push(t),
            Value::Float(f) => self.push(&float(*f)),
            Value::Str(s) => self.push(&str_repr(s, self.budget)),
            Value::Bytes(b) => self.push(&bytes_repr(b)),
            Value::ByteArray(b) => self.push(&format!("bytearray({})", bytes_repr(b))),
            Value::Tuple(items) => {
                self.push("(");
                self.seq(items, depth);
                if items.len() == 1 {
                    self.push(",");
                }
                self.push(")");
            }
            Value::List(items) => {
                self.push("[");
                self.seq(items, depth);
                self.push("]");
            }
            Value::Set(items) => {
                if items.is_empty() {
                    self.push("set()");
                } else {
                    self.push("{");
                    self.seq(items, depth);
                    self.push("}");
                }
            }
            Value::FrozenSet(items) => {
                self.push("frozenset({");
                self.seq(items, depth);
                self.push("})");
            }
            Value::Dict(pairs) => {
                self.push("{");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    if i >= MAX_ITEMS || self.full() {
                        self.push(&format!("…{} more", pairs.len() - i));
                        break;
                    }
                    self.value(*k, depth + 1);
                    self.push(": ");
                    self.value(*v, depth + 1);
                }
                self.push("}");
            }
            Value::Global(g) => {
                let g = vm.global(*g);
                self.push(&format!("{}.{}", g.module, g.name));
            }
            Value::Object(o) => {
                self.value(o.func, depth + 1);
                if matches!(o.kind, CallKind::NewObj | CallKind::NewObjEx) {
                    self.push(".__new__(");
                    self.value(o.func, depth + 1);
                    if vm.value(o.args).as_seq().is_some_and(|s| !s.is_empty()) {
                        self.push(", ");
                    }
                } else {
                    self.push("(");
                }
                match vm.value(o.args) {
                    Value::Tuple(items) => {
                        let items = items.clone();
                        self.seq(&items, depth);
                    }
                    _ => {
                        self.push("*");
                        self.value(o.args, depth + 1);
                    }
                }
                if let Some(kw) = o.kwargs {
                    match vm.value(kw) {
                        Value::Dict(pairs) if !pairs.is_empty() => {
                            let pairs = pairs.clone();
                            for (k, v) in pairs {
                                self.push(", ");
                                match vm.value(k).as_str() {
                                    Some(name) => self.push(name),
                                    None => self.value(k, depth + 1),
                                }
                                self.push("=");
                                self.value(v, depth + 1);
                            }
                        }
                        Value::Dict(_) => {}
                        _ => {
                            self.push(", **");
                            self.value(kw, depth + 1);
                        }
                    }
                }
                self.push(")");
            }
            Value::Persistent { pid, .. } => {
                self.push("persistent_load(");
                self.value(*pid, depth + 1);
                self.push(")");
            }
            Value::Buffer => self.push("<out-of-band buffer>"),
        }
    }
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A little-endian two's-complement integer as decimal text (bounded: huge ones are summarised).
fn big_int(b: &[u8]) -> String {
    if b.len() > 256 {
        return format!("<int of {} bytes>", b.len());
    }
    num_bigint::BigInt::from_signed_bytes_le(b).to_string()
}

/// Python's `repr` of a str.
pub fn str_repr(s: &str, budget: usize) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len().min(budget) + 2);
    out.push(quote);
    for (i, c) in s.chars().enumerate() {
        if i >= budget {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a bytes object, shortened past a few dozen bytes.
pub fn bytes_repr(b: &[u8]) -> String {
    let shown = &b[..b.len().min(MAX_BYTES_SHOWN)];
    let mut out = String::from("b'");
    for &c in shown {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('\'');
    if b.len() > shown.len() {
        let _ = write!(out, "…<{} bytes>", b.len());
    }
    out
}

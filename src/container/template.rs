//! Chat templates judged by their Jinja AST, never rendered.
//!
//! A chat template is Jinja source that inference servers render. Rendered by a plain
//! `jinja2.Environment` (llama-cpp-python before 0.2.72: CVE-2024-34359; SGLang's rerank endpoint:
//! CVE-2026-5760; litellm before its sandbox fix), a template reaches Python's object graph:
//! `().__class__.__base__.__subclasses__()`, `lipsum.__globals__['os'].popen(…)`,
//! `cycler.__init__.__globals__.os`. The analysis here:
//!
//! * folds string expressions built from constants (`~`, `+`, `%`, `|format`, `.format`,
//!   `|join`, `|replace`, `|reverse`, `|lower`, slices and indices, `dict(a=1)|list|first`),
//!   with values propagated through `{% set %}`, `{% with %}` and loops over constant lists, and
//!   literals re-decoded with Python's escape rules ([`crate::format::template::python_literal`]);
//! * judges every attribute name, item key and attribute-taking filter argument
//!   (`attr`, `map(attribute=…)`, `selectattr`, `sort(attribute=…)`, …) it can resolve:
//!   a name starting with `_` is dangerous ([`ids::TEMPLATE_DUNDER`]);
//! * judges the Jinja and Flask globals that lead to modules (`lipsum`, `cycler`, `joiner`,
//!   `namespace`, `self`, `config`, `request`, …) walked through attributes, and attribute
//!   names that only exist to run processes (`popen`, `system`, `_module`, …)
//!   ([`ids::TEMPLATE_GLOBAL_WALK`]);
//! * calls suspicious ([`ids::TEMPLATE_UNRESOLVED`]) what it cannot vouch for: attribute names
//!   computed from values it cannot fold, dunder strings that are built but not (visibly) used as
//!   names, `str.format` fields that traverse attributes, method calls outside what chat
//!   templates use, template loading (`include`, `import`, `extends`), and constant loops or
//!   strings large enough to exhaust a server;
//! * a template that does not parse, or exceeds a limit, is suspicious ([`ids::TEMPLATE_INVALID`]).
//!
//! Unknown top-level names (`messages`, `tools`, `raise_exception`, `strftime_now`, …) are the
//! renderer's inputs and are not judged.

use crate::format::template::{python_literal, Parsed, TemplateError};
use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::value::ValueKind;
use std::collections::HashMap;

/// Rule ids of template findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{
        TEMPLATE_DUNDER, TEMPLATE_GLOBAL_WALK, TEMPLATE_INVALID, TEMPLATE_UNRESOLVED,
    };
}

/// Steps of static evaluation per template: this many, plus two per byte of template (the
/// largest real template, 16 KiB, takes about 2 700).
const MAX_STEPS: usize = 20_000;
/// Longest folded string or list.
const MAX_VALUE: usize = 64 * 1024;
/// Most candidate values one expression may have.
const MAX_CANDIDATES: usize = 16;
/// `range` bound above which a loop is a resource problem (the Jinja2 sandbox's limit).
const MAX_RANGE: i128 = 100_000;

/// One problem found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Rule id (one of [`ids`]).
    pub rule: &'static str,
    /// Byte offset in the template text.
    pub offset: u32,
    /// What was found.
    pub message: String,
}

/// Globals of Jinja2 (`defaults.py`) and of Flask's template context whose attributes lead to
/// Python modules.
const RISKY_GLOBALS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "range",
    "dict",
    "self",
    "config",
    "request",
    "session",
    "url_for",
    "get_flashed_messages",
    "g",
];

/// Attribute names that only exist to run processes or import code: dangerous wherever they are
/// reached in a template.
const PROCESS_ATTRS: &[&str] = &[
    "popen",
    "system",
    "_module",
    "import_module",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "spawnl",
    "spawnv",
    "spawnve",
    "execv",
    "execve",
    "load_module",
    "exec_module",
];

/// Attribute names that lead to modules or builtins: dangerous after a risky global, otherwise
/// suspicious.
const MODULE_ATTRS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "builtins",
    "globals",
    "modules",
    "importlib",
    "eval",
    "exec",
    "compile",
    "open",
    "getattr",
    "func_globals",
    "f_globals",
    "gi_frame",
    "application",
];

/// Method names real chat templates call (census over llama.cpp's and transformers' templates),
/// plus the rest of Python's inert `str`/`list`/`dict` methods and Jinja's loop/cycler helpers.
const KNOWN_METHODS: &[&str] = &[
    "append",
    "capitalize",
    "center",
    "count",
    "cycle",
    "copy",
    "current",
    "endswith",
    "extend",
    "find",
    "format",
    "get",
    "index",
    "insert",
    "isalnum",
    "isalpha",
    "isdigit",
    "islower",
    "isnumeric",
    "isspace",
    "istitle",
    "isupper",
    "items",
    "join",
    "keys",
    "lower",
    "lstrip",
    "next",
    "pop",
    "removeprefix",
    "removesuffix",
    "replace",
    "reset",
    "rfind",
    "rindex",
    "rsplit",
    "rstrip",
    "setdefault",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "swapcase",
    "title",
    "update",
    "upper",
    "values",
    "zfill",
    "changed",
    "remove",
    "clear",
    "sort",
    "reverse",
    "casefold",
    "partition",
    "rpartition",
    "ljust",
    "rjust",
    "expandtabs",
    "encode",
    "decode",
    "strftime",
    "isoformat",
    "tojson",
    "add",
    "discard",
];

/// Filters whose keyword `attribute` (and, for some, first positional argument) is a dotted
/// attribute path that Jinja resolves with `getattr` (`make_attrgetter`).
const ATTRIBUTE_FILTERS: &[&str] = &[
    "map",
    "selectattr",
    "rejectattr",
    "sort",
    "groupby",
    "sum",
    "unique",
    "min",
    "max",
    "join",
    "dictsort",
];

/// Positional and keyword arguments, statically known.
type Args = (Vec<Sv>, Vec<(String, Sv)>);

/// A statically known value.
#[derive(Debug, Clone, PartialEq)]
enum Sv {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    None,
    List(Vec<Sv>),
    Map(Vec<(Sv, Sv)>),
}

impl Sv {
    fn to_str(&self) -> Option<String> {
        Some(match self {
            Sv::Str(s) => s.clone(),
            Sv::Int(i) => i.to_string(),
            Sv::Float(f) => format!("{f}"),
            Sv::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Sv::None => "None".to_string(),
            Sv::List(items) => {
                let parts: Option<Vec<String>> = items.iter().map(|i| i.repr()).collect();
                format!("[{}]", parts?.join(", "))
            }
            Sv::Map(_) => return None,
        })
    }
    fn repr(&self) -> Option<String> {
        match self {
            Sv::Str(s) => Some(format!("'{s}'")),
            other => other.to_str(),
        }
    }
    fn size(&self) -> usize {
        match self {
            Sv::Str(s) => s.len(),
            Sv::List(l) => l.iter().map(Sv::size).sum::<usize>() + l.len(),
            Sv::Map(m) => m.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>() + m.len(),
            _ => 8,
        }
    }
    /// Items of an iterable (strings iterate characters, maps their keys).
    fn items(&self) -> Option<Vec<Sv>> {
        match self {
            Sv::List(l) => Some(l.clone()),
            Sv::Str(s) => Some(s.chars().map(|c| Sv::Str(c.to_string())).collect()),
            Sv::Map(m) => Some(m.iter().map(|(k, _)| k.clone()).collect()),
            _ => None,
        }
    }
}

/// Stack for the analysis: the parser accepts 150 levels of nesting and [`MAX_BLOCK_OPERATORS`]
/// chained operators per block, and parsing, judging and dropping the AST recurse over both.
/// Measured: a debug build needs under 2 MiB for the worst accepted template.
///
/// [`MAX_BLOCK_OPERATORS`]: crate::format::template::MAX_BLOCK_OPERATORS
const ANALYSIS_STACK: usize = 16 << 20;

/// Analyse one template's text (on a thread of its own with a known stack, so the caller's
/// stack size does not matter).
pub fn analyse(text: &str) -> Vec<Issue> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("template-analysis".into())
            .stack_size(ANALYSIS_STACK)
            .spawn_scoped(s, || analyse_here(text))
            .ok()
            .and_then(|h| h.join().ok())
    })
    .unwrap_or_else(|| {
        vec![Issue {
            rule: ids::TEMPLATE_INVALID,
            offset: 0,
            message: "chat template could not be analysed (no analysis thread)".into(),
        }]
    })
}

fn analyse_here(text: &str) -> Vec<Issue> {
    let parsed = match Parsed::new(text) {
        Ok(p) => p,
        Err(e) => {
            return vec![Issue {
                rule: ids::TEMPLATE_INVALID,
                offset: 0,
                message: match e {
                    TemplateError::TooLarge(_) | TemplateError::TooComplex(_) => {
                        format!("chat template: {e}")
                    }
                    TemplateError::Syntax(_) => format!(
                        "chat template {e}: it cannot be vouched for (Jinja2 may still render it)"
                    ),
                },
            }]
            .into_iter()
            .chain(token_scan(text))
            .collect()
        }
    };
    let source = parsed.source().to_string();
    parsed
        .with_ast(|stmt| {
            let mut a = Analyser {
                source: &source,
                env: HashMap::new(),
                issues: Vec::new(),
                steps: 0,
                max_steps: MAX_STEPS + 2 * text.len(),
                budget_hit: false,
            };
            // Bindings first (twice, so a set that uses an earlier set resolves), then judging.
            for _ in 0..2 {
                a.bind_stmt(stmt);
            }
            a.judge_stmt(stmt);
            if a.budget_hit {
                a.issue(
                    ids::TEMPLATE_INVALID,
                    0,
                    format!(
                        "static evaluation stopped after {} steps: the template is too complex to vouch for",
                        a.max_steps
                    ),
                );
            }
            a.finish()
        })
        .unwrap_or_else(|e| {
            vec![Issue {
                rule: ids::TEMPLATE_INVALID,
                offset: 0,
                message: format!("chat template {e}"),
            }]
        })
}

struct Analyser<'s> {
    source: &'s str,
    /// Variable → every constant value assigned to it anywhere.
    env: HashMap<String, Vec<Sv>>,
    issues: Vec<Issue>,
    steps: usize,
    max_steps: usize,
    budget_hit: bool,
}

fn offset(e: &Expr<'_>) -> u32 {
    e.span().start_offset
}

fn is_dunderish(s: &str) -> bool {
    s.starts_with('_')
}

impl<'s> Analyser<'s> {
    fn issue(&mut self, rule: &'static str, offset: u32, message: String) {
        if self.issues.len() < 200
            && !self
                .issues
                .iter()
                .any(|i| i.rule == rule && i.message == message)
        {
            self.issues.push(Issue {
                rule,
                offset,
                message,
            });
        }
    }

    fn finish(self) -> Vec<Issue> {
        self.issues
    }

    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps > self.max_steps {
            self.budget_hit = true;
            false
        } else {
            true
        }
    }

    // ----- bindings -----

    fn bind(&mut self, name: &str, values: Vec<Sv>) {
        let slot = self.env.entry(name.to_string()).or_default();
        for v in values {
            if slot.len() >= MAX_CANDIDATES {
                break;
            }
            if !slot.contains(&v) {
                slot.push(v);
            }
        }
    }

    fn bind_target(&mut self, target: &Expr<'_>, values: Vec<Sv>) {
        match target {
            Expr::Var(v) => self.bind(v.id, values),
            Expr::List(l) => self.bind_unpack(&l.items, values),
            Expr::Tuple(t) => self.bind_unpack(&t.items, values),
            _ => {}
        }
    }

    fn bind_unpack(&mut self, targets: &[Expr<'_>], values: Vec<Sv>) {
        for v in values {
            if let Some(items) = v.items() {
                if items.len() == targets.len() {
                    for (t, i) in targets.iter().zip(items) {
                        self.bind_target(t, vec![i]);
                    }
                }
            }
        }
    }

    fn bind_stmts(&mut self, stmts: &[Stmt<'_>]) {
        for s in stmts {
            self.bind_stmt(s);
        }
    }

    fn bind_stmt(&mut self, stmt: &Stmt<'_>) {
        if !self.step() {
            return;
        }
        match stmt {
            Stmt::Template(t) => self.bind_stmts(&t.children),
            Stmt::Set(s) => {
                let v = self.eval(&s.expr);
                self.bind_target(&s.target, v);
            }
            Stmt::SetBlock(s) => {
                // `{% set x %}raw text{% endset %}`: a constant when the body is only text.
                let mut text = String::new();
                let mut constant = true;
                for c in &s.body {
                    match c {
                        Stmt::EmitRaw(r) => text.push_str(r.raw),
                        Stmt::EmitExpr(e) => match self.eval(&e.expr).as_slice() {
                            [one] => match one.to_str() {
                                Some(s) => text.push_str(&s),
                                None => constant = false,
                            },
                            _ => constant = false,
                        },
                        _ => constant = false,
                    }
                }
                if constant && text.len() <= MAX_VALUE {
                    self.bind_target(&s.target, vec![Sv::Str(text)]);
                }
                self.bind_stmts(&s.body);
            }
            Stmt::ForLoop(f) => {
                let iters = self.eval(&f.iter);
                let mut items = Vec::new();
                for it in iters {
                    if let Some(list) = it.items() {
                        items.extend(list.into_iter().take(MAX_CANDIDATES));
                    }
                }
                items.truncate(MAX_CANDIDATES);
                if !items.is_empty() {
                    self.bind_target(&f.target, items);
                }
                self.bind_stmts(&f.body);
                self.bind_stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.bind_stmts(&i.true_body);
                self.bind_stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    let v = self.eval(e);
                    self.bind_target(t, v);
                }
                self.bind_stmts(&w.body);
            }
            Stmt::AutoEscape(a) => self.bind_stmts(&a.body),
            Stmt::FilterBlock(f) => self.bind_stmts(&f.body),
            Stmt::Block(b) => self.bind_stmts(&b.body),
            Stmt::Macro(m) => {
                // Defaults bind the trailing arguments.
                let skip = m.args.len().saturating_sub(m.defaults.len());
                for (arg, d) in m.args.iter().skip(skip).zip(&m.defaults) {
                    let v = self.eval(d);
                    self.bind_target(arg, v);
                }
                self.bind_stmts(&m.body);
            }
            Stmt::CallBlock(c) => self.bind_stmts(&c.macro_decl.body),
            _ => {}
        }
    }

    // ----- static evaluation -----

    /// Every value `e` may statically have (empty: unknown).
    fn eval(&mut self, e: &Expr<'_>) -> Vec<Sv> {
        if !self.step() {
            return Vec::new();
        }
        let mut out = self.eval_inner(e);
        out.retain(|v| v.size() <= MAX_VALUE);
        out.truncate(MAX_CANDIDATES);
        out
    }

    fn eval1(&mut self, e: &Expr<'_>) -> Option<Sv> {
        let v = self.eval(e);
        (v.len() == 1).then(|| v.into_iter().next().expect("one value"))
    }

    fn const_value(&self, c: &ast::Spanned<ast::Const>) -> Vec<Sv> {
        let v = &c.value;
        match v.kind() {
            ValueKind::String => {
                let mine = v.as_str().unwrap_or_default().to_string();
                let span = c.span();
                let src = self
                    .source
                    .get(span.start_offset as usize..span.end_offset as usize)
                    .unwrap_or("");
                let mut out = vec![Sv::Str(mine.clone())];
                if let Some((py, _)) = python_literal(src) {
                    if py != mine {
                        out.push(Sv::Str(py));
                    }
                }
                out
            }
            ValueKind::Bool => vec![Sv::Bool(v.is_true())],
            ValueKind::None | ValueKind::Undefined => vec![Sv::None],
            ValueKind::Number => {
                if let Ok(i) = i128::try_from(v.clone()) {
                    vec![Sv::Int(i)]
                } else if let Ok(f) = f64::try_from(v.clone()) {
                    vec![Sv::Float(f)]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    fn eval_items(&mut self, items: &[Expr<'_>]) -> Vec<Sv> {
        let mut lists: Vec<Vec<Sv>> = vec![Vec::new()];
        for item in items {
            let vals = self.eval(item);
            if vals.is_empty() {
                return Vec::new();
            }
            let mut next = Vec::new();
            for l in &lists {
                for v in &vals {
                    if next.len() >= MAX_CANDIDATES {
                        break;
                    }
                    let mut l2 = l.clone();
                    l2.push(v.clone());
                    next.push(l2);
                }
            }
            lists = next;
        }
        lists.into_iter().map(Sv::List).collect()
    }

    fn eval_args(&mut self, args: &[CallArg<'_>]) -> Option<Args> {
        let mut pos = Vec::new();
        let mut kw = Vec::new();
        for a in args {
            match a {
                CallArg::Pos(e) => pos.push(self.eval1(e)?),
                CallArg::Kwarg(k, e) => kw.push((k.to_string(), self.eval1(e)?)),
                _ => return None,
            }
        }
        Some((pos, kw))
    }

    fn eval_inner(&mut self, e: &Expr<'_>) -> Vec<Sv> {
        match e {
            Expr::Const(c) => self.const_value(c),
            Expr::Var(v) => self.env.get(v.id).cloned().unwrap_or_default(),
            Expr::UnaryOp(u) => {
                let vals = self.eval(&u.expr);
                vals.into_iter()
                    .filter_map(|v| match (&u.op, v) {
                        (ast::UnaryOpKind::Neg, Sv::Int(i)) => Some(Sv::Int(-i)),
                        (ast::UnaryOpKind::Neg, Sv::Float(f)) => Some(Sv::Float(-f)),
                        (ast::UnaryOpKind::Not, Sv::Bool(b)) => Some(Sv::Bool(!b)),
                        _ => None,
                    })
                    .collect()
            }
            Expr::List(l) => self.eval_items(&l.items),
            Expr::Tuple(t) => self.eval_items(&t.items),
            Expr::Map(m) => {
                let mut out = Vec::new();
                for (k, v) in m.keys.iter().zip(&m.values) {
                    match (self.eval1(k), self.eval1(v)) {
                        (Some(k), Some(v)) => out.push((k, v)),
                        _ => return Vec::new(),
                    }
                }
                vec![Sv::Map(out)]
            }
            Expr::IfExpr(i) => {
                let mut out = self.eval(&i.true_expr);
                match &i.false_expr {
                    Some(f) => out.extend(self.eval(f)),
                    None => out.push(Sv::Str(String::new())),
                }
                out
            }
            Expr::BinOp(b) => {
                let l = self.eval(&b.left);
                let r = self.eval(&b.right);
                let mut out = Vec::new();
                for lv in &l {
                    for rv in &r {
                        if let Some(v) = binop(b.op, lv, rv) {
                            out.push(v);
                        }
                    }
                }
                out
            }
            Expr::GetItem(g) => {
                let base = self.eval(&g.expr);
                let key = self.eval(&g.subscript_expr);
                let mut out = Vec::new();
                for b in &base {
                    for k in &key {
                        if let Some(v) = index(b, k) {
                            out.push(v);
                        }
                    }
                }
                out
            }
            Expr::Slice(s) => {
                let base = self.eval(&s.expr);
                let bound = |a: &mut Self, x: &Option<Expr<'_>>| -> Option<Option<i128>> {
                    match x {
                        None => Some(None),
                        Some(e) => match a.eval1(e)? {
                            Sv::Int(i) => Some(Some(i)),
                            Sv::None => Some(None),
                            _ => None,
                        },
                    }
                };
                let (Some(start), Some(stop), Some(step)) = (
                    bound(self, &s.start),
                    bound(self, &s.stop),
                    bound(self, &s.step),
                ) else {
                    return Vec::new();
                };
                base.iter()
                    .filter_map(|b| slice(b, start, stop, step))
                    .collect()
            }
            Expr::Filter(f) => {
                let Some(inner) = &f.expr else {
                    return Vec::new();
                };
                let base = self.eval(inner);
                let Some((pos, kw)) = self.eval_args(&f.args) else {
                    return Vec::new();
                };
                base.iter()
                    .filter_map(|b| filter(f.name, b, &pos, &kw))
                    .collect()
            }
            Expr::Call(c) => match &c.expr {
                Expr::Var(v) if v.id == "dict" => {
                    let Some((pos, kw)) = self.eval_args(&c.args) else {
                        return Vec::new();
                    };
                    if !pos.is_empty() {
                        return Vec::new();
                    }
                    vec![Sv::Map(
                        kw.into_iter().map(|(k, v)| (Sv::Str(k), v)).collect(),
                    )]
                }
                Expr::GetAttr(g) => {
                    let base = self.eval(&g.expr);
                    let Some((pos, kw)) = self.eval_args(&c.args) else {
                        return Vec::new();
                    };
                    base.iter()
                        .filter_map(|b| method(g.name, b, &pos, &kw))
                        .collect()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    // ----- judging -----

    fn judge_stmts(&mut self, stmts: &[Stmt<'_>]) {
        for s in stmts {
            self.judge_stmt(s);
        }
    }

    fn judge_stmt(&mut self, stmt: &Stmt<'_>) {
        match stmt {
            Stmt::Template(t) => self.judge_stmts(&t.children),
            Stmt::EmitExpr(e) => self.judge_expr(&e.expr),
            Stmt::EmitRaw(r) => {
                if let Some(name) = SENSITIVE_DUNDERS.iter().find(|d| r.raw.contains(**d)) {
                    self.issue(
                        ids::TEMPLATE_UNRESOLVED,
                        r.span().start_offset,
                        format!("literal template text names `{name}`"),
                    );
                }
            }
            Stmt::ForLoop(f) => {
                self.judge_expr(&f.target);
                self.judge_expr(&f.iter);
                if let Some(fe) = &f.filter_expr {
                    self.judge_expr(fe);
                }
                self.judge_stmts(&f.body);
                self.judge_stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.judge_expr(&i.expr);
                self.judge_stmts(&i.true_body);
                self.judge_stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    self.judge_expr(t);
                    self.judge_expr(e);
                }
                self.judge_stmts(&w.body);
            }
            Stmt::Set(s) => {
                self.judge_target(&s.target);
                self.judge_expr(&s.expr);
            }
            Stmt::SetBlock(s) => {
                self.judge_target(&s.target);
                if let Some(f) = &s.filter {
                    self.judge_expr(f);
                }
                self.judge_stmts(&s.body);
            }
            Stmt::AutoEscape(a) => {
                self.judge_expr(&a.enabled);
                self.judge_stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.judge_expr(&f.filter);
                self.judge_stmts(&f.body);
            }
            Stmt::Block(b) => self.judge_stmts(&b.body),
            Stmt::Import(i) => {
                self.load(i.span().start_offset, "import");
                self.judge_expr(&i.expr);
            }
            Stmt::FromImport(i) => {
                self.load(i.span().start_offset, "from … import");
                self.judge_expr(&i.expr);
            }
            Stmt::Extends(x) => {
                self.load(x.span().start_offset, "extends");
                self.judge_expr(&x.name);
            }
            Stmt::Include(x) => {
                self.load(x.span().start_offset, "include");
                self.judge_expr(&x.name);
            }
            Stmt::Macro(m) => {
                for d in &m.defaults {
                    self.judge_expr(d);
                }
                self.judge_stmts(&m.body);
            }
            Stmt::CallBlock(c) => {
                self.judge_call(&c.call);
                self.judge_stmts(&c.macro_decl.body);
            }
            Stmt::Do(d) => self.judge_call(&d.call),
            Stmt::Continue(_) | Stmt::Break(_) => {}
        }
    }

    fn load(&mut self, offset: u32, what: &str) {
        self.issue(
            ids::TEMPLATE_UNRESOLVED,
            offset,
            format!("`{{% {what} %}}` loads another template, which the scan cannot see"),
        );
    }

    /// `{% set ns.attr = … %}` assigns an attribute: the name must not be private either.
    fn judge_target(&mut self, t: &Expr<'_>) {
        match t {
            Expr::GetAttr(g) => {
                self.check_name(g.name, "attribute assignment", offset(t), &g.expr);
            }
            Expr::List(l) => l.items.iter().for_each(|i| self.judge_target(i)),
            Expr::Tuple(l) => l.items.iter().for_each(|i| self.judge_target(i)),
            _ => {}
        }
    }

    /// The variable an attribute chain starts from, if it is a plain variable reached only
    /// through attribute and item accesses (`lipsum.__globals__['os']` → `lipsum`).
    fn chain_root<'a>(e: &'a Expr<'a>) -> Option<&'a str> {
        match e {
            Expr::Var(v) => Some(v.id),
            Expr::GetAttr(g) => Self::chain_root(&g.expr),
            Expr::GetItem(g) => Self::chain_root(&g.expr),
            Expr::Filter(f) if f.name == "attr" => f.expr.as_ref().and_then(Self::chain_root),
            _ => None,
        }
    }

    /// True when `e` (the object an attribute is taken from) is, or is reached from, a risky
    /// global or a private attribute.
    fn tainted(&mut self, e: &Expr<'_>) -> bool {
        match e {
            Expr::Var(v) => RISKY_GLOBALS.contains(&v.id) && !self.env.contains_key(v.id),
            Expr::GetAttr(g) => is_dunderish(g.name) || self.tainted(&g.expr),
            Expr::GetItem(g) => {
                let keys = self.eval(&g.subscript_expr);
                keys.iter()
                    .any(|k| matches!(k, Sv::Str(s) if is_dunderish(s) || MODULE_ATTRS.contains(&s.as_str())))
                    || self.tainted(&g.expr)
            }
            Expr::Call(c) => self.tainted(&c.expr),
            Expr::Filter(f) => f.expr.as_ref().is_some_and(|x| self.tainted(x)),
            _ => false,
        }
    }

    /// Judge one attribute name taken from `base`.
    fn check_name(&mut self, name: &str, how: &str, at: u32, base: &Expr<'_>) {
        let root = Self::chain_root(base)
            .filter(|r| RISKY_GLOBALS.contains(r) && !self.env.contains_key(*r));
        if is_dunderish(name) {
            match root {
                Some(r) => self.issue(
                    ids::TEMPLATE_GLOBAL_WALK,
                    at,
                    format!("{how} `{name}` on the Jinja global `{r}`: walks to Python internals and modules"),
                ),
                None => self.issue(
                    ids::TEMPLATE_DUNDER,
                    at,
                    format!("{how} `{name}`: private/dunder names reach Python internals (sandbox escape)"),
                ),
            }
            return;
        }
        if PROCESS_ATTRS.contains(&name) {
            self.issue(
                ids::TEMPLATE_GLOBAL_WALK,
                at,
                format!("{how} `{name}`: runs processes or imports code"),
            );
            return;
        }
        let tainted = self.tainted(base);
        if MODULE_ATTRS.contains(&name) {
            if tainted {
                self.issue(
                    ids::TEMPLATE_GLOBAL_WALK,
                    at,
                    format!("{how} `{name}` reached from Python internals or a Jinja global"),
                );
            } else {
                self.issue(
                    ids::TEMPLATE_UNRESOLVED,
                    at,
                    format!("{how} `{name}` names a module or builtin"),
                );
            }
            return;
        }
        if let Some(r) = root {
            if matches!(base, Expr::Var(_)) {
                self.issue(
                    ids::TEMPLATE_UNRESOLVED,
                    at,
                    format!("{how} `{name}` on the Jinja global `{r}`"),
                );
            }
        }
    }

    /// Judge a name computed by an expression (item key, `attr` argument).
    fn check_computed(
        &mut self,
        key: &Expr<'_>,
        how: &str,
        at: u32,
        base: &Expr<'_>,
        attribute: bool,
    ) {
        let vals = self.eval(key);
        if vals.is_empty() {
            if attribute {
                self.issue(
                    ids::TEMPLATE_UNRESOLVED,
                    at,
                    format!("{how} with a name computed at render time"),
                );
            }
            return;
        }
        for v in vals {
            if let Sv::Str(s) = v {
                self.check_name(&s, how, at, base);
            } else if attribute {
                self.issue(
                    ids::TEMPLATE_UNRESOLVED,
                    at,
                    format!("{how} with a name that is not a string"),
                );
            }
        }
    }

    /// A dotted attribute path given to a filter (`map(attribute='a.b')`).
    fn check_path(&mut self, e: &Expr<'_>, how: &str, base: &Expr<'_>) {
        let vals = self.eval(e);
        let at = offset(e);
        if vals.is_empty() {
            self.issue(
                ids::TEMPLATE_UNRESOLVED,
                at,
                format!("{how} with an attribute path computed at render time"),
            );
        }
        for v in vals {
            if let Sv::Str(s) = v {
                for part in s.split('.') {
                    self.check_name(part, how, at, base);
                }
            }
        }
    }

    fn judge_args(&mut self, args: &[CallArg<'_>]) {
        for a in args {
            match a {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.judge_expr(e),
            }
        }
    }

    fn judge_call(&mut self, c: &ast::Spanned<ast::Call<'_>>) {
        let at = c.span().start_offset;
        match &c.expr {
            Expr::GetAttr(g) => {
                if !KNOWN_METHODS.contains(&g.name)
                    && !is_dunderish(g.name)
                    && !PROCESS_ATTRS.contains(&g.name)
                    && !MODULE_ATTRS.contains(&g.name)
                {
                    // `self.blockname()` and macro calls through imports are attribute calls too.
                    self.issue(
                        ids::TEMPLATE_UNRESOLVED,
                        at,
                        format!(
                            "call of the method `{}`, which chat templates do not use",
                            g.name
                        ),
                    );
                }
                if g.name == "format" || g.name == "format_map" {
                    let fmts = self.eval(&g.expr);
                    for f in fmts {
                        if let Sv::Str(s) = f {
                            self.check_format_fields(&s, at, &g.expr);
                        }
                    }
                }
            }
            Expr::Var(v) if v.id == "range" && !self.env.contains_key("range") => {
                for a in &c.args {
                    if let CallArg::Pos(e) = a {
                        if let Some(Sv::Int(n)) = self.eval1(e) {
                            if n.abs() > MAX_RANGE {
                                self.issue(
                                    ids::TEMPLATE_UNRESOLVED,
                                    at,
                                    format!("range({n}): a loop this large exhausts the renderer"),
                                );
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        self.judge_expr(&c.expr);
        self.judge_args(&c.args);
    }

    /// `str.format` fields that traverse attributes or items (`{0.__class__}`, `{x[y]}`).
    fn check_format_fields(&mut self, fmt: &str, at: u32, base: &Expr<'_>) {
        let mut rest = fmt;
        while let Some(p) = rest.find('{') {
            let after = &rest[p + 1..];
            if let Some(r) = after.strip_prefix('{') {
                rest = r;
                continue;
            }
            let Some(end) = after.find('}') else { break };
            let field = &after[..end];
            let name = field.split([':', '!']).next().unwrap_or("");
            if name.contains('.') || name.contains('[') {
                let parts: Vec<&str> = name
                    .split(['.', '['])
                    .skip(1)
                    .map(|p| p.trim_end_matches(']'))
                    .collect();
                if parts.iter().any(|p| is_dunderish(p)) {
                    self.issue(
                        ids::TEMPLATE_DUNDER,
                        at,
                        format!("format field `{{{field}}}` reaches private attributes through str.format"),
                    );
                } else {
                    for p in parts {
                        if PROCESS_ATTRS.contains(&p) || MODULE_ATTRS.contains(&p) {
                            self.check_name(p, "str.format field", at, base);
                        }
                    }
                    self.issue(
                        ids::TEMPLATE_UNRESOLVED,
                        at,
                        format!(
                            "format field `{{{field}}}` traverses attributes through str.format"
                        ),
                    );
                }
            }
            rest = &after[end + 1..];
        }
    }

    fn judge_expr(&mut self, e: &Expr<'_>) {
        if !self.step() {
            return;
        }
        match e {
            Expr::Var(_) => {}
            Expr::Const(c) => {
                for v in self.const_value(c) {
                    self.check_constant(&v, offset(e));
                }
                let span = c.span();
                let src = self
                    .source
                    .get(span.start_offset as usize..span.end_offset as usize)
                    .unwrap_or("");
                if let Some((_, true)) = python_literal(src) {
                    self.issue(
                        ids::TEMPLATE_UNRESOLVED,
                        offset(e),
                        "string literal with a \\N{…} escape the scan cannot decode".into(),
                    );
                }
            }
            Expr::Slice(s) => {
                self.judge_expr(&s.expr);
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.judge_expr(x);
                }
                self.fold_check(e);
            }
            Expr::UnaryOp(u) => self.judge_expr(&u.expr),
            Expr::BinOp(b) => {
                self.judge_expr(&b.left);
                self.judge_expr(&b.right);
                if matches!(b.op, ast::BinOpKind::Mul) {
                    for v in self.eval(&b.left).iter().chain(self.eval(&b.right).iter()) {
                        if let Sv::Int(n) = v {
                            if *n > MAX_VALUE as i128 {
                                self.issue(
                                    ids::TEMPLATE_UNRESOLVED,
                                    offset(e),
                                    format!("repetition by {n}: output large enough to exhaust the renderer"),
                                );
                            }
                        }
                    }
                }
                self.fold_check(e);
            }
            Expr::Compare(c) => {
                self.judge_expr(&c.expr);
                for op in &c.ops {
                    self.judge_expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.judge_expr(&i.test_expr);
                self.judge_expr(&i.true_expr);
                if let Some(f) = &i.false_expr {
                    self.judge_expr(f);
                }
            }
            Expr::Filter(f) => {
                let at = offset(e);
                // In `{% filter attr('x') %}…{% endfilter %}` the filter applies to the block's
                // text: the object is then the filter expression itself.
                let inner: &Expr<'_> = f.expr.as_ref().unwrap_or(e);
                {
                    if let Some(x) = &f.expr {
                        self.judge_expr(x);
                    }
                    if f.name == "attr" {
                        match f.args.first() {
                            Some(CallArg::Pos(k)) => {
                                self.check_computed(k, "attr filter", at, inner, true)
                            }
                            _ => self.issue(
                                ids::TEMPLATE_UNRESOLVED,
                                at,
                                "attr filter with an argument the scan cannot read".into(),
                            ),
                        }
                    }
                    if ATTRIBUTE_FILTERS.contains(&f.name) {
                        for (i, a) in f.args.iter().enumerate() {
                            match a {
                                CallArg::Kwarg("attribute", k) => self.check_path(
                                    k,
                                    &format!("{} filter attribute", f.name),
                                    inner,
                                ),
                                CallArg::Pos(k)
                                    if i == 0
                                        && matches!(
                                            f.name,
                                            "selectattr" | "rejectattr" | "groupby"
                                        ) =>
                                {
                                    self.check_path(
                                        k,
                                        &format!("{} filter attribute", f.name),
                                        inner,
                                    )
                                }
                                CallArg::Pos(k) if i == 1 && f.name == "map" => {
                                    // map('attr', name)
                                    if let Some(CallArg::Pos(first)) = f.args.first() {
                                        if matches!(self.eval1(first), Some(Sv::Str(s)) if s == "attr")
                                        {
                                            self.check_computed(
                                                k,
                                                "map(attr) filter",
                                                at,
                                                inner,
                                                true,
                                            );
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    if f.name == "format" {
                        // printf-style: no traversal, but the result may be a name.
                        self.fold_check(e);
                    }
                }
                self.judge_args(&f.args);
                self.fold_check(e);
            }
            Expr::Test(t) => {
                self.judge_expr(&t.expr);
                self.judge_args(&t.args);
            }
            Expr::GetAttr(g) => {
                self.judge_expr(&g.expr);
                self.check_name(g.name, "attribute", offset(e), &g.expr);
            }
            Expr::GetItem(g) => {
                self.judge_expr(&g.expr);
                self.judge_expr(&g.subscript_expr);
                self.check_computed(&g.subscript_expr, "item", offset(e), &g.expr, false);
                self.fold_check(e);
            }
            Expr::Call(c) => {
                self.judge_call(c);
                self.fold_check(e);
            }
            Expr::List(l) => l.items.iter().for_each(|i| self.judge_expr(i)),
            Expr::Tuple(l) => l.items.iter().for_each(|i| self.judge_expr(i)),
            Expr::Map(m) => {
                m.keys.iter().for_each(|i| self.judge_expr(i));
                m.values.iter().for_each(|i| self.judge_expr(i));
            }
        }
    }

    /// A folded value that spells a sensitive dunder is suspicious even where it is not (yet)
    /// seen used as a name.
    fn fold_check(&mut self, e: &Expr<'_>) {
        for v in self.eval(e) {
            self.check_constant(&v, offset(e));
        }
    }

    fn check_constant(&mut self, v: &Sv, at: u32) {
        match v {
            Sv::Str(s) => {
                if let Some(d) = SENSITIVE_DUNDERS.iter().find(|d| s.contains(**d)) {
                    self.issue(
                        ids::TEMPLATE_UNRESOLVED,
                        at,
                        format!("string value contains `{d}`"),
                    );
                }
            }
            Sv::List(items) => items.iter().for_each(|i| self.check_constant(i, at)),
            Sv::Map(m) => m.iter().for_each(|(k, v)| {
                self.check_constant(k, at);
                self.check_constant(v, at);
            }),
            _ => {}
        }
    }
}

/// What a template that does not parse shows token by token (Jinja2's grammar is wider than
/// minijinja's: `x|attr('a')()` is Jinja2 but not minijinja). Attribute names after `.` and
/// string literals (decoded with Python's rules) are judged without folding.
fn token_scan(text: &str) -> Vec<Issue> {
    use minijinja::machinery::{tokenize, Token};
    let source = crate::format::template::blank_generation_tags(text);
    let mut out: Vec<Issue> = Vec::new();
    let mut push = |rule, offset, message: String| {
        if out.len() < 50
            && !out
                .iter()
                .any(|i: &Issue| i.rule == rule && i.message == message)
        {
            out.push(Issue {
                rule,
                offset,
                message,
            });
        }
    };
    let mut after_dot = false;
    for tok in tokenize(&source, false, Default::default()).take(1_000_000) {
        let Ok((tok, span)) = tok else { break };
        let at = span.start_offset;
        match tok {
            Token::Ident(name) if after_dot && is_dunderish(name) => push(
                ids::TEMPLATE_DUNDER,
                at,
                format!("attribute `{name}` (in a template that does not parse)"),
            ),
            Token::Ident(name) if after_dot && PROCESS_ATTRS.contains(&name) => push(
                ids::TEMPLATE_GLOBAL_WALK,
                at,
                format!("attribute `{name}` runs processes (in a template that does not parse)"),
            ),
            Token::Str(_) | Token::String(_) => {
                let src = source
                    .get(span.start_offset as usize..span.end_offset as usize)
                    .unwrap_or("");
                let mine = match &tok {
                    Token::Str(s) => s.to_string(),
                    Token::String(s) => s.to_string(),
                    _ => String::new(),
                };
                let py = python_literal(src).map(|(s, _)| s).unwrap_or_default();
                if let Some(d) = SENSITIVE_DUNDERS
                    .iter()
                    .find(|d| mine.contains(**d) || py.contains(**d))
                {
                    push(
                        ids::TEMPLATE_DUNDER,
                        at,
                        format!(
                            "string literal spelling `{d}` (in a template that does not parse)"
                        ),
                    );
                }
            }
            _ => {}
        }
        after_dot = matches!(tok, Token::Dot);
    }
    out
}

/// Dunder names used by sandbox escapes; a constant spelling one is suspicious.
const SENSITIVE_DUNDERS: &[&str] = &[
    "__class__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__init__",
    "__mro__",
    "__base__",
    "__bases__",
    "__dict__",
    "__getattribute__",
    "__reduce__",
    "__code__",
    "__self__",
    "__func__",
    "__loader__",
    "__spec__",
];

fn binop(op: ast::BinOpKind, l: &Sv, r: &Sv) -> Option<Sv> {
    use ast::BinOpKind as B;
    match (op, l, r) {
        (B::Concat, l, r) => Some(Sv::Str(format!("{}{}", l.to_str()?, r.to_str()?))),
        (B::Add, Sv::Str(a), Sv::Str(b)) => Some(Sv::Str(format!("{a}{b}"))),
        (B::Add, Sv::Int(a), Sv::Int(b)) => a.checked_add(*b).map(Sv::Int),
        (B::Sub, Sv::Int(a), Sv::Int(b)) => a.checked_sub(*b).map(Sv::Int),
        (B::Add, Sv::List(a), Sv::List(b)) => Some(Sv::List(a.iter().chain(b).cloned().collect())),
        (B::Mul, Sv::Str(s), Sv::Int(n)) | (B::Mul, Sv::Int(n), Sv::Str(s)) => {
            let n = usize::try_from(*n).unwrap_or(0);
            (s.len().saturating_mul(n) <= MAX_VALUE).then(|| Sv::Str(s.repeat(n)))
        }
        (B::Mul, Sv::Int(a), Sv::Int(b)) => a.checked_mul(*b).map(Sv::Int),
        (B::Rem, Sv::Str(f), args) => {
            let args = match args {
                Sv::List(items) => items.clone(),
                other => vec![other.clone()],
            };
            printf(f, &args).map(Sv::Str)
        }
        (B::Rem, Sv::Int(a), Sv::Int(b)) if *b != 0 => Some(Sv::Int(a.rem_euclid(*b))),
        _ => None,
    }
}

/// Python `%` formatting for the conversions that can build names (`%s %r %c %d %i %x %o %%`).
fn printf(f: &str, args: &[Sv]) -> Option<String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags, width and precision are skipped (they only pad).
        let mut conv = chars.next()?;
        while conv.is_ascii_digit() || matches!(conv, '-' | '+' | ' ' | '#' | '.') {
            conv = chars.next()?;
        }
        match conv {
            '%' => out.push('%'),
            's' => out.push_str(&it.next()?.to_str()?),
            'r' => out.push_str(&it.next()?.repr()?),
            'c' => match it.next()? {
                Sv::Int(i) => out.push(char::from_u32(u32::try_from(*i).ok()?)?),
                Sv::Str(s) if s.chars().count() == 1 => out.push_str(s),
                _ => return None,
            },
            'd' | 'i' | 'u' => match it.next()? {
                Sv::Int(i) => out.push_str(&i.to_string()),
                _ => return None,
            },
            'x' => match it.next()? {
                Sv::Int(i) => out.push_str(&format!("{i:x}")),
                _ => return None,
            },
            'X' => match it.next()? {
                Sv::Int(i) => out.push_str(&format!("{i:X}")),
                _ => return None,
            },
            'o' => match it.next()? {
                Sv::Int(i) => out.push_str(&format!("{i:o}")),
                _ => return None,
            },
            _ => return None,
        }
        if out.len() > MAX_VALUE {
            return None;
        }
    }
    Some(out)
}

/// Python `str.format` for positional/keyword fields without traversal (`{}`, `{0}`, `{x}`,
/// `{0:c}`, `{!s}`).
fn str_format(f: &str, pos: &[Sv], kw: &[(String, Sv)]) -> Option<String> {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    let c = chars.next()?;
                    if c == '}' {
                        break;
                    }
                    field.push(c);
                }
                let (name, spec) = match field.split_once(':') {
                    Some((n, s)) => (n.to_string(), s.to_string()),
                    None => (field.clone(), String::new()),
                };
                let name = name.split('!').next().unwrap_or("").to_string();
                if name.contains('.') || name.contains('[') {
                    return None;
                }
                let v = if name.is_empty() {
                    next += 1;
                    pos.get(next - 1)?
                } else if let Ok(i) = name.parse::<usize>() {
                    pos.get(i)?
                } else {
                    &kw.iter().find(|(k, _)| *k == name)?.1
                };
                match (spec.chars().last(), v) {
                    (Some('c'), Sv::Int(i)) => out.push(char::from_u32(u32::try_from(*i).ok()?)?),
                    (Some('x'), Sv::Int(i)) => out.push_str(&format!("{i:x}")),
                    (Some('d'), Sv::Int(i)) => out.push_str(&i.to_string()),
                    (None, v) => out.push_str(&v.to_str()?),
                    (Some('s'), v) => out.push_str(&v.to_str()?),
                    _ => return None,
                }
            }
            c => out.push(c),
        }
        if out.len() > MAX_VALUE {
            return None;
        }
    }
    Some(out)
}

fn index(base: &Sv, key: &Sv) -> Option<Sv> {
    match (base, key) {
        (Sv::Str(s), Sv::Int(i)) => {
            let chars: Vec<char> = s.chars().collect();
            let i = norm_index(*i, chars.len())?;
            Some(Sv::Str(chars[i].to_string()))
        }
        (Sv::List(l), Sv::Int(i)) => {
            let i = norm_index(*i, l.len())?;
            Some(l[i].clone())
        }
        (Sv::Map(m), k) => m.iter().find(|(mk, _)| mk == k).map(|(_, v)| v.clone()),
        _ => None,
    }
}

fn norm_index(i: i128, len: usize) -> Option<usize> {
    let len = len as i128;
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

fn slice(base: &Sv, start: Option<i128>, stop: Option<i128>, step: Option<i128>) -> Option<Sv> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return None;
    }
    let pick = |len: usize| -> Vec<usize> {
        let len = len as i128;
        let clamp = |x: Option<i128>, default: i128, lo: i128, hi: i128| -> i128 {
            match x {
                None => default,
                Some(v) => {
                    let v = if v < 0 { v + len } else { v };
                    v.clamp(lo, hi)
                }
            }
        };
        let mut out = Vec::new();
        if step > 0 {
            let (a, b) = (clamp(start, 0, 0, len), clamp(stop, len, 0, len));
            let mut i = a;
            while i < b {
                out.push(i as usize);
                i += step;
            }
        } else {
            let (a, b) = (
                clamp(start, len - 1, -1, len - 1),
                clamp(stop, -1, -1, len - 1),
            );
            let mut i = a;
            while i > b {
                out.push(i as usize);
                i += step;
            }
        }
        out
    };
    match base {
        Sv::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            Some(Sv::Str(
                pick(chars.len()).into_iter().map(|i| chars[i]).collect(),
            ))
        }
        Sv::List(l) => Some(Sv::List(
            pick(l.len()).into_iter().map(|i| l[i].clone()).collect(),
        )),
        _ => None,
    }
}

fn filter(name: &str, base: &Sv, pos: &[Sv], kw: &[(String, Sv)]) -> Option<Sv> {
    let s = || match base {
        Sv::Str(s) => Some(s.clone()),
        _ => None,
    };
    Some(match name {
        "join" => {
            let sep = match pos.first() {
                Some(v) => v.to_str()?,
                None => String::new(),
            };
            let parts: Option<Vec<String>> = base.items()?.iter().map(Sv::to_str).collect();
            Sv::Str(parts?.join(&sep))
        }
        "format" => Sv::Str(printf(&s()?, pos)?),
        "replace" => {
            let (Some(Sv::Str(a)), Some(Sv::Str(b))) = (pos.first(), pos.get(1)) else {
                return None;
            };
            if a.is_empty() {
                return None;
            }
            let r = s()?.replace(a.as_str(), b);
            if r.len() > MAX_VALUE {
                return None;
            }
            Sv::Str(r)
        }
        "lower" => Sv::Str(s()?.to_lowercase()),
        "upper" => Sv::Str(s()?.to_uppercase()),
        "trim" => Sv::Str(s()?.trim().to_string()),
        "title" | "capitalize" => Sv::Str(s()?),
        "string" => Sv::Str(base.to_str()?),
        "reverse" => match base {
            Sv::Str(s) => Sv::Str(s.chars().rev().collect()),
            Sv::List(l) => Sv::List(l.iter().rev().cloned().collect()),
            _ => return None,
        },
        "list" => Sv::List(base.items()?),
        "first" => base.items()?.into_iter().next()?,
        "last" => base.items()?.into_iter().last()?,
        "safe" | "e" | "escape" | "tojson"
            if kw.is_empty() && matches!(base, Sv::Str(_)) && name == "safe" =>
        {
            base.clone()
        }
        "default" | "d" => base.clone(),
        "sort" => {
            let mut items: Vec<String> = base
                .items()?
                .iter()
                .map(Sv::to_str)
                .collect::<Option<_>>()?;
            items.sort();
            Sv::List(items.into_iter().map(Sv::Str).collect())
        }
        _ => return None,
    })
}

fn method(name: &str, base: &Sv, pos: &[Sv], kw: &[(String, Sv)]) -> Option<Sv> {
    let Sv::Str(s) = base else {
        return match (name, base) {
            ("keys", Sv::Map(m)) => Some(Sv::List(m.iter().map(|(k, _)| k.clone()).collect())),
            ("values", Sv::Map(m)) => Some(Sv::List(m.iter().map(|(_, v)| v.clone()).collect())),
            ("get", Sv::Map(_)) => index(base, pos.first()?),
            ("pop", Sv::List(l)) if pos.is_empty() => l.last().cloned(),
            _ => None,
        };
    };
    Some(match name {
        "format" => Sv::Str(str_format(s, pos, kw)?),
        "join" => {
            let parts: Option<Vec<String>> = pos.first()?.items()?.iter().map(Sv::to_str).collect();
            Sv::Str(parts?.join(s))
        }
        "replace" => match (pos.first(), pos.get(1)) {
            (Some(Sv::Str(a)), Some(Sv::Str(b))) if !a.is_empty() => {
                let r = s.replace(a.as_str(), b);
                if r.len() > MAX_VALUE {
                    return None;
                }
                Sv::Str(r)
            }
            _ => return None,
        },
        "lower" => Sv::Str(s.to_lowercase()),
        "upper" => Sv::Str(s.to_uppercase()),
        "strip" if pos.is_empty() => Sv::Str(s.trim().to_string()),
        "lstrip" if pos.is_empty() => Sv::Str(s.trim_start().to_string()),
        "rstrip" if pos.is_empty() => Sv::Str(s.trim_end().to_string()),
        "split" => {
            let parts: Vec<Sv> = match pos.first() {
                Some(Sv::Str(sep)) if !sep.is_empty() => s
                    .split(sep.as_str())
                    .map(|p| Sv::Str(p.to_string()))
                    .collect(),
                None => s
                    .split_whitespace()
                    .map(|p| Sv::Str(p.to_string()))
                    .collect(),
                _ => return None,
            };
            Sv::List(parts)
        }
        _ => return None,
    })
}

/// Findings for one template: `place` names where it was found (a GGUF key, `chat_template`, a
/// file name); `base` is the file offset of the template's first byte when the text is stored
/// verbatim (GGUF), `None` when offsets inside it are not file offsets (JSON escapes).
pub(crate) fn findings(
    ctx: &super::Ctx<'_>,
    text: &str,
    place: &str,
    base: Option<u64>,
) -> Vec<crate::Finding> {
    analyse(text)
        .into_iter()
        .map(|i| {
            ctx.anomaly(
                i.rule,
                base.map(|b| b + u64::from(i.offset)),
                format!("chat template `{place}`: {}", i.message),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    const MAX_BLOCK: usize = crate::format::template::MAX_BLOCK_OPERATORS;

    fn rules(t: &str) -> Vec<&'static str> {
        let mut r: Vec<_> = analyse(t).into_iter().map(|i| i.rule).collect();
        r.sort();
        r.dedup();
        r
    }

    #[test]
    fn plain_templates_are_clean() {
        for t in [
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
            "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}",
            "{%- set ns = namespace(found=false) -%}{%- set ns.found = true -%}{{ messages[::-1] | length }}",
            "{{ tools | tojson(indent=4) }}{{ strftime_now('%d %b %Y') }}{{ '<think{}>'.format(x) }}",
            "{% for m in messages %}{{ m.content.split('</think>')[-1].lstrip('\\n') }}{% endfor %}",
            "{% generation %}{{ m['content'] }}{% endgeneration %}",
        ] {
            assert_eq!(rules(t), Vec::<&str>::new(), "{t}: {:?}", analyse(t));
        }
    }

    #[test]
    fn folding() {
        assert_eq!(
            printf("%c%c%s", &[Sv::Int(95), Sv::Int(95), Sv::Str("x".into())]),
            Some("__x".into())
        );
        assert_eq!(
            str_format("{0:c}{0:c}{1}", &[Sv::Int(95), Sv::Str("y".into())], &[]),
            Some("__y".into())
        );
        assert_eq!(
            slice(&Sv::Str("__ssalc__".into()), None, None, Some(-1)),
            Some(Sv::Str("__class__".into()))
        );
        assert_eq!(
            slice(&Sv::Str("abcdef".into()), Some(1), Some(-1), Some(2)),
            Some(Sv::Str("bd".into()))
        );
    }

    #[test]
    fn obfuscated_dunders_are_dangerous() {
        for t in [
            "{{ ().__class__ }}",
            "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
            "{{ ()|attr('\\U0000005f\\U0000005fclass__') }}",
            "{{ ()|attr('\\N{LOW LINE}_class__') }}",
            "{{ x|attr(['_','_class_','_']|join) }}",
            "{{ x|attr('%c%cclass%c%c'|format(95,95,95,95)) }}",
            "{{ x|attr('{0:c}{0:c}class{0:c}{0:c}'.format(95)) }}",
            "{{ x|attr('__ssalc__'[::-1]) }}",
            "{{ x|attr(dict(__class__=1)|list|first) }}",
            "{{ x|attr('__cla' ~ 'ss__') }}",
            "{{ x|attr('__cla' + 'ss__') }}",
            "{{ x|attr('_-class-_'|replace('-', '_')) }}",
            "{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ x|attr(b) }}",
            "{% for n in ['__class__'] %}{{ x|attr(n) }}{% endfor %}",
            "{{ x['__class__'] }}",
            "{{ x|map(attribute='__class__')|list }}",
            "{{ x|selectattr('a.__class__')|list }}",
            "{{ x|map('attr', '__class__')|list }}",
            "{{ '{0.__class__}'.format(x) }}",
            "{% filter attr('__class__') %}x{% endfilter %}",
            "{% filter map(attribute='__class__') %}x{% endfilter %}",
        ] {
            let r = rules(t);
            assert!(r.contains(&ids::TEMPLATE_DUNDER), "{t}: {:?}", analyse(t));
        }
    }

    #[test]
    fn globals_walked_to_modules_are_dangerous() {
        for t in [
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
            "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
            "{{ joiner.__init__.__globals__ }}",
            "{{ namespace.__init__.__globals__ }}",
            "{{ self._TemplateReference__context }}",
            "{{ config.__class__.__init__.__globals__['os'] }}",
            "{{ x.popen('id') }}",
        ] {
            let r = rules(t);
            assert!(
                r.contains(&ids::TEMPLATE_GLOBAL_WALK),
                "{t}: {:?}",
                analyse(t)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        // On a thread with a 1 MiB stack (half of a default thread's).
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                for n in [100usize, 400, 5000] {
                    let t = format!("{}x{}", "{% if a %}".repeat(n), "{% endif %}".repeat(n));
                    let r = analyse(&t);
                    assert!(
                        r.iter().all(|i| i.rule == ids::TEMPLATE_INVALID),
                        "{n}: {r:?}"
                    );
                    let t = format!("{{{{ {}1{} }}}}", "[".repeat(n), "]".repeat(n));
                    assert!(!analyse(&t).is_empty());
                }
                for n in [199usize, 201, 5000, 100_000] {
                    for piece in ["|attr('a')", ".a", "+1", "~'a'", "(1)", "[0]"] {
                        let t = format!("{{{{ x{} }}}}", piece.repeat(n));
                        let r = analyse(&t);
                        if n > MAX_BLOCK {
                            assert!(
                                r.iter().any(|i| i.rule == ids::TEMPLATE_INVALID),
                                "{piece} {n}"
                            );
                        }
                    }
                }
            })
            .expect("thread")
            .join()
            .expect("no overflow");
    }

    #[test]
    fn unresolved_and_invalid() {
        assert_eq!(rules("{{ x|attr(y) }}"), vec![ids::TEMPLATE_UNRESOLVED]);
        assert_eq!(
            rules("{{ '__glo' ~ 'bals__' }}"),
            vec![ids::TEMPLATE_UNRESOLVED]
        );
        assert_eq!(rules("{% include 'x' %}"), vec![ids::TEMPLATE_UNRESOLVED]);
        assert_eq!(
            rules("{% for i in range(10000000) %}{% endfor %}"),
            vec![ids::TEMPLATE_UNRESOLVED]
        );
        assert_eq!(rules("{{ x.mro() }}"), vec![ids::TEMPLATE_UNRESOLVED]);
        assert_eq!(rules("{% if %}"), vec![ids::TEMPLATE_INVALID]);
        let deep = format!(
            "{}{}",
            "{{ ".to_string() + &"(".repeat(400),
            ")".repeat(400) + " }}"
        );
        assert_eq!(rules(&deep), vec![ids::TEMPLATE_INVALID]);
    }
}

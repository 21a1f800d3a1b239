//! From pickle bytes to findings: runs the symbolic machine over every stream of a byte slice and
//! judges what it recorded against the rule set.

use crate::finding::{Finding, Severity, Usage};
use crate::limits::Limits;
use crate::pickle::render::Renderer;
use crate::pickle::resolve::{Judged, Named, Resolver};
use crate::pickle::value::{CallKind, Id, Value};
use crate::pickle::vm::{EventKind, Hooks, Run, Vm, VmError};
use crate::rules::{Judgement, Rule, RuleSet};
use std::collections::{HashMap, HashSet};

/// Rule ids: the one registry, [`crate::rules::ids`].
pub use crate::rules::ids;

/// How many findings of one kind (rule, global, usage) are listed before they are only counted.
const SAME_KIND_LISTED: usize = 3;
/// How many findings one pickle source lists at most.
const MAX_FINDINGS: usize = 500;

/// The result of scanning the pickle streams of one byte slice.
#[derive(Debug, Clone, Default)]
pub struct PickleScan {
    /// What was found.
    pub findings: Vec<Finding>,
    /// Pickle streams seen.
    pub streams: usize,
    /// Opcodes executed.
    pub ops: u64,
    /// Where reading stopped. Run over the first bytes of a file (the remote scan's fetched
    /// prefix), it says whether more bytes would be read, and up to where.
    pub end: StreamEnd,
}

/// Where a run over pickle streams stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamEnd {
    /// Every stream ended at STOP, the last one exactly at the end of the bytes.
    #[default]
    AtEnd,
    /// The bytes end inside an opcode, its argument or bytes the run skips, which run to
    /// `need` when their length is known.
    Cut {
        /// Absolute offset the cut part runs to.
        need: Option<u64>,
    },
    /// The run stopped for good at `offset` (an error more bytes cannot change, or a budget).
    Stopped {
        /// Where.
        offset: u64,
    },
}

impl StreamEnd {
    /// How a stream that stopped with `err` ended.
    pub(crate) fn of(err: &VmError) -> StreamEnd {
        if err.is_truncation() {
            StreamEnd::Cut { need: err.need() }
        } else {
            StreamEnd::Stopped {
                offset: err.offset(),
            }
        }
    }
}

/// Judges pickle streams against a rule set within budgets.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// The rules in force.
    pub rules: RuleSet,
    /// The budgets.
    pub limits: Limits,
    /// Also report allowed uses, as info findings with the allow rule's id.
    pub show_allowed: bool,
    /// Also work out what `torch.load(weights_only=True)` would do with each file, while the
    /// file is read (set by [`crate::engine::Engine`] for the `torch-weights-only` policy).
    pub weights_only: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            rules: RuleSet::builtin(),
            limits: Limits::default(),
            show_allowed: false,
            weights_only: false,
        }
    }
}

impl Scanner {
    /// A scanner with these rules and budgets.
    pub fn new(rules: RuleSet, limits: Limits) -> Self {
        Scanner {
            rules,
            limits,
            show_allowed: false,
            weights_only: false,
        }
    }

    /// Scan every pickle stream in `data`: the first starts at 0, each further one right after
    /// the previous STOP. Bytes after the last STOP that are not a pickle are a finding.
    pub fn scan_pickles(&self, data: &[u8], hooks: &mut dyn Hooks) -> PickleScan {
        let mut vm = Vm::new(self.limits.clone());
        let mut findings = Vec::new();
        let mut pos = 0usize;
        let mut streams = 0usize;
        let mut end = StreamEnd::AtEnd;
        if data.is_empty() {
            findings.push(self.anomaly(
                ids::TRUNCATED,
                Some(0),
                "empty pickle stream: nothing to load".into(),
            ));
        }
        while pos < data.len() {
            if streams >= self.limits.max_streams {
                findings.push(self.anomaly(
                    ids::BUDGET,
                    Some(pos as u64),
                    format!(
                        "more than {} pickle streams; the rest is not scanned",
                        self.limits.max_streams
                    ),
                ));
                end = StreamEnd::Stopped { offset: pos as u64 };
                break;
            }
            let run = vm.run(&data[pos..], pos as u64, hooks);
            hooks.stream_end(&vm, streams);
            streams += 1;
            if let Some(err) = &run.error {
                if streams > 1 && err.offset() == pos as u64 && is_not_a_pickle(err) {
                    findings.push(self.anomaly(
                        ids::TRAILING_DATA,
                        Some(pos as u64),
                        format!(
                            "{} bytes after the last pickle are not a pickle",
                            data.len() - pos
                        ),
                    ));
                } else {
                    findings.push(self.stream_error(err));
                }
                end = StreamEnd::of(err);
                break;
            }
            pos += run.end;
        }
        findings.extend(self.judge_events(&vm));
        PickleScan {
            findings: limit_findings(findings),
            streams,
            ops: vm.ops(),
            end,
        }
    }

    /// Run one stream and return the machine for further interpretation (extraction).
    pub fn run_one<'a>(&self, data: &'a [u8], hooks: &mut dyn Hooks) -> (Vm<'a>, Run) {
        let mut vm = Vm::new(self.limits.clone());
        let run = vm.run(data, 0, hooks);
        (vm, run)
    }

    /// The finding for a stream that stopped early.
    pub fn stream_error(&self, err: &VmError) -> Finding {
        let (id, what) = match err {
            VmError::Budget { .. } => (ids::BUDGET, "scan stopped"),
            e if e.is_truncation() => (ids::TRUNCATED, "truncated pickle"),
            _ => (ids::MALFORMED, "malformed pickle"),
        };
        self.anomaly(
            id,
            Some(err.offset()),
            format!("{what}: {err}; a real load stops here, after running everything before"),
        )
    }

    /// A finding of an anomaly rule.
    pub fn anomaly(&self, id: &str, offset: Option<u64>, message: String) -> Finding {
        let severity = self
            .rules
            .get(id)
            .map(|r| r.severity)
            .unwrap_or(Severity::Medium);
        Finding::anomaly(id, severity, offset, message)
    }

    /// Turn the machine's events into findings.
    ///
    /// Calls, state and methods are judged by what they reach ([`Resolver`]): a method reference
    /// pickled as `getattr(C, 'm')` is judged as `C.m`, a `functools.partial` by the function it
    /// calls, `copyreg._reconstructor(C, object, None)` as an instantiation of `C`. The bare
    /// import of a global is judged only when no use of it is.
    pub fn judge_events(&self, vm: &Vm<'_>) -> Vec<Finding> {
        let budget = self.limits.max_render;
        let resolver = Resolver::new(vm);
        let mut findings = Vec::new();
        // Imports (by offset) judged as part of a use: their bare import is not reported.
        let mut used: HashSet<u64> = HashSet::new();
        // Objects that are themselves called, built or filled (a lookup result used so is
        // judged by that use, not as a reference).
        let mut acted_on: HashSet<Id> = HashSet::new();
        // What each event resolves to, computed once: the judged uses of a call, the name of
        // what a BUILD or container method acts on.
        let mut resolved: Vec<Resolved> = Vec::with_capacity(vm.events().len());
        for ev in vm.events() {
            resolved.push(match ev.kind {
                EventKind::Call(_) => {
                    if let Value::Object(o) = vm.value(ev.node) {
                        acted_on.insert(o.func);
                    }
                    let judged = resolver.call(ev.node);
                    for j in &judged {
                        if let Judged::Use(n, _) | Judged::Lookup(n) = j {
                            used.extend(n.via.iter().copied());
                        }
                    }
                    Resolved::Call(judged)
                }
                EventKind::Build | EventKind::Method(_) => {
                    acted_on.insert(ev.subject);
                    let n = resolver.name_of(ev.subject);
                    if let Some(n) = &n {
                        used.extend(n.via.iter().copied());
                    }
                    Resolved::Subject(n)
                }
                _ => Resolved::Nothing,
            });
        }
        for (ev, resolved) in vm.events().iter().zip(resolved) {
            match ev.kind {
                EventKind::Import => {
                    let Some(g) = vm.as_global(ev.subject) else { continue };
                    if used.contains(&g.offset) {
                        continue;
                    }
                    if let Some((rule, severity, why)) = self.judgement(&g.module, &g.name, Usage::Imported) {
                        findings.push(Finding {
                            rule,
                            severity,
                            global: Some(g.qualified()),
                            module: Some(g.module.clone()),
                            usage: Usage::Imported,
                            offset: Some(ev.offset),
                            member: None,
                            call: None,
                            message: format!("{} imports {} (not called here){why}", g.via, g.qualified()),
                        });
                    }
                }
                EventKind::Call(kind) => {
                    let Resolved::Call(judged) = resolved else { continue };
                    let call = || Renderer::render_effective_call(vm, ev.node, budget);
                    for j in judged {
                        match j {
                            Judged::Use(n, usage) => {
                                let verb = match usage {
                                    Usage::Instantiated => kind_word(kind),
                                    Usage::Imported => "wraps",
                                    _ => "calls",
                                };
                                findings.extend(self.use_of_name(&n, usage, ev.offset, call, verb));
                            }
                            Judged::Lookup(n) if !acted_on.contains(&ev.node) => {
                                findings.extend(self.use_of_name(&n, Usage::Imported, ev.offset, call, "looks up"));
                            }
                            Judged::Lookup(_) => {}
                            Judged::Unnamed => findings.extend(self.use_of_value(vm, ev.subject, Usage::Called, ev.offset, call, "calls")),
                        }
                    }
                }
                EventKind::Build => {
                    let call = || {
                        format!(
                            "{}.__setstate__({})",
                            Renderer::render(vm, ev.subject, budget / 2),
                            Renderer::render(vm, ev.node, budget / 2)
                        )
                    };
                    if let Some(g) = vm.as_global(ev.subject) {
                        findings.push(Finding {
                            global: Some(g.qualified()),
                            usage: Usage::StateSet,
                            call: Some(call()),
                            ..self.anomaly(
                                ids::STATE_ON_GLOBAL,
                                Some(ev.offset),
                                format!("BUILD sets attributes on {} itself, not on an instance", g.qualified()),
                            )
                        });
                    }
                    // A partial's state only says what it wraps: judged where it is called.
                    if resolver.is_partial(ev.subject) {
                        continue;
                    }
                    let Resolved::Subject(subject) = resolved else { continue };
                    match subject {
                        Some(n) => findings.extend(self.use_of_name(&n, Usage::StateSet, ev.offset, call, "state set on")),
                        None => findings.extend(self.use_of_value(vm, ev.subject, Usage::StateSet, ev.offset, call, "state set on")),
                    }
                }
                EventKind::Method(method) => {
                    let call = || Renderer::render_method(vm, ev.subject, method, ev.node, budget);
                    let Resolved::Subject(subject) = resolved else { continue };
                    match subject {
                        Some(n) => {
                            // An allowed object that is not a container, unless its allow rule
                            // says (from observed real saves) that it is filled this way.
                            let (safe, filled) = match self.rules.judge(&n.module, &n.name) {
                                Judgement::Safe(r) => (true, r.usages.as_ref().is_some_and(|u| u.contains(&Usage::MethodOnObject))),
                                _ => (false, false),
                            };
                            let on_class = vm.as_global(ev.subject).is_some();
                            let container = is_container_type(&n.module, &n.name, on_class) || (filled && !on_class);
                            if safe && !container {
                                findings.push(Finding {
                                    global: Some(n.qualified()),
                                    usage: Usage::MethodOnObject,
                                    call: Some(call()),
                                    ..self.anomaly(
                                        ids::METHOD_ON_ALLOWED,
                                        Some(ev.offset),
                                        format!("{method} called on a {} object, which is not a container", n.qualified()),
                                    )
                                });
                            }
                            findings.extend(self.use_of_name(&n, Usage::MethodOnObject, ev.offset, call, method));
                        }
                        None => findings.extend(self.use_of_value(vm, ev.subject, Usage::MethodOnObject, ev.offset, call, method)),
                    }
                }
                EventKind::PersistentId => {
                    if !is_storage_pid(vm, ev.subject) {
                        findings.push(Finding {
                            call: Some(Renderer::render(vm, ev.node, budget)),
                            usage: Usage::PersistentId,
                            ..self.anomaly(
                                ids::PERSISTENT_ID,
                                Some(ev.offset),
                                "persistent id that no known model loader produces; its meaning depends on the loading program".into(),
                            )
                        });
                    }
                }
                EventKind::DynamicGlobal => findings.push(Finding {
                    call: Some(format!("find_class{}", Renderer::render(vm, ev.node, budget))),
                    ..self.anomaly(
                        ids::DYNAMIC_GLOBAL,
                        Some(ev.offset),
                        "STACK_GLOBAL with a module or name computed at load time: the import cannot be known".into(),
                    )
                }),
                EventKind::Extension(code) => findings.push(Finding {
                    global: vm.as_global(ev.subject).map(|g| g.qualified()),
                    ..self.anomaly(
                        ids::EXTENSION,
                        Some(ev.offset),
                        format!("EXT opcode imports extension code {code} through the copyreg registry: the import depends on the loading program"),
                    )
                }),
                EventKind::OutOfBandBuffer => findings.push(self.anomaly(
                    ids::OUT_OF_BAND,
                    Some(ev.offset),
                    "NEXT_BUFFER: out-of-band data supplied by the loading program".into(),
                )),
                EventKind::FrameAnomaly => findings.push(self.anomaly(
                    ids::FRAME,
                    Some(ev.offset),
                    "FRAME declares more bytes than remain, or an opcode crosses the end of its frame: the C and Python unpicklers read this stream differently".into(),
                )),
            }
        }
        findings
    }

    /// `(rule id, severity, explanation)` for a global used as `usage` that is not allowed so.
    fn judgement(
        &self,
        module: &str,
        name: &str,
        usage: Usage,
    ) -> Option<(String, Severity, String)> {
        let unknown = || {
            self.rules
                .get(ids::UNKNOWN_GLOBAL)
                .map(|r: &Rule| r.severity)
                .unwrap_or(Severity::Medium)
        };
        match self.rules.judge_use(module, name, usage) {
            Judgement::Safe(rule) if self.show_allowed => {
                Some((rule.id.clone(), Severity::Info, " (allowed)".into()))
            }
            Judgement::Safe(_) => None,
            Judgement::Dangerous(rule) => Some((rule.id.clone(), rule.severity, String::new())),
            Judgement::Unknown => Some((ids::UNKNOWN_GLOBAL.to_string(), unknown(), String::new())),
            Judgement::OtherUse(rule) => Some((
                ids::UNKNOWN_GLOBAL.to_string(),
                unknown(),
                format!(
                    "; {} allows it only as {}",
                    rule.id,
                    rule.usages
                        .iter()
                        .flatten()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The finding for using the resolved name `n` as `usage`, unless that use is allowed.
    /// `call` renders the call; it runs only when there is a finding (most calls in real models
    /// are allowlisted, and rendering their arguments would cost more than judging them).
    fn use_of_name(
        &self,
        n: &Named,
        usage: Usage,
        offset: u64,
        call: impl FnOnce() -> String,
        verb: &str,
    ) -> Option<Finding> {
        let (rule, severity, why) = self.judgement(&n.module, &n.name, usage)?;
        Some(Finding {
            rule,
            severity,
            global: Some(n.qualified()),
            module: Some(n.module.clone()),
            usage,
            offset: Some(offset),
            member: None,
            call: Some(call()),
            message: format!("{verb} {}{why}", n.qualified()),
        })
    }

    /// The finding for calling, building or filling a value that no global names.
    fn use_of_value(
        &self,
        vm: &Vm<'_>,
        subject: Id,
        usage: Usage,
        offset: u64,
        call: impl FnOnce() -> String,
        verb: &str,
    ) -> Option<Finding> {
        match vm.value(subject) {
            // Data containers built by the stream itself: nothing is called on them.
            Value::List(_) | Value::Dict(_) | Value::Set(_) | Value::Tuple(_)
                if usage != Usage::Called =>
            {
                None
            }
            _ => Some(Finding {
                call: Some(call()),
                usage,
                ..self.anomaly(
                    ids::MALFORMED,
                    Some(offset),
                    format!("{verb} a value that is not an imported global"),
                )
            }),
        }
    }
}

/// What one event resolved to (see [`Scanner::judge_events`]).
enum Resolved {
    /// A call: what it runs, as judgements.
    Call(Vec<Judged>),
    /// A BUILD or container method: the name of the object it acts on.
    Subject(Option<Named>),
    /// Events that need no resolution.
    Nothing,
}

/// Allowlisted classes whose instances are containers, on which APPEND/SETITEM/ADDITEMS are the
/// ordinary way a pickler fills them. `on_class` is true when the method is applied to the class
/// object itself, which is never a container.
fn is_container_type(module: &str, name: &str, on_class: bool) -> bool {
    !on_class
        && matches!(
            (module, name),
            (
                "collections",
                "OrderedDict" | "defaultdict" | "Counter" | "deque"
            ) | ("builtins", "set" | "dict" | "list" | "bytearray")
        )
}

fn kind_word(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Reduce => "calls",
        CallKind::Inst | CallKind::Obj => "instantiates",
        CallKind::NewObj | CallKind::NewObjEx => "creates (__new__)",
    }
}

/// True when the stream could not even start: the first byte is no opcode.
fn is_not_a_pickle(err: &VmError) -> bool {
    matches!(
        err,
        VmError::Decode(crate::pickle::decode::DecodeError::InvalidOpcode { .. })
    )
}

/// `('storage', …)`: the persistent ids torch writes for tensor storages.
pub fn is_storage_pid(vm: &Vm<'_>, pid: Id) -> bool {
    match vm.value(pid) {
        Value::Tuple(items) => items.first().and_then(|&f| vm.value(f).as_str()) == Some("storage"),
        // Legacy torch, protocol 0 writes the id as text.
        _ => false,
    }
}

/// Keep at most a few findings of each kind, and a bounded total, counting what is left out.
fn limit_findings(findings: Vec<Finding>) -> Vec<Finding> {
    let mut seen: HashMap<(String, Option<String>, Usage), usize> = HashMap::new();
    let mut kept = Vec::new();
    let mut omitted = 0usize;
    for f in findings {
        let n = seen
            .entry((f.rule.clone(), f.global.clone(), f.usage))
            .or_default();
        *n += 1;
        if *n > SAME_KIND_LISTED || kept.len() >= MAX_FINDINGS {
            omitted += 1;
        } else {
            kept.push(f);
        }
    }
    if omitted > 0 {
        kept.push(Finding::anomaly(
            ids::NOT_LISTED,
            Severity::Info,
            None,
            format!("{omitted} more findings of the same kinds are not listed"),
        ));
    }
    kept
}

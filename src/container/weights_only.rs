//! What `torch.load(f, weights_only=True)` (torch 2.15.0) would do with a file, decided without
//! running anything.
//!
//! torch's restricted unpickler (`torch/_weights_only_unpickler.py`) is a small interpreter of
//! its own: it accepts only some opcodes, only globals on an allowlist (plus those the user adds
//! with `torch.serialization.add_safe_globals`), and only some operations on the objects it
//! builds. This module replays that interpreter over the pickles `torch.load` would read:
//!
//! * a file starting with `PK\x03\x04` is a zip: TorchScript archives (a `constants.pkl` record)
//!   are refused, otherwise `<archive>/data.pkl` is unpickled;
//! * a tar archive is refused (legacy tar format);
//! * anything else is the legacy format: the first pickle must be torch's magic number, then the
//!   protocol version, `sys_info`, the object and the storage keys follow, each unpickled by the
//!   restricted unpickler. A plain pickle (not written by `torch.save`) fails at the magic-number
//!   check; its globals are still listed, as `torch._weights_only_unpickler` would judge them.
//!
//! The result separates what `add_safe_globals([...])` can fix (globals missing from the
//! allowlist, and classes that need BUILD) from what nothing can fix (opcodes the unpickler does
//! not implement, blocked modules, non-storage persistent ids, unsupported containers).

use crate::format::torch::{LayoutError, ZipLayout};
use crate::format::zip::{self, Archive, Entry};
use crate::limits::Limits;
use crate::names::fix_imports_cow;
use crate::pickle::decode::{Arg, DecodeError, Decoder, Op};
use crate::pickle::opcode::Opcode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::OnceLock;

/// The allowlist data, embedded from `rules/policy/torch-weights-only.toml`.
pub const ALLOWLIST_FILE: &str = include_str!("../../rules/policy/torch-weights-only.toml");

/// torch's default allowlist and related constants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    /// The torch version the list was taken from.
    pub torch_version: String,
    /// Modules whose globals are refused even when user-allowlisted.
    pub blocked_modules: Vec<String>,
    /// Types BUILD applies to without allowlisting.
    pub buildable: Vec<String>,
    /// Module → names.
    pub globals: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    set: HashSet<String>,
}

impl Allowlist {
    /// The embedded list (parsed once).
    pub fn get() -> &'static Allowlist {
        static LIST: OnceLock<Allowlist> = OnceLock::new();
        LIST.get_or_init(|| {
            let mut a: Allowlist =
                toml::from_str(ALLOWLIST_FILE).expect("embedded weights_only allowlist parses");
            a.set = a
                .globals
                .iter()
                .flat_map(|(m, names)| names.iter().map(move |n| format!("{m}.{n}")))
                .collect();
            a
        })
    }

    /// Whether `module.name` (already remapped) is on torch's default allowlist.
    pub fn allows(&self, full: &str) -> bool {
        self.set.contains(full)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True when the list is empty (never, for the embedded list).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn blocked(&self, module: &str) -> bool {
        self.blocked_modules.iter().any(|b| b == module)
    }
}

/// How `torch.load` reads a file, decided by its first bytes (serialized as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TorchContainer {
    /// A zip archive (`torch.save`'s format since 1.6).
    Zip,
    /// A zip archive holding TorchScript, refused under `weights_only`.
    Torchscript,
    /// The legacy format: five pickles and raw storages.
    Legacy,
    /// The oldest tar format, refused under `weights_only`.
    Tar,
    /// Any other file: unpickled from its first byte.
    Pickle,
    /// Not worked out: the scan did not model `torch.load`.
    Unknown,
}

/// Serialized as its `Display` name, the one spelling.
impl Serialize for TorchContainer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for TorchContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TorchContainer::Zip => "zip",
            TorchContainer::Torchscript => "torchscript",
            TorchContainer::Legacy => "legacy",
            TorchContainer::Tar => "tar",
            TorchContainer::Pickle => "pickle",
            TorchContainer::Unknown => "unknown",
        })
    }
}

/// What `torch.load(weights_only=True)` would do with a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightsOnly {
    /// torch version whose behaviour is modelled.
    pub torch_version: String,
    /// How torch.load would read the file.
    pub container: TorchContainer,
    /// The pickle record read, for zip files (`archive/data.pkl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Whether the load succeeds as things are.
    pub loads: bool,
    /// Whether it would succeed after `add_safe_globals(add_safe_globals)`.
    pub loads_after_allowlisting: bool,
    /// Globals (dotted) the file needs added with `torch.serialization.add_safe_globals`.
    pub add_safe_globals: Vec<String>,
    /// Globals that can never be allowed (blocked modules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    /// Why the load fails even with every needed global allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Problem>,
}

/// One reason the load stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of reason.
    pub kind: ProblemKind,
    /// Byte offset within the pickle (or the file, for container problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// What torch would say.
    pub message: String,
}

/// Where a load stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The restricted unpickler refuses an opcode, a persistent id or an operation.
    Unpickler,
    /// torch.load refuses the container (TorchScript, tar, broken zip, missing `data.pkl`).
    Container,
    /// The file is a pickle that torch.save did not write (the legacy magic number is missing).
    NotTorchFile,
}

impl WeightsOnly {
    /// The Python call that allowlists what the file needs.
    pub fn python(&self) -> Option<String> {
        if self.add_safe_globals.is_empty() {
            None
        } else {
            Some(format!(
                "torch.serialization.add_safe_globals([{}])",
                self.add_safe_globals.join(", ")
            ))
        }
    }
}

/// Decide what `torch.load(weights_only=True)` would do with these bytes, under the default
/// [`Limits`]. A scan asked for it (`Scanner::weights_only`) gives the same answer from its own
/// reading of the file, without reading it again.
pub fn check(data: &[u8]) -> WeightsOnly {
    check_with(data, &Limits::default())
}

/// [`check`] under `limits` (members in the zip directory, bytes inflated for `data.pkl`).
pub fn check_with(data: &[u8], limits: &Limits) -> WeightsOnly {
    if read_as_zip(data) {
        if !zip::has_end_record(data) {
            return no_central_directory();
        }
        let archive = match Archive::parse(data, limits.max_members) {
            Ok(a) => a,
            Err(e) => {
                return container_error(
                    TorchContainer::Zip,
                    None,
                    format!("PytorchStreamReader failed reading zip archive: {e}"),
                )
            }
        };
        return match zip_start(data, &archive) {
            ZipStart::Done(answer) => answer,
            ZipStart::Unpickle(rec) => {
                let mut notes = Vec::new();
                let replayed = archive
                    .read(rec, limits.max_decompressed, &mut notes)
                    .map(|pkl| Replay::member(&pkl).finish())
                    .map_err(|e| e.to_string());
                zip_end(rec, replayed)
            }
        };
    }
    if crate::format::tar::looks_like(data) {
        return tar_answer();
    }
    file_end(data, Replay::file(data).finish())
}

/// Whether `torch.load` reads `data` as a zip archive: only when it starts with a local header
/// (bytes before an archive make it a pickle to torch).
pub(crate) fn read_as_zip(data: &[u8]) -> bool {
    zip::starts_with_local_header(data)
}

/// What the replay of the pickles torch reads found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    needs: BTreeSet<String>,
    blocked: BTreeSet<String>,
    errors: Vec<Problem>,
}

fn answer(container: TorchContainer, member: Option<String>, o: Outcome) -> WeightsOnly {
    let loads_after_allowlisting = o.errors.is_empty() && o.blocked.is_empty();
    WeightsOnly {
        torch_version: Allowlist::get().torch_version.clone(),
        container,
        member,
        loads: loads_after_allowlisting && o.needs.is_empty(),
        loads_after_allowlisting,
        add_safe_globals: o.needs.into_iter().collect(),
        blocked: o.blocked.into_iter().collect(),
        errors: o.errors,
    }
}

fn container_error(
    container: TorchContainer,
    member: Option<String>,
    message: String,
) -> WeightsOnly {
    let errors = vec![Problem {
        kind: ProblemKind::Container,
        offset: None,
        message,
    }];
    answer(
        container,
        member,
        Outcome {
            errors,
            ..Outcome::default()
        },
    )
}

/// torch's reader needs the central directory: the local-header walk that the scan falls back
/// on is no way in for `torch.load`.
fn no_central_directory() -> WeightsOnly {
    container_error(
        TorchContainer::Zip,
        None,
        "PytorchStreamReader failed reading zip archive: end of central directory not found".into(),
    )
}

/// The answer for a tar archive (torch's legacy tar format).
pub(crate) fn tar_answer() -> WeightsOnly {
    container_error(
        TorchContainer::Tar,
        None,
        "Cannot use weights_only=True with files saved in the legacy .tar format".into(),
    )
}

/// How `torch.load` goes on with a zip archive, from its directory.
pub(crate) enum ZipStart<'a> {
    /// It unpickles this record (`<archive>/data.pkl`).
    Unpickle(&'a Entry),
    /// It stops before unpickling anything: the whole answer.
    Done(WeightsOnly),
}

/// The first part of the answer for the zip archive `data`, read as `archive`.
pub(crate) fn zip_start<'a>(data: &[u8], archive: &'a Archive<'_>) -> ZipStart<'a> {
    if !zip::has_end_record(data) {
        return ZipStart::Done(no_central_directory());
    }
    let layout = match ZipLayout::of(archive) {
        Ok(l) => l,
        Err(e) => return ZipStart::Done(container_error(TorchContainer::Zip, None, e.to_string())),
    };
    let refused =
        |e: LayoutError| ZipStart::Done(container_error(TorchContainer::Zip, None, e.to_string()));
    match layout.record("constants.pkl") {
        Err(e) => return refused(e),
        Ok(Some(_)) => {
            return ZipStart::Done(container_error(
                TorchContainer::Torchscript,
                None,
                "Cannot use weights_only=True with TorchScript archives passed to torch.load \
                 (torch.jit.load runs their code)"
                    .into(),
            ))
        }
        Ok(None) => {}
    }
    match layout.record("data.pkl") {
        Err(e) => refused(e),
        Ok(Some(rec)) => ZipStart::Unpickle(rec),
        Ok(None) => ZipStart::Done(container_error(
            TorchContainer::Zip,
            None,
            "PytorchStreamReader: file not found: data.pkl".into(),
        )),
    }
}

/// The answer for a zip archive whose `data.pkl` record `rec` was replayed (or could not be
/// read: the reason).
pub(crate) fn zip_end(rec: &Entry, replayed: Result<Outcome, String>) -> WeightsOnly {
    match replayed {
        Ok(o) => answer(TorchContainer::Zip, Some(rec.name.clone()), o),
        Err(e) => container_error(
            TorchContainer::Zip,
            Some(rec.name.clone()),
            format!("cannot read {}: {e}", rec.name),
        ),
    }
}

/// The answer for a file torch unpickles directly (the legacy format, or any other pickle).
pub(crate) fn file_end(data: &[u8], o: Outcome) -> WeightsOnly {
    let legacy = data.starts_with(crate::format::torch::LEGACY_MAGIC);
    let container = if legacy {
        TorchContainer::Legacy
    } else {
        TorchContainer::Pickle
    };
    answer(container, None, o)
}

/// torch's restricted unpickler replayed over the pickles `torch.load` reads in a row from
/// `data`, starting at its first byte. The scan runs it on the bytes it has just scanned (the
/// file, or the zip record torch reads), so nothing is mapped, parsed or inflated twice.
pub(crate) struct Replay<'d> {
    data: &'d [u8],
    /// Pickles torch reads (the legacy format: five).
    streams: usize,
    /// A plain pickle, not written by `torch.save`: the load fails after its first pickle.
    not_torch_file: bool,
    /// The pickle being replayed (counting from 0).
    index: usize,
    sim: Sim<'static>,
    /// Where the pickle being replayed starts.
    pos: usize,
    done: bool,
    outcome: Outcome,
}

impl<'d> Replay<'d> {
    fn new(data: &'d [u8], streams: usize, not_torch_file: bool) -> Self {
        Replay {
            data,
            streams,
            not_torch_file,
            index: 0,
            sim: Sim::new(Allowlist::get()),
            pos: 0,
            done: false,
            outcome: Outcome::default(),
        }
    }

    /// The pickle of a zip archive's `data.pkl` record.
    pub(crate) fn member(data: &'d [u8]) -> Self {
        Self::new(data, 1, false)
    }

    /// A file torch unpickles directly: five pickles after the legacy magic number, else one
    /// (which torch expects to be the magic number).
    pub(crate) fn file(data: &'d [u8]) -> Self {
        if data.starts_with(crate::format::torch::LEGACY_MAGIC) {
            Self::new(data, 5, false)
        } else {
            Self::new(data, 1, true)
        }
    }

    /// Replay the pickle at `pos` to its end (STOP, or where it stops decoding).
    fn replay_one(&mut self) {
        if self.pos >= self.data.len() {
            self.outcome.errors.push(Problem {
                kind: ProblemKind::Unpickler,
                offset: Some(self.pos as u64),
                message: "Ran out of input".into(),
            });
            self.done = true;
            return;
        }
        let start = self.pos;
        let mut dec = Decoder::new(&self.data[start..], start as u64);
        loop {
            match dec.next_op() {
                None => {
                    self.sim.ran_out(self.data.len() as u64);
                    break;
                }
                Some(Err(e)) => {
                    self.sim.undecodable(&e);
                    break;
                }
                Some(Ok(op)) => {
                    self.sim.feed(&op);
                    if self.sim.finished {
                        break;
                    }
                }
            }
        }
        self.pos = start + dec.position();
        let sim = std::mem::replace(&mut self.sim, Sim::new(Allowlist::get()));
        self.outcome.needs.extend(sim.needs);
        self.outcome.blocked.extend(sim.blocked);
        let failed = sim.error.is_some();
        self.outcome.errors.extend(sim.error);
        if failed {
            self.done = true;
            return;
        }
        if self.index == 0 && self.not_torch_file {
            self.outcome.errors.push(Problem {
                kind: ProblemKind::NotTorchFile,
                offset: Some(0),
                message: "Invalid magic number; corrupt file? (not written by torch.save: \
                          torch.load reads the first pickle as the legacy magic number)"
                    .into(),
            });
        }
        self.index += 1;
        self.done = self.index >= self.streams;
    }

    /// What torch would have found.
    pub(crate) fn finish(mut self) -> Outcome {
        while !self.done {
            self.replay_one();
        }
        self.outcome
    }
}

// ---------------------------------------------------------------------------------------------
// The restricted unpickler.

/// The `numpy.dtypes` class of the dtype `numpy.dtype(typestr, …)` builds (numpy >= 1.25), from
/// the call's arguments (`('f8', False, True)`).
fn numpy_dtype_class_of(args: &V) -> Option<String> {
    let V::Tuple(items) = args else {
        return None;
    };
    let Some(V::Str(Some(t))) = items.first() else {
        return None;
    };
    numpy_dtype_class(t).map(|c| format!("numpy.dtypes.{c}"))
}

/// `f8` → `Float64DType`, `<i4` → `Int32DType`, `U5` → `StrDType`, … as numpy names them.
fn numpy_dtype_class(typestr: &str) -> Option<&'static str> {
    let t = typestr.trim_start_matches(['<', '>', '|', '=']);
    let (kind, size) = t.split_at(t.char_indices().nth(1).map_or(t.len(), |(i, _)| i));
    let size: u32 = if size.is_empty() {
        0
    } else {
        size.split('[').next()?.parse().ok()?
    };
    Some(match (kind, size) {
        ("b", _) => "BoolDType",
        ("i", 1) => "Int8DType",
        ("i", 2) => "Int16DType",
        ("i", 4) => "Int32DType",
        ("i", 8) => "Int64DType",
        ("u", 1) => "UInt8DType",
        ("u", 2) => "UInt16DType",
        ("u", 4) => "UInt32DType",
        ("u", 8) => "UInt64DType",
        ("f", 2) => "Float16DType",
        ("f", 4) => "Float32DType",
        ("f", 8) => "Float64DType",
        ("f", 16) => "LongDoubleDType",
        ("c", 8) => "Complex64DType",
        ("c", 16) => "Complex128DType",
        ("c", 32) => "CLongDoubleDType",
        ("O", _) => "ObjectDType",
        ("U", _) => "StrDType",
        ("S", _) => "BytesDType",
        ("V", _) => "VoidDType",
        ("M", _) => "DateTime64DType",
        ("m", _) => "TimeDelta64DType",
        _ => return None,
    })
}

/// What the restricted unpickler knows about a value: just enough to apply its checks.
#[derive(Debug, Clone)]
enum V {
    /// A global, by its dotted (remapped) name.
    Global(Rc<str>),
    /// A string (kept only when short: compared against `"storage"`).
    Str(Option<Rc<str>>),
    Int,
    /// Any other scalar or opaque value (float, bool, None, storage, bytes).
    Scalar,
    Tuple(Rc<[V]>),
    List,
    Dict,
    /// A `torch.Tensor` or `torch.nn.Parameter`.
    Tensor,
    OrderedDict,
    Counter,
    Set,
    /// An instance created by NEWOBJ or by calling a class that is not torch's.
    Object {
        class: Rc<str>,
        pending: Option<usize>,
    },
    /// The result of calling a user-allowlisted function: its type is unknown.
    Opaque,
}

impl V {
    fn type_name(&self) -> &str {
        match self {
            V::Global(_) => "a type or function",
            V::Str(_) => "str",
            V::Int => "int",
            V::Scalar => "a scalar",
            V::Tuple(_) => "tuple",
            V::List => "list",
            V::Dict => "dict",
            V::Tensor => "torch.Tensor",
            V::OrderedDict => "collections.OrderedDict",
            V::Counter => "collections.Counter",
            V::Set => "set",
            V::Object { class, .. } => class,
            V::Opaque => "object",
        }
    }
}

struct Sim<'l> {
    list: &'l Allowlist,
    stack: Vec<V>,
    marks: Vec<Vec<V>>,
    memo: HashMap<u32, V>,
    needs: BTreeSet<String>,
    blocked: BTreeSet<String>,
    pending: HashSet<usize>,
    next_object: usize,
    /// Where the load stops: the first refusal.
    error: Option<Problem>,
    /// The pickle has ended (STOP, or it no longer decodes).
    finished: bool,
}

/// Bound on values kept (stack plus memo): beyond it the answer is "cannot tell".
const MAX_VALUES: usize = 20_000_000;

impl<'l> Sim<'l> {
    fn new(list: &'l Allowlist) -> Self {
        Sim {
            list,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            needs: BTreeSet::new(),
            blocked: BTreeSet::new(),
            pending: HashSet::new(),
            next_object: 0,
            error: None,
            finished: false,
        }
    }

    /// Follow one opcode. After the first refusal the rest of the pickle is still read for its
    /// GLOBALs, so the list of needed globals is complete.
    fn feed(&mut self, op: &Op<'_>) {
        if self.finished {
            return;
        }
        if op.code == Opcode::STOP {
            self.finished = true;
        }
        if self.error.is_some() {
            if let (Opcode::GLOBAL, Arg::Pair(m, n)) = (op.code, &op.arg) {
                let (m, n) = fix_imports_cow(m, n);
                let full = format!("{m}.{n}");
                if self.list.blocked(&m) {
                    self.blocked.insert(full);
                } else if !self.list.allows(&full) {
                    self.needs.insert(full);
                }
            }
            return;
        }
        if let Err(message) = self.step(op.code, op.arg.clone()) {
            self.error = Some(Problem {
                kind: ProblemKind::Unpickler,
                offset: Some(op.offset),
                message,
            });
        }
    }

    /// The data ended at `at` before STOP.
    fn ran_out(&mut self, at: u64) {
        self.finished = true;
        if self.error.is_none() {
            self.error = Some(Problem {
                kind: ProblemKind::Unpickler,
                offset: Some(at),
                message: "pickle data was truncated".into(),
            });
        }
    }

    /// The next opcode does not decode.
    fn undecodable(&mut self, e: &DecodeError) {
        self.finished = true;
        if self.error.is_none() {
            self.error = Some(Problem {
                kind: ProblemKind::Unpickler,
                offset: Some(e.offset()),
                message: format!("the stream does not decode: {e}"),
            });
        }
    }

    fn pop(&mut self) -> Result<V, String> {
        self.stack
            .pop()
            .ok_or_else(|| "pop from empty stack".into())
    }

    fn top(&mut self) -> Result<&mut V, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack is empty".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<V>, String> {
        let prev = self
            .marks
            .pop()
            .ok_or_else(|| "MARK expected but not found".to_string())?;
        Ok(std::mem::replace(&mut self.stack, prev))
    }

    fn global_name(v: &V) -> Option<Rc<str>> {
        match v {
            V::Global(g) => Some(g.clone()),
            _ => None,
        }
    }

    fn result_of_call(&mut self, g: &str, newobj: bool) -> V {
        match g {
            "torch.nn.parameter.Parameter" | "torch.Tensor" => V::Tensor,
            "collections.OrderedDict" => V::OrderedDict,
            "collections.Counter" => V::Counter,
            "builtins.set" => V::Set,
            _ if g.starts_with("torch._utils._rebuild_")
                || g == "torch._tensor._rebuild_from_type_v2" =>
            {
                V::Tensor
            }
            _ if self.list.allows(g) => V::Scalar,
            _ => {
                let last = g.rsplit('.').next().unwrap_or(g);
                if newobj || last.starts_with(|c: char| c.is_ascii_uppercase()) {
                    let pending = newobj.then(|| {
                        let id = self.next_object;
                        self.next_object += 1;
                        self.pending.insert(id);
                        id
                    });
                    V::Object {
                        class: g.into(),
                        pending,
                    }
                } else {
                    V::Opaque
                }
            }
        }
    }

    fn step(&mut self, code: Opcode, arg: Arg<'_>) -> Result<(), String> {
        use Opcode::*;
        match code {
            PROTO => {}
            STOP => {
                if !self.pending.is_empty() {
                    return Err(
                        "an object created by NEWOBJ was never initialised by BUILD".to_string()
                    );
                }
            }
            GLOBAL => {
                let Arg::Pair(m, n) = arg else {
                    return Err("bad GLOBAL".into());
                };
                let (m, n) = fix_imports_cow(&m, &n);
                let full = format!("{m}.{n}");
                if self.list.blocked(&m) {
                    self.blocked.insert(full.clone());
                    return Err(format!(
                        "Trying to load unsupported GLOBAL {full} whose module {m} is blocked"
                    ));
                }
                if !self.list.allows(&full) {
                    self.needs.insert(full.clone());
                }
                self.stack.push(V::Global(full.into()));
            }
            NEWOBJ => {
                let _args = self.pop()?;
                let cls = self.pop()?;
                let Some(g) = Self::global_name(&cls) else {
                    return Err(format!(
                        "Trying to instantiate unsupported class {}",
                        cls.type_name()
                    ));
                };
                let v = self.result_of_call(&g, g.as_ref() != "torch.nn.parameter.Parameter");
                self.stack.push(v);
            }
            REDUCE => {
                let args = self.pop()?;
                let func = self.top()?.clone();
                let Some(g) = Self::global_name(&func) else {
                    return Err(format!(
                        "Trying to call reduce for unrecognized function {}",
                        func.type_name()
                    ));
                };
                let v = match (g.as_ref(), numpy_dtype_class_of(&args)) {
                    // `numpy.dtype('f8', False, True)` is an instance of `numpy.dtypes.Float64DType`
                    // (numpy >= 1.25): the BUILD that follows needs that class allowlisted.
                    ("numpy.dtype" | "numpy.core.multiarray.dtype", Some(class)) => V::Object {
                        class: class.into(),
                        pending: None,
                    },
                    _ => self.result_of_call(&g, false),
                };
                *self.top()? = v;
            }
            BUILD => {
                let _state = self.pop()?;
                let inst = self.top()?.clone();
                match inst {
                    V::Tensor | V::OrderedDict | V::Opaque => {}
                    V::Object { class, pending } => {
                        if let Some(id) = pending {
                            self.pending.remove(&id);
                        }
                        if !self.list.buildable.iter().any(|b| **b == *class) {
                            // BUILD on any other type needs that type user-allowlisted.
                            self.needs.insert(class.to_string());
                        }
                    }
                    other => {
                        return Err(format!(
                            "Can only build Tensor, Parameter, OrderedDict or types allowlisted \
                             via `add_safe_globals`, but got {}",
                            other.type_name()
                        ))
                    }
                }
            }
            APPEND | APPENDS => {
                if code == APPEND {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
                match self.top()? {
                    V::List | V::Opaque => {}
                    other => {
                        return Err(format!(
                            "Can only append to lists, but got {}",
                            other.type_name()
                        ))
                    }
                }
            }
            SETITEM | SETITEMS => {
                if code == SETITEM {
                    self.pop()?;
                    self.pop()?;
                } else if self.pop_mark()?.len() % 2 != 0 {
                    return Err("odd number of items for SETITEMS".into());
                }
                match self.top()? {
                    V::Dict | V::OrderedDict | V::Counter | V::Opaque => {}
                    other => {
                        return Err(format!(
                            "Can only set items on dict, OrderedDict or Counter, but got {}",
                            other.type_name()
                        ))
                    }
                }
            }
            MARK => {
                let stack = std::mem::take(&mut self.stack);
                self.marks.push(stack);
            }
            TUPLE => {
                let items = self.pop_mark()?;
                self.stack.push(V::Tuple(items.into()));
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = match code {
                    TUPLE1 => 1,
                    TUPLE2 => 2,
                    _ => 3,
                };
                if self.stack.len() < n {
                    return Err("pop from empty stack".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(V::Tuple(items.into()));
            }
            NONE | NEWFALSE | NEWTRUE | BINFLOAT => self.stack.push(V::Scalar),
            EMPTY_TUPLE => self.stack.push(V::Tuple(Rc::from(Vec::new()))),
            EMPTY_LIST => self.stack.push(V::List),
            EMPTY_DICT => self.stack.push(V::Dict),
            EMPTY_SET => self.stack.push(V::Set),
            BININT | BININT1 | BININT2 | LONG1 => self.stack.push(V::Int),
            BINUNICODE | SHORT_BINSTRING => {
                let text = match &arg {
                    Arg::Bytes(b) if b.len() <= 64 => std::str::from_utf8(b).ok().map(Rc::from),
                    Arg::Text(t) if t.len() <= 64 => Some(Rc::from(t.as_ref())),
                    _ => None,
                };
                self.stack.push(V::Str(text));
            }
            BINPERSID => {
                let pid = self.pop()?;
                match &pid {
                    V::Int => {}
                    V::Tuple(items) => match items.first() {
                        Some(V::Str(Some(s))) if s.as_ref() == "storage" => {}
                        first => {
                            return Err(format!(
                                "Only persistent_load of storage is allowed, but got {}",
                                first.map(V::type_name).unwrap_or("an empty tuple")
                            ))
                        }
                    },
                    other => {
                        return Err(format!(
                            "persistent_load id must be tuple or int, but got {}",
                            other.type_name()
                        ))
                    }
                }
                self.stack.push(V::Scalar);
            }
            BINGET | LONG_BINGET => {
                let Arg::Int(i) = arg else {
                    return Err("bad memo index".into());
                };
                let v = self
                    .memo
                    .get(&(i as u32))
                    .cloned()
                    .ok_or_else(|| format!("Memo value not found at index {i}"))?;
                self.stack.push(v);
            }
            BINPUT | LONG_BINPUT => {
                let Arg::Int(i) = arg else {
                    return Err("bad memo index".into());
                };
                let v = self.top()?.clone();
                self.memo.insert(i as u32, v);
            }
            other => {
                return Err(format!(
                    "Unsupported operand {} ({}): torch's weights_only unpickler does not \
                     implement it",
                    other as u8,
                    other.name()
                ))
            }
        }
        if self.stack.len() + self.memo.len() > MAX_VALUES {
            return Err("too many values to follow".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numpy_dtype_given_state_needs_its_dtypes_class() {
        // torch.save({'x': np.float64(1.0)}, …): numpy.dtype('f8', False, True) then BUILD.
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/corpus/benign/checkpoint_namespace.pth"
        ))
        .unwrap();
        let r = check(&data);
        assert!(
            r.add_safe_globals
                .iter()
                .any(|g| g == "numpy.dtypes.Float64DType"),
            "{r:?}"
        );
        assert_eq!(numpy_dtype_class("<f4"), Some("Float32DType"));
        assert_eq!(numpy_dtype_class("|b1"), Some("BoolDType"));
        assert_eq!(numpy_dtype_class("U5"), Some("StrDType"));
        assert_eq!(numpy_dtype_class("M8[ns]"), Some("DateTime64DType"));
        assert_eq!(numpy_dtype_class("x9"), None);
    }

    #[test]
    fn allowlist_has_144_entries() {
        let a = Allowlist::get();
        assert_eq!(a.len(), 144);
        assert!(a.allows("torch._utils._rebuild_tensor_v2"));
        assert!(a.allows("collections.OrderedDict"));
        assert!(!a.allows("numpy.core.multiarray._reconstruct"));
    }

    fn global(m: &str, n: &str) -> Vec<u8> {
        format!("c{m}\n{n}\n").into_bytes()
    }

    #[test]
    fn plain_state_dict_pickle_needs_nothing_but_is_not_a_torch_file() {
        // {'a': OrderedDict()} at protocol 2.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'a'];
        p.extend(global("collections", "OrderedDict"));
        p.extend([b')', b'R', b's', b'.']);
        let r = check(&p);
        assert_eq!(r.container, TorchContainer::Pickle);
        assert!(r.add_safe_globals.is_empty());
        assert!(!r.loads);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    }

    #[test]
    fn protocol_4_opcodes_are_rejected() {
        let p = [0x80, 4, 0x95, 1, 0, 0, 0, 0, 0, 0, 0, b'N', b'.'];
        let r = Replay::member(&p).finish();
        assert!(r.errors[0].message.contains("Unsupported operand 149"));
    }

    #[test]
    fn numpy_globals_are_needed_and_os_is_blocked() {
        let mut p = vec![0x80, 2];
        p.extend(global("numpy.core.multiarray", "_reconstruct"));
        p.extend([b')', b'R']);
        p.extend(global("posix", "system"));
        p.extend(b"0.".iter());
        let r = Replay::member(&p).finish();
        assert!(r.needs.contains("numpy.core.multiarray._reconstruct"));
        assert!(r.blocked.contains("posix.system"));
        assert!(!r.errors.is_empty());
    }

    #[test]
    fn non_storage_persistent_id_is_rejected() {
        let p = [
            0x80, 2, b'X', 3, 0, 0, 0, b'e', b'v', b'l', 0x85, b'Q', b'.',
        ];
        let r = Replay::member(&p).finish();
        assert!(r.errors[0]
            .message
            .contains("Only persistent_load of storage"));
        let p = [
            0x80, 2, b'X', 7, 0, 0, 0, b's', b't', b'o', b'r', b'a', b'g', b'e', 0x85, b'Q', b'.',
        ];
        let r = Replay::member(&p).finish();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
}

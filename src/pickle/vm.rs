//! The symbolic pickle machine: runs the opcodes of a stream over symbolic values and records an
//! [`Event`] wherever a real unpickler would import, call or run a method.
//!
//! Semantics follow CPython's unpickler (`Lib/pickle.py`, `Modules/_pickle.c`): the MARK stack is a
//! stack of lists, POP on an empty list discards the mark, MEMOIZE keys by the memo's size, FRAME
//! is only a hint. Nothing is imported or called; the machine only keeps records. It stops at the
//! first error, as the real unpickler would, and everything recorded before the error stays.

use super::decode::{utf8_text, Arg, DecodeError, Decoder};
use super::opcode::Opcode;
use super::value::{CallKind, Global, Id, Object, Value};
use crate::limits::Limits;
use std::borrow::Cow;
use std::collections::HashMap;

/// What a real unpickler would do at an opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Import of a global (GLOBAL, STACK_GLOBAL, INST).
    Import,
    /// A call or instantiation of `subject`; `node` is the created object.
    Call(CallKind),
    /// BUILD: `subject.__setstate__(node)` or a `__dict__` update.
    Build,
    /// A container method (`append`, `extend`, `__setitem__`, `add`) on a non-plain object.
    Method(&'static str),
    /// `persistent_load(subject)`; `node` is the result.
    PersistentId,
    /// STACK_GLOBAL whose operands are not literal strings (computed at load time).
    DynamicGlobal,
    /// EXT1/2/4: an import through the copyreg extension registry.
    Extension(i64),
    /// NEXT_BUFFER: out-of-band data.
    OutOfBandBuffer,
    /// FRAME whose length runs past the end of the data.
    FrameAnomaly,
}

/// One recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// What happens.
    pub kind: EventKind,
    /// Offset of the opcode.
    pub offset: u64,
    /// The callable, target object, global or persistent id.
    pub subject: Id,
    /// The created object, the state, or the added item.
    pub node: Id,
}

/// Why a stream stopped before STOP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    /// The bytes could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The stream ended without STOP.
    #[error("stream ends at offset {offset} without STOP")]
    NoStop {
        /// End offset.
        offset: u64,
    },
    /// An opcode the real unpickler would reject.
    #[error("{op} at offset {offset}: {detail}")]
    Invalid {
        /// Opcode name.
        op: &'static str,
        /// Offset.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A budget was exceeded.
    #[error("budget exceeded at offset {offset}: {what} (limit {limit})")]
    Budget {
        /// Which budget.
        what: &'static str,
        /// Its value.
        limit: u64,
        /// Offset.
        offset: u64,
    },
}

impl VmError {
    /// Offset at which the stream broke.
    pub fn offset(&self) -> u64 {
        match self {
            VmError::Decode(e) => e.offset(),
            VmError::NoStop { offset }
            | VmError::Invalid { offset, .. }
            | VmError::Budget { offset, .. } => *offset,
        }
    }

    /// For a truncation: the absolute offset the cut opcode or skipped bytes run to, when known.
    pub fn need(&self) -> Option<u64> {
        match self {
            VmError::Decode(e) => e.need(),
            _ => None,
        }
    }

    /// True if the stream simply ended too early.
    pub fn is_truncation(&self) -> bool {
        match self {
            VmError::Decode(e) => e.is_truncation(),
            VmError::NoStop { .. } => true,
            _ => false,
        }
    }
}

/// What a container asks the machine to do after a BUILD (joblib writes array bytes inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterBuild {
    /// Carry on with the next opcode.
    Continue,
    /// Skip this many raw bytes, then carry on.
    Skip(u64),
    /// A whole nested pickle follows: run it, then carry on after its STOP.
    NestedPickle,
}

/// Container-specific knowledge plugged into the machine.
pub trait Hooks {
    /// Called after every BUILD with the built object.
    fn after_build(&mut self, _vm: &Vm<'_>, _target: Id) -> Result<AfterBuild, String> {
        Ok(AfterBuild::Continue)
    }

    /// Called by [`crate::Scanner::scan_pickles`] after each stream (`index` counts from 0),
    /// whether it ended at STOP or not.
    fn stream_end(&mut self, _vm: &Vm<'_>, _index: usize) {}
}

/// Hooks that do nothing: a plain pickle.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// The outcome of running one pickle stream.
#[derive(Debug, Clone)]
pub struct Run {
    /// Bytes consumed from the start of the given data (just past STOP, or up to the error).
    pub end: usize,
    /// The value STOP returned.
    pub result: Option<Id>,
    /// Why the stream stopped early.
    pub error: Option<VmError>,
    /// Highest protocol announced by PROTO.
    pub protocol: u8,
}

/// The machine. One per file: the arena and the budgets are shared by all its streams.
pub struct Vm<'a> {
    arena: Vec<Value<'a>>,
    globals: Vec<Global>,
    events: Vec<Event>,
    limits: Limits,
    ops: u64,
}

const NONE_ID: Id = Id(0);
const FALSE_ID: Id = Id(1);
const TRUE_ID: Id = Id(2);

/// The memo: dense for the small sequential keys every pickler writes, sparse for the rest, so a
/// key of four billion costs one map entry rather than a four-billion-slot table.
#[derive(Default)]
struct Memo {
    dense: Vec<Option<Id>>,
    sparse: HashMap<u64, Id>,
    count: usize,
}

impl Memo {
    fn get(&self, key: u64) -> Option<Id> {
        match self.dense.get(key as usize) {
            Some(slot) => *slot,
            None => self.sparse.get(&key).copied(),
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    fn len(&self) -> usize {
        self.count
    }

    fn insert(&mut self, key: u64, v: Id) {
        if (key as usize) < self.dense.len() {
            if self.dense[key as usize].replace(v).is_none() {
                self.count += 1;
            }
        } else if key as usize <= self.dense.len() + 1024 && self.sparse.is_empty() {
            self.dense.resize(key as usize + 1, None);
            self.dense[key as usize] = Some(v);
            self.count += 1;
        } else if self.sparse.insert(key, v).is_none() {
            self.count += 1;
        }
    }
}

struct Frame<'a> {
    /// End (position in the data) of the current FRAME, while inside one.
    frame_end: Option<usize>,
    stack: Vec<Id>,
    marks: Vec<Vec<Id>>,
    memo: Memo,
    proto: u8,
    decoder: Decoder<'a>,
}

impl<'a> Vm<'a> {
    /// A machine with the given budgets.
    pub fn new(limits: Limits) -> Self {
        Vm {
            arena: vec![Value::None, Value::Bool(false), Value::Bool(true)],
            globals: Vec::new(),
            events: Vec::new(),
            limits,
            ops: 0,
        }
    }

    /// A value.
    pub fn value(&self, id: Id) -> &Value<'a> {
        &self.arena[id.0 as usize]
    }

    /// The bytes a bytes-like value holds, as an unpickler builds them: `bytes`/`bytearray`
    /// (a slice of the input), or protocol 2's `_codecs.encode(text, 'latin1')` (built here).
    /// `None` for any other value; an error for `_codecs.encode` that does not give bytes.
    pub fn bytes_of(&self, id: Id) -> Option<Result<Cow<'a, [u8]>, String>> {
        match self.value(id) {
            Value::Bytes(b) | Value::ByteArray(b) => Some(Ok(Cow::Borrowed(*b))),
            Value::Object(o) => {
                let g = self.as_global(o.func)?;
                if !matches!(g.module.as_str(), "_codecs" | "codecs") || g.name != "encode" {
                    return None;
                }
                let args = self.value(o.args).as_seq().unwrap_or(&[]);
                let text = args.first().and_then(|&t| self.value(t).as_str());
                let enc = args.get(1).and_then(|&t| self.value(t).as_str());
                Some(match (text, enc) {
                    (Some(t), Some("latin1" | "latin-1" | "iso-8859-1")) => t
                        .chars()
                        .map(|c| u8::try_from(u32::from(c)).ok())
                        .collect::<Option<Vec<u8>>>()
                        .map(Cow::Owned)
                        .ok_or_else(|| "latin1 text with a character above U+00FF".to_string()),
                    _ => Err("_codecs.encode with arguments other than (text, 'latin1')".into()),
                })
            }
            _ => None,
        }
    }

    /// A global by its index.
    pub fn global(&self, index: u32) -> &Global {
        &self.globals[index as usize]
    }

    /// The global a value is, if it is one.
    pub fn as_global(&self, id: Id) -> Option<&Global> {
        match self.value(id) {
            Value::Global(g) => Some(self.global(*g)),
            _ => None,
        }
    }

    /// Every event so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Opcodes executed so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Run one pickle stream from the start of `data`; offsets are reported as `base + position`.
    pub fn run(&mut self, data: &'a [u8], base: u64, hooks: &mut dyn Hooks) -> Run {
        // A value takes at least two bytes of pickle; reserving up front avoids repeated copies
        // of a large arena as it grows.
        let expected = (data.len() / 4).min(self.limits.max_nodes);
        self.arena
            .reserve(expected.saturating_sub(self.arena.len()));
        self.run_nested(data, base, hooks, 0)
    }

    fn run_nested(
        &mut self,
        data: &'a [u8],
        base: u64,
        hooks: &mut dyn Hooks,
        depth: usize,
    ) -> Run {
        let mut f = Frame {
            frame_end: None,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            proto: 0,
            decoder: Decoder::new(data, base),
        };
        let mut max_proto = 0u8;
        loop {
            let Some(next) = f.decoder.next_op() else {
                let offset = base + data.len() as u64;
                return Run {
                    end: data.len(),
                    result: None,
                    error: Some(VmError::NoStop { offset }),
                    protocol: max_proto,
                };
            };
            let op = match next {
                Ok(op) => op,
                Err(e) => {
                    return Run {
                        end: f.decoder.position(),
                        result: None,
                        error: Some(e.into()),
                        protocol: max_proto,
                    };
                }
            };
            let offset = op.offset;
            let start = (offset - base) as usize;
            if let Some(end) = f.frame_end {
                if start >= end {
                    f.frame_end = None;
                } else if f.decoder.position() > end {
                    // The C unpickler and the Python one read such a stream differently.
                    self.event(EventKind::FrameAnomaly, offset, NONE_ID, NONE_ID);
                    f.frame_end = None;
                }
            }
            match self.step(&mut f, op, data, base, hooks, depth) {
                Ok(Some(result)) => {
                    max_proto = max_proto.max(f.proto);
                    return Run {
                        end: f.decoder.position(),
                        result: Some(result),
                        error: None,
                        protocol: max_proto,
                    };
                }
                Ok(None) => max_proto = max_proto.max(f.proto),
                Err(error) => {
                    let end = (offset - base) as usize;
                    return Run {
                        end,
                        result: None,
                        error: Some(error),
                        protocol: max_proto.max(f.proto),
                    };
                }
            }
        }
    }

    #[inline]
    fn alloc(&mut self, v: Value<'a>, offset: u64) -> Result<Id, VmError> {
        if self.arena.len() >= self.limits.max_nodes {
            return Err(VmError::Budget {
                what: "values",
                limit: self.limits.max_nodes as u64,
                offset,
            });
        }
        self.arena.push(v);
        Ok(Id(self.arena.len() as u32 - 1))
    }

    fn add_global(
        &mut self,
        module: String,
        name: String,
        offset: u64,
        via: &'static str,
    ) -> Result<Id, VmError> {
        self.globals.push(Global {
            module,
            name,
            offset,
            via,
        });
        let id = self.alloc(Value::Global(self.globals.len() as u32 - 1), offset)?;
        Ok(id)
    }

    fn event(&mut self, kind: EventKind, offset: u64, subject: Id, node: Id) {
        self.events.push(Event {
            kind,
            offset,
            subject,
            node,
        });
    }

    /// Execute one opcode. `Ok(Some(id))` at STOP.
    #[inline]
    fn step(
        &mut self,
        f: &mut Frame<'a>,
        op: super::decode::Op<'a>,
        data: &'a [u8],
        base: u64,
        hooks: &mut dyn Hooks,
        depth: usize,
    ) -> Result<Option<Id>, VmError> {
        use Opcode::*;
        let offset = op.offset;
        let opcode = op.code;
        self.ops += 1;
        if self.ops > self.limits.max_ops {
            return Err(VmError::Budget {
                what: "opcodes",
                limit: self.limits.max_ops,
                offset,
            });
        }
        let invalid = |detail: &str| VmError::Invalid {
            op: opcode.name(),
            offset,
            detail: detail.to_string(),
        };
        let underflow = || invalid("stack underflow");

        macro_rules! pop {
            () => {
                f.stack.pop().ok_or_else(underflow)?
            };
        }
        macro_rules! top {
            () => {
                *f.stack.last().ok_or_else(underflow)?
            };
        }
        macro_rules! pop_mark {
            () => {{
                let prev = f
                    .marks
                    .pop()
                    .ok_or_else(|| invalid("could not find MARK"))?;
                std::mem::replace(&mut f.stack, prev)
            }};
        }

        let pushed: Id = match (op.code, op.arg) {
            (MARK, _) => {
                if f.marks.len() >= self.limits.max_marks {
                    return Err(VmError::Budget {
                        what: "MARK nesting",
                        limit: self.limits.max_marks as u64,
                        offset,
                    });
                }
                let current = std::mem::take(&mut f.stack);
                f.marks.push(current);
                return Ok(None);
            }
            (STOP, _) => return Ok(Some(pop!())),
            (POP, _) => {
                if f.stack.pop().is_none() {
                    let prev = f.marks.pop().ok_or_else(underflow)?;
                    f.stack = prev;
                }
                return Ok(None);
            }
            (POP_MARK, _) => {
                let _discarded = pop_mark!();
                return Ok(None);
            }
            (DUP, _) => top!(),
            (FLOAT, Arg::Line(l)) => {
                let v =
                    parse_float(l).ok_or_else(|| invalid("could not convert string to float"))?;
                self.alloc(Value::Float(v), offset)?
            }
            (INT, Arg::Line(l)) => match l {
                b"00" => FALSE_ID,
                b"01" => TRUE_ID,
                _ => {
                    let v = parse_int_text(l).ok_or_else(|| invalid("invalid literal for int"))?;
                    self.alloc(v, offset)?
                }
            },
            (LONG, Arg::Line(l)) => {
                let l = l.strip_suffix(b"L").unwrap_or(l);
                let v = parse_int_text(l).ok_or_else(|| invalid("invalid literal for int"))?;
                self.alloc(v, offset)?
            }
            (BININT | BININT1 | BININT2, Arg::Int(i)) => self.alloc(Value::Int(i), offset)?,
            (LONG1 | LONG4, Arg::Long(b)) => self.alloc(long_value(b), offset)?,
            (NONE, _) => NONE_ID,
            (NEWTRUE, _) => TRUE_ID,
            (NEWFALSE, _) => FALSE_ID,
            (BINFLOAT, Arg::Float(v)) => self.alloc(Value::Float(v), offset)?,
            (STRING, Arg::Text(t)) | (UNICODE, Arg::Text(t)) => {
                self.alloc(Value::Str(t), offset)?
            }
            (BINSTRING | SHORT_BINSTRING, Arg::Bytes(b)) => self.alloc(
                Value::Str(super::decode::bytes_to_text(Cow::Borrowed(b))),
                offset,
            )?,
            (BINUNICODE | SHORT_BINUNICODE | BINUNICODE8, Arg::Bytes(b)) => {
                self.alloc(Value::Str(utf8_text(b)), offset)?
            }
            (BINBYTES | SHORT_BINBYTES | BINBYTES8, Arg::Bytes(b)) => {
                self.alloc(Value::Bytes(b), offset)?
            }
            (BYTEARRAY8, Arg::Bytes(b)) => self.alloc(Value::ByteArray(b), offset)?,
            (EMPTY_TUPLE, _) => self.alloc(Value::Tuple(Vec::new()), offset)?,
            (EMPTY_LIST, _) => self.alloc(Value::List(Vec::new()), offset)?,
            (EMPTY_DICT, _) => self.alloc(Value::Dict(Vec::new()), offset)?,
            (EMPTY_SET, _) => self.alloc(Value::Set(Vec::new()), offset)?,
            (TUPLE, _) => {
                let items = pop_mark!();
                self.alloc(Value::Tuple(items), offset)?
            }
            (TUPLE1, _) => {
                let a = pop!();
                self.alloc(Value::Tuple(vec![a]), offset)?
            }
            (TUPLE2, _) => {
                let b = pop!();
                let a = pop!();
                self.alloc(Value::Tuple(vec![a, b]), offset)?
            }
            (TUPLE3, _) => {
                let c = pop!();
                let b = pop!();
                let a = pop!();
                self.alloc(Value::Tuple(vec![a, b, c]), offset)?
            }
            (LIST, _) => {
                let items = pop_mark!();
                self.alloc(Value::List(items), offset)?
            }
            (DICT, _) => {
                let items = pop_mark!();
                let pairs = pairs(&items).ok_or_else(|| invalid("odd number of items for DICT"))?;
                self.alloc(Value::Dict(pairs), offset)?
            }
            (FROZENSET, _) => {
                let items = pop_mark!();
                self.alloc(Value::FrozenSet(items), offset)?
            }
            (APPEND, _) => {
                let item = pop!();
                let target = top!();
                self.add_items(target, vec![item], "append", offset)
                    .map_err(|d| invalid(&d))?;
                return Ok(None);
            }
            (APPENDS, _) => {
                let items = pop_mark!();
                let target = top!();
                self.add_items(target, items, "extend", offset)
                    .map_err(|d| invalid(&d))?;
                return Ok(None);
            }
            (ADDITEMS, _) => {
                let items = pop_mark!();
                let target = top!();
                self.add_items(target, items, "add", offset)
                    .map_err(|d| invalid(&d))?;
                return Ok(None);
            }
            (SETITEM, _) => {
                let v = pop!();
                let k = pop!();
                let target = top!();
                self.set_items(target, vec![(k, v)], offset)
                    .map_err(|d| invalid(&d))?;
                return Ok(None);
            }
            (SETITEMS, _) => {
                let items = pop_mark!();
                let target = top!();
                let p = pairs(&items).ok_or_else(|| invalid("odd number of items for SETITEMS"))?;
                self.set_items(target, p, offset).map_err(|d| invalid(&d))?;
                return Ok(None);
            }
            (GET, Arg::Line(l)) => {
                let key = parse_decimal(l).ok_or_else(|| invalid("bad memo key"))?;
                self.memo_get(f, key, opcode.name(), offset)?
            }
            (BINGET | LONG_BINGET, Arg::Int(i)) => {
                self.memo_get(f, i as u64, opcode.name(), offset)?
            }
            (PUT, Arg::Line(l)) => {
                let key =
                    parse_decimal(l).ok_or_else(|| invalid("negative or bad PUT argument"))?;
                let v = top!();
                self.memo_put(f, key, v, offset)?;
                return Ok(None);
            }
            (BINPUT | LONG_BINPUT, Arg::Int(i)) => {
                let v = top!();
                self.memo_put(f, i as u64, v, offset)?;
                return Ok(None);
            }
            (MEMOIZE, _) => {
                let v = top!();
                let key = f.memo.len() as u64;
                self.memo_put(f, key, v, offset)?;
                return Ok(None);
            }
            (GLOBAL, Arg::Pair(m, n)) => {
                let (m, n) = resolve(f.proto, &m, &n);
                let g = self.add_global(m, n, offset, "GLOBAL")?;
                self.event(EventKind::Import, offset, g, g);
                g
            }
            (STACK_GLOBAL, _) => {
                let n = pop!();
                let m = pop!();
                match (self.value(m), self.value(n)) {
                    (Value::Str(ms), Value::Str(ns)) => {
                        let (ms, ns) = resolve(f.proto, ms, ns);
                        let g = self.add_global(ms, ns, offset, "STACK_GLOBAL")?;
                        self.event(EventKind::Import, offset, g, g);
                        g
                    }
                    (mv, nv) if is_computed(mv) || is_computed(nv) => {
                        // The name is computed at load time: the import cannot be known.
                        let g = self.add_global(
                            "<computed>".into(),
                            "<computed>".into(),
                            offset,
                            "STACK_GLOBAL",
                        )?;
                        let pair = self.alloc(Value::Tuple(vec![m, n]), offset)?;
                        self.event(EventKind::DynamicGlobal, offset, g, pair);
                        g
                    }
                    _ => return Err(invalid("STACK_GLOBAL requires str")),
                }
            }
            (INST, Arg::Pair(m, n)) => {
                let (m, n) = resolve(f.proto, &m, &n);
                let args = pop_mark!();
                let g = self.add_global(m, n, offset, "INST")?;
                self.event(EventKind::Import, offset, g, g);
                let args = self.alloc(Value::Tuple(args), offset)?;
                self.call(CallKind::Inst, g, args, None, offset)?
            }
            (OBJ, _) => {
                let mut items = pop_mark!();
                if items.is_empty() {
                    return Err(underflow());
                }
                let cls = items.remove(0);
                let args = self.alloc(Value::Tuple(items), offset)?;
                self.call(CallKind::Obj, cls, args, None, offset)?
            }
            (REDUCE, _) => {
                let args = pop!();
                let func = pop!();
                self.call(CallKind::Reduce, func, args, None, offset)?
            }
            (NEWOBJ, _) => {
                let args = pop!();
                let cls = pop!();
                self.call(CallKind::NewObj, cls, args, None, offset)?
            }
            (NEWOBJ_EX, _) => {
                let kwargs = pop!();
                let args = pop!();
                let cls = pop!();
                self.call(CallKind::NewObjEx, cls, args, Some(kwargs), offset)?
            }
            (BUILD, _) => {
                let state = pop!();
                let target = top!();
                self.event(EventKind::Build, offset, target, state);
                if let Value::Object(o) = &mut self.arena[target.0 as usize] {
                    o.state = Some(state);
                }
                match hooks.after_build(self, target).map_err(|d| invalid(&d))? {
                    AfterBuild::Continue => {}
                    AfterBuild::Skip(n) => {
                        let pos = f.decoder.position() as u64;
                        let end = pos
                            .checked_add(n)
                            .filter(|&e| e <= data.len() as u64)
                            .ok_or_else(|| {
                                VmError::Decode(DecodeError::Truncated {
                                    op: "BUILD",
                                    offset,
                                    detail: format!(
                                        "inline array data of {n} bytes runs past the end"
                                    ),
                                    need: (base + pos).checked_add(n),
                                })
                            })?;
                        f.decoder.seek(end as usize);
                    }
                    AfterBuild::NestedPickle => {
                        let pos = f.decoder.position();
                        if depth + 1 >= self.limits.max_container_depth {
                            return Err(VmError::Budget {
                                what: "nested pickle depth",
                                limit: self.limits.max_container_depth as u64,
                                offset,
                            });
                        }
                        let inner =
                            self.run_nested(&data[pos..], base + pos as u64, hooks, depth + 1);
                        if let Some(e) = inner.error {
                            return Err(e);
                        }
                        f.decoder.seek(pos + inner.end);
                    }
                }
                return Ok(None);
            }
            (PERSID, Arg::Line(l)) => {
                let pid = self.alloc(Value::Str(utf8_text(l)), offset)?;
                self.persistent(pid, offset)?
            }
            (BINPERSID, _) => {
                let pid = pop!();
                self.persistent(pid, offset)?
            }
            (EXT1 | EXT2 | EXT4, Arg::Int(code)) => {
                if code <= 0 {
                    return Err(invalid("EXT specifies code <= 0"));
                }
                let g = self.add_global(
                    "copyreg".into(),
                    format!("_extension_registry[{code}]"),
                    offset,
                    opcode.name(),
                )?;
                self.event(EventKind::Extension(code), offset, g, g);
                g
            }
            (PROTO, Arg::Int(p)) => {
                if p > 5 {
                    return Err(invalid("unsupported pickle protocol"));
                }
                f.proto = p as u8;
                return Ok(None);
            }
            (FRAME, Arg::U64(n)) => {
                let pos = f.decoder.position();
                let left = (data.len() - pos) as u64;
                if n > left {
                    self.event(EventKind::FrameAnomaly, offset, NONE_ID, NONE_ID);
                    f.frame_end = None;
                } else {
                    f.frame_end = Some(pos + n as usize);
                }
                return Ok(None);
            }
            (NEXT_BUFFER, _) => {
                let b = self.alloc(Value::Buffer, offset)?;
                self.event(EventKind::OutOfBandBuffer, offset, b, b);
                b
            }
            (READONLY_BUFFER, _) => {
                let _wrapped = top!();
                return Ok(None);
            }
            (code, arg) => {
                // The decoder gives every opcode its argument kind, so this cannot happen.
                return Err(invalid(&format!(
                    "unexpected argument {arg:?} for {}",
                    code.name()
                )));
            }
        };
        if f.stack.len() >= self.limits.max_stack {
            return Err(VmError::Budget {
                what: "stack size",
                limit: self.limits.max_stack as u64,
                offset,
            });
        }
        f.stack.push(pushed);
        Ok(None)
    }

    fn call(
        &mut self,
        kind: CallKind,
        func: Id,
        args: Id,
        kwargs: Option<Id>,
        offset: u64,
    ) -> Result<Id, VmError> {
        let obj = Object {
            kind,
            func,
            args,
            kwargs,
            offset,
            state: None,
            items: Vec::new(),
            pairs: Vec::new(),
        };
        let id = self.alloc(Value::Object(Box::new(obj)), offset)?;
        self.event(EventKind::Call(kind), offset, func, id);
        Ok(id)
    }

    fn persistent(&mut self, pid: Id, offset: u64) -> Result<Id, VmError> {
        let id = self.alloc(Value::Persistent { pid, offset }, offset)?;
        self.event(EventKind::PersistentId, offset, pid, id);
        Ok(id)
    }

    fn memo_get(
        &self,
        f: &Frame<'a>,
        key: u64,
        op: &'static str,
        offset: u64,
    ) -> Result<Id, VmError> {
        f.memo.get(key).ok_or_else(|| VmError::Invalid {
            op,
            offset,
            detail: format!("memo value not found at index {key}"),
        })
    }

    fn memo_put(&self, f: &mut Frame<'a>, key: u64, v: Id, offset: u64) -> Result<(), VmError> {
        if f.memo.len() >= self.limits.max_memo && !f.memo.contains(key) {
            return Err(VmError::Budget {
                what: "memo entries",
                limit: self.limits.max_memo as u64,
                offset,
            });
        }
        f.memo.insert(key, v);
        Ok(())
    }

    fn add_items(
        &mut self,
        target: Id,
        items: Vec<Id>,
        method: &'static str,
        offset: u64,
    ) -> Result<(), String> {
        let first = items.first().copied().unwrap_or(NONE_ID);
        match &mut self.arena[target.0 as usize] {
            Value::List(v) if method != "add" => v.extend(items),
            Value::Set(v) if method == "add" => v.extend(items),
            Value::Object(o) => {
                o.items.extend(items);
                self.event(EventKind::Method(method), offset, target, first);
            }
            Value::Global(_) | Value::Persistent { .. } => {
                self.event(EventKind::Method(method), offset, target, first)
            }
            other => return Err(format!("cannot {method} to {}", other.type_name())),
        }
        Ok(())
    }

    fn set_items(&mut self, target: Id, pairs: Vec<(Id, Id)>, offset: u64) -> Result<(), String> {
        let first = pairs.first().map(|p| p.1).unwrap_or(NONE_ID);
        match &mut self.arena[target.0 as usize] {
            Value::Dict(v) => v.extend(pairs),
            Value::Object(o) => {
                o.pairs.extend(pairs);
                self.event(EventKind::Method("__setitem__"), offset, target, first);
            }
            Value::Global(_) | Value::Persistent { .. } => {
                self.event(EventKind::Method("__setitem__"), offset, target, first)
            }
            other => return Err(format!("cannot set items on {}", other.type_name())),
        }
        Ok(())
    }
}

/// Values whose real type is only known at load time.
fn is_computed(v: &Value<'_>) -> bool {
    matches!(
        v,
        Value::Object(_) | Value::Persistent { .. } | Value::Global(_) | Value::Buffer
    )
}

fn pairs(items: &[Id]) -> Option<Vec<(Id, Id)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    Some(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// Apply `find_class`'s Python-2 name mapping, which CPython applies when protocol < 3.
fn resolve(proto: u8, module: &str, name: &str) -> (String, String) {
    if proto < 3 {
        crate::names::fix_imports(module, name)
    } else {
        (module.to_string(), name.to_string())
    }
}

fn long_value(b: &[u8]) -> Value<'_> {
    if b.len() <= 8 {
        let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..b.len()].copy_from_slice(b);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(b)
    }
}

fn parse_decimal(l: &[u8]) -> Option<u64> {
    std::str::from_utf8(l).ok()?.trim().parse::<u64>().ok()
}

/// An integer literal as `int(text, 0)` reads it (sign, `0x`/`0o`/`0b`, underscores, spaces).
fn parse_int_text(l: &[u8]) -> Option<Value<'static>> {
    let s = std::str::from_utf8(l).ok()?.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string())
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string())
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string())
    } else {
        (10, lower.clone())
    };
    let body: String = body.chars().filter(|&c| c != '_').collect();
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    match i64::from_str_radix(&body, radix) {
        Ok(v) => Some(Value::Int(if neg { -v } else { v })),
        Err(_) => Some(Value::BigText(
            format!(
                "{}{}",
                if neg { "-" } else { "" },
                s.trim_start_matches(['-', '+'])
            )
            .into(),
        )),
    }
}

fn parse_float(l: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(l).ok()?.trim();
    let s: String = s.chars().filter(|&c| c != '_').collect();
    s.parse::<f64>().ok()
}

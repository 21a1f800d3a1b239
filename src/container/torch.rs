//! How torch (and anything that opens zips, tars and pickles) reads its containers, and which
//! parts of them are pickles.
//!
//! * zip (`torch.save`, TorchScript, `.npz`, any zip): every member is considered. Members named
//!   like pickles (`*.pkl`, `*.debug_pkl`, `*.pickle`) are scanned first and their persistent ids
//!   `('storage', type, key, …)` name the tensor storages (`<dir>/data/<key>`,
//!   `<dir>/constants/<key>`): those are data and are never read. Every other member is
//!   recognised by content: a pickle or a container is scanned, anything else is data.
//!   TorchScript `code/` members are Python-like source that `torch.jit.load` compiles and runs.
//! * legacy (`_use_new_zipfile_serialization=False`): five pickles, then raw storages skipped by
//!   the sizes the main pickle records.
//! * tar (torch ≤ 0.1.10): `storages`, `tensors` and `pickle` members.

use super::weights_only::{self, Replay, ZipStart};
use super::{ids, scan_content, shift, speculative_pickle, Ctx, Kind, Scanned};
use crate::finding::Finding;
use crate::format::joblib::JoblibHooks;
use crate::format::torch::{self as torch_layout, is_pickle_name, lower_basename};
use crate::format::zip::{self, Archive, Entry, Note, ZipError};
use crate::format::Format;
use crate::pickle::value::{Id, Value};
use crate::pickle::vm::{AfterBuild, EventKind, Hooks, NoHooks, Vm, VmError};
use crate::scan::{is_storage_pid, StreamEnd};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Bytes inflated to recognise a member's content.
const HEAD: usize = 64;

/// Element size of a torch storage class (legacy typed storages; `UntypedStorage` counts bytes),
/// from the one storage-class table ([`crate::format::dtype::ElemType::from_storage_class`]).
pub fn storage_element_size(class: &str) -> Option<u64> {
    crate::format::dtype::ElemType::from_storage_class(class).map(|e| e.size() as u64)
}

/// `(key, storage class name, numel)` of every storage persistent id recorded in `events`.
pub fn storage_ids(vm: &Vm<'_>, from_event: usize) -> Vec<StorageId> {
    let mut out = Vec::new();
    for ev in &vm.events()[from_event..] {
        if ev.kind != EventKind::PersistentId || !is_storage_pid(vm, ev.subject) {
            continue;
        }
        let Some(items) = vm.value(ev.subject).as_seq() else {
            continue;
        };
        let key = items.get(2).and_then(|&k| match vm.value(k) {
            Value::Str(s) => Some(s.to_string()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        });
        let class = items
            .get(1)
            .and_then(|&c| vm.as_global(c))
            .map(|g| g.name.clone());
        let numel = items
            .get(4)
            .and_then(|&n| vm.value(n).as_int())
            .and_then(|n| u64::try_from(n).ok());
        if let Some(key) = key {
            out.push((key, class, numel));
        }
    }
    out
}

fn note_finding(ctx: &Ctx<'_>, n: Note) -> Finding {
    let f = ctx.anomaly(ids::ZIP_ANOMALY, n.offset, n.message);
    match n.member {
        Some(m) => f.in_member(&m),
        None => f,
    }
}

/// Scan a zip archive member by member.
pub(crate) fn scan_zip(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let limits = &ctx.scanner.limits;
    let archive = Archive::parse(data, limits.max_members);
    // Without a usable central directory the members are found by walking the whole archive:
    // on part of a file, every byte is needed first.
    if archive.as_ref().map_or(true, |a| a.walked) && !ctx.has_range(depth, 0, data.len() as u64) {
        return ctx.unread(
            Format::Zip,
            ids::IO_ERROR,
            "not fully read: the archive has no usable central directory, and its members are found by reading all of it".into(),
        );
    }
    let archive = match archive {
        Ok(a) => a,
        Err(e) => {
            return ctx.unread(
                Format::Zip,
                ids::ZIP_ANOMALY,
                format!("unreadable zip archive: {e}"),
            )
        }
    };
    // The directory was found from the end: the end records and the directory are read.
    let size = data.len() as u64;
    let ends_at_hand = ctx.has_range(depth, zip::end_search_start(size), size);
    let directory_at_hand = ctx.has_range(depth, archive.directory_offset.min(size), size);
    if !(ends_at_hand && directory_at_hand) {
        return ctx.unread(
            Format::Zip,
            ids::IO_ERROR,
            "not fully read: the archive's directory is not at hand".into(),
        );
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut notes: Vec<Note> = archive.notes.clone();
    // torch.load's own reading of the archive, when the scan models it: the record it
    // unpickles is replayed below, as the scan runs it.
    let mut torch_load = None;
    if ctx.models_torch_load(depth) && weights_only::read_as_zip(data) {
        match weights_only::zip_start(data, &archive) {
            ZipStart::Done(answer) => {
                ctx.weights_only.replace(Some(answer));
            }
            ZipStart::Unpickle(rec) => torch_load = Some(rec),
        }
    }
    let lower: Vec<String> = archive
        .entries
        .iter()
        .map(|e| lower_basename(&e.name))
        .collect();
    let torchscript = torch_layout::is_torchscript(archive.entries.iter().map(|e| e.name.as_str()));
    let torch = lower.iter().any(|b| b == "data.pkl");
    let format = if torchscript {
        Format::TorchScript
    } else if torch {
        Format::TorchZip
    } else if !lower.is_empty() && lower.iter().all(|b| b.ends_with(".npy") || b.is_empty()) {
        Format::Npz
    } else {
        Format::Zip
    };

    // Bytes before the archive: a loader that does not look for a zip (torch.load checks only
    // the first four bytes) reads them as something else, so they are content of their own.
    if archive.prefix_len > 0 && ctx.has_range(depth, 0, archive.prefix_len) {
        let prefix = &data[..archive.prefix_len as usize];
        let scanned = scan_content(ctx, prefix, None, depth + 1);
        if scanned.format != Format::Unknown {
            findings.extend(
                scanned
                    .findings
                    .into_iter()
                    .map(|f| f.in_member("<bytes before the archive>")),
            );
        }
    }

    // Phase 1: members named like pickles; their storage ids name the tensor data members.
    let mut storages: HashSet<String> = HashSet::new();
    type Declared = (String, String, [String; 3], Option<String>, Option<u64>);
    let mut declared: Vec<Declared> = Vec::new();
    let mut later: Vec<&Entry> = Vec::new();
    for e in &archive.entries {
        if e.is_dir() {
            continue;
        }
        if !is_pickle_name(&e.name) {
            later.push(e);
            continue;
        }
        if !ctx.has_member(depth, &archive, e, None) {
            continue;
        }
        let Some(bytes) = read_member(ctx, &archive, e, &mut findings, &mut notes) else {
            continue;
        };
        let kind = super::detect(&bytes, Some(&e.name));
        // The usual member, a protocol 2+ pickle such as data.pkl: one run of the machine gives
        // both its findings and the storage ids of its first stream (what torch reads).
        let single_run = kind == Kind::Pickle
            && bytes[0] == 0x80
            && depth < limits.max_container_depth
            && !looks_legacy(ctx, &bytes);
        let (scanned, ids) = if single_run {
            let mut ids = Vec::new();
            let scanned = scan_plain_pickle(ctx, &bytes, Some(&mut ids));
            (scanned, ids)
        } else if matches!(kind, Kind::Pickle | Kind::TorchLegacy) {
            let (vm, _run) = ctx.scanner.run_one(&bytes, &mut NoHooks);
            let ids = storage_ids(&vm, 0);
            drop(vm);
            (scan_content(ctx, &bytes, Some(&e.name), depth + 1), ids)
        } else {
            (
                scan_content(ctx, &bytes, Some(&e.name), depth + 1),
                Vec::new(),
            )
        };
        // torch.load's unpickler over the record it reads, from the bytes just scanned.
        if torch_load.is_some_and(|rec| std::ptr::eq(rec, e)) {
            let replayed = Replay::member(&bytes).finish();
            ctx.weights_only
                .replace(Some(weights_only::zip_end(e, Ok(replayed))));
        }
        for (key, class, numel) in ids {
            let names = torch_layout::storage_member_names(&e.name, &key);
            storages.extend(names.iter().cloned());
            declared.push((e.name.clone(), key.to_lowercase(), names, class, numel));
        }
        findings.extend(scanned.findings.into_iter().map(|f| f.in_member(&e.name)));
    }

    // Each storage's declared size against its member (CVE-2026-24747: a storage larger than
    // its record makes the loader read past it).
    let mut by_name: HashMap<String, &Entry> = HashMap::new();
    for e in &archive.entries {
        by_name.entry(e.name.to_lowercase()).or_insert(e);
    }
    let mut checked: HashSet<(String, String)> = HashSet::new();
    for (pickle, key, names, class, numel) in &declared {
        if !checked.insert((pickle.clone(), key.clone())) {
            continue;
        }
        let Some(m) = names.iter().find_map(|n| by_name.get(n)) else {
            findings.push(
                ctx.anomaly(
                    ids::ZIP_ANOMALY,
                    None,
                    format!("storage '{key}' is referenced but the archive has no member for it"),
                )
                .in_member(pickle),
            );
            continue;
        };
        let need = class
            .as_deref()
            .and_then(storage_element_size)
            .zip(*numel)
            .and_then(|(size, n)| size.checked_mul(n));
        // torch.jit.save writes the storages of a trace's example inputs as empty records
        // (`traced_inputs/N`, observed with torch 2.15 `torch.jit.trace` + `torch.jit.save`).
        let empty_traced_input =
            torchscript && m.size == 0 && m.name.to_lowercase().contains("traced_inputs/");
        match need {
            Some(need) if need != m.size && !empty_traced_input => findings.push(
                ctx.anomaly(
                    ids::ZIP_ANOMALY,
                    Some(m.local_offset),
                    format!(
                        "storage '{key}' declares {} elements of class {} ({need} bytes) but its member holds {} bytes",
                        numel.unwrap_or(0),
                        class.as_deref().unwrap_or("?"),
                        m.size
                    ),
                )
                .in_member(&m.name),
            ),
            _ => {}
        }
    }

    // Phase 2: everything else, by content. On part of a file, only once every pickle was at
    // hand: until then which members are storages is not known.
    if !ctx.missing.borrow().is_empty() {
        later.clear();
    }
    let mut code_members: Vec<&str> = Vec::new();
    for e in later {
        let lname = e.name.to_lowercase();
        if storages.contains(&lname) {
            continue;
        }
        if torchscript && torch_layout::is_torchscript_code(&lname) {
            code_members.push(&e.name);
            continue;
        }
        if e.is_encrypted()
            || !matches!(
                e.method,
                crate::format::zip::STORED | crate::format::zip::DEFLATED
            )
        {
            // Reported by read_member.
            if ctx.has_member(depth, &archive, e, None) {
                let _ = read_member(ctx, &archive, e, &mut findings, &mut notes);
            }
            continue;
        }
        if !ctx.has_member(depth, &archive, e, Some(HEAD)) {
            continue;
        }
        let head = match archive.head(e, HEAD, &mut notes) {
            Ok(h) => h,
            Err(err) => {
                findings.push(member_error(ctx, e, e.compressed_size, &err));
                continue;
            }
        };
        let kind = super::detect(&head, Some(&e.name));
        let scan_whole = match kind {
            Kind::Empty | Kind::Unknown => false,
            // A protocol 0/1 opcode first is weak evidence: decided below by running it.
            Kind::Pickle => head[0] == 0x80,
            _ => true,
        };
        let weak = kind == Kind::Pickle && !scan_whole;
        if !scan_whole && !weak {
            continue;
        }
        if !ctx.has_member(depth, &archive, e, None) {
            continue;
        }
        let Some(bytes) = read_member(ctx, &archive, e, &mut findings, &mut notes) else {
            continue;
        };
        if weak {
            if let Some(fs) = speculative_pickle(ctx, &bytes) {
                findings.extend(fs.into_iter().map(|f| f.in_member(&e.name)));
            }
            continue;
        }
        let scanned = scan_content(ctx, &bytes, Some(&e.name), depth + 1);
        findings.extend(scanned.findings.into_iter().map(|f| f.in_member(&e.name)));
    }
    if torchscript {
        code_members.retain(|name| {
            archive
                .entries
                .iter()
                .find(|e| e.name == *name)
                .is_none_or(|e| ctx.has_member(depth, &archive, e, None))
        });
        judge_torchscript(ctx, &archive, &code_members, &mut findings, &mut notes);
    }
    let missing = ctx.missing.borrow().len();
    if depth == 0 && missing > 0 {
        findings.push(ctx.anomaly(
            ids::IO_ERROR,
            None,
            format!(
                "not fully read: {missing} parts of the archive the scan needs are not at hand"
            ),
        ));
    }
    let mut all: Vec<Finding> = notes.into_iter().map(|n| note_finding(ctx, n)).collect();
    all.extend(findings);
    Scanned {
        format,
        findings: all,
    }
}

/// Judge a TorchScript archive as TorchScript: its `__torch__.*` globals are classes compiled
/// from its own `code/` (not imports) when their source is there, and its code is judged by
/// the operators it calls ([`super::torchscript`]).
fn judge_torchscript(
    ctx: &Ctx<'_>,
    archive: &Archive<'_>,
    code_members: &[&str],
    findings: &mut Vec<Finding>,
    notes: &mut Vec<Note>,
) {
    let code_files: Vec<String> = code_members.iter().map(|m| m.to_string()).collect();
    findings.retain(|f| {
        !(f.rule == crate::scan::ids::UNKNOWN_GLOBAL
            && f.global
                .as_deref()
                .is_some_and(|g| super::torchscript::class_has_source(g, &code_files)))
    });
    for name in code_members {
        let Some(e) = archive.entries.iter().find(|e| e.name == *name) else {
            continue;
        };
        let Some(bytes) = read_member(ctx, archive, e, findings, notes) else {
            findings.push(ctx.anomaly(
                ids::TORCHSCRIPT_CODE,
                None,
                format!("TorchScript code {name} could not be read: what it runs is not known"),
            ));
            continue;
        };
        let reach = super::torchscript::judge_code(&String::from_utf8_lossy(&bytes));
        for call in reach.file_access {
            findings.push(
                Finding {
                    call: Some(call),
                    ..ctx.anomaly(
                        ids::TORCHSCRIPT_FILE_ACCESS,
                        None,
                        "TorchScript code calls a file operator (from_file maps a file of the loading machine, save writes one) when the model runs".into(),
                    )
                }
                .in_member(name),
            );
        }
        for op in reach.foreign {
            findings.push(
                ctx.anomaly(
                    ids::TORCHSCRIPT_FOREIGN_OPERATOR,
                    None,
                    format!("TorchScript code uses {op}, from a native library torch does not ship: what it does cannot be known from the archive"),
                )
                .in_member(name),
            );
        }
    }
}

fn member_error(ctx: &Ctx<'_>, e: &Entry, csize: u64, err: &ZipError) -> Finding {
    let f = match err {
        ZipError::Unsupported(m) => ctx.anomaly(
            ids::UNSUPPORTED_MEMBER,
            Some(e.local_offset),
            format!("member not scanned: {m}"),
        ),
        ZipError::Budget(b) => ctx.anomaly(
            ids::DECOMPRESSION_BUDGET,
            Some(e.local_offset),
            format!(
                "member inflates to {}: not scanned",
                ctx.budget_reason(*b, csize)
            ),
        ),
        other => ctx.anomaly(
            ids::ZIP_ANOMALY,
            Some(e.local_offset),
            format!("member cannot be read: {other}"),
        ),
    };
    f.in_member(&e.name)
}

/// Read a whole member, reporting why not when it cannot be read. Encrypted members stored
/// without compression are still scanned as they are, in case a reader ignores the flag.
fn read_member<'a>(
    ctx: &Ctx<'_>,
    archive: &Archive<'a>,
    e: &Entry,
    findings: &mut Vec<Finding>,
    notes: &mut Vec<Note>,
) -> Option<Cow<'a, [u8]>> {
    // The ratio cap counts the bytes actually in the archive, not the size the directory claims.
    let csize = archive
        .raw(e, &mut Vec::new())
        .map_or(e.compressed_size, |r| r.len() as u64);
    match archive.read(e, ctx.budget(csize), notes) {
        Ok(b) => {
            if let Cow::Owned(v) = &b {
                ctx.spend(v.len() as u64);
            }
            Some(b)
        }
        Err(err) => {
            findings.push(member_error(ctx, e, csize, &err));
            if e.is_encrypted() && e.method == crate::format::zip::STORED {
                if let Ok(raw) = archive.raw(e, notes) {
                    if let Some(fs) = speculative_pickle(ctx, raw) {
                        findings.extend(fs.into_iter().map(|f| f.in_member(&e.name)));
                    }
                }
            }
            None
        }
    }
}

/// Run pickles one after another from `pos` with one machine; used to find where the pickles of
/// a sequence end and what they returned.
struct Walker<'d> {
    vm: Vm<'d>,
    data: &'d [u8],
}

impl<'d> Walker<'d> {
    fn new(ctx: &Ctx<'_>, data: &'d [u8]) -> Self {
        Walker {
            vm: Vm::new(ctx.scanner.limits.clone()),
            data,
        }
    }

    /// Run the pickle at `pos`: its result and the position after its STOP.
    fn next(&mut self, pos: usize) -> Result<(Id, usize, usize), VmError> {
        let events = self.vm.events().len();
        let run = self.vm.run(&self.data[pos..], pos as u64, &mut NoHooks);
        if let Some(e) = run.error {
            return Err(e);
        }
        let result = run.result.expect("a run without error has a result");
        Ok((result, pos + run.end, events))
    }
}

/// True when a value is the int torch's legacy format starts with.
fn is_legacy_magic(v: &Value<'_>) -> bool {
    const MAGIC: [u8; 10] = torch_layout::MAGIC_NUMBER_BYTES;
    match v {
        Value::BigInt(b) => {
            let trimmed: &[u8] = if b.len() > 10 && b[10..].iter().all(|&x| x == 0) {
                &b[..10]
            } else {
                b
            };
            trimmed == MAGIC
        }
        Value::BigText(t) => t.trim_end_matches('L') == torch_layout::MAGIC_NUMBER_DECIMAL,
        _ => false,
    }
}

/// True when the first pickles of `data` are those of torch's legacy format: the magic number,
/// or (when an attacker replaced it) the protocol version 1001 or the `sys_info` dict after it.
/// The three are small at any protocol, so only the first bytes are looked at.
pub(crate) fn looks_legacy(ctx: &Ctx<'_>, data: &[u8]) -> bool {
    // Cheap filter before running anything: the magic number's bytes, the protocol version or
    // the sys_info keys near the start. A file with none of them is not loaded past its first
    // pickle by torch, and is scanned as a sequence of pickles anyway.
    let head = &data[..data.len().min(512)];
    let markers: [&[u8]; 4] = [
        &torch_layout::MAGIC_NUMBER_BYTES[..4],
        b"11954703714603880",
        b"protocol_version",
        b"M\xe9\x03",
    ];
    // One pass over the head, comparing each pair of bytes with the markers' first two (their
    // first bytes alone are common in pickles); a marker is compared in full only there.
    let pairs = markers.map(|m| u16::from_le_bytes([m[0], m[1]]));
    let found = head.windows(2).enumerate().any(|(i, w)| {
        pairs.contains(&u16::from_le_bytes([w[0], w[1]]))
            && markers.iter().any(|m| head[i..].starts_with(m))
    });
    if !found {
        return false;
    }
    let mut probe = Walker::new(ctx, head);
    let mut pos = 0;
    for i in 0..3 {
        let Ok((r, end, _)) = probe.next(pos) else {
            return false;
        };
        let v = probe.vm.value(r);
        let hit = match i {
            0 => is_legacy_magic(v),
            1 => v.as_int() == Some(1001),
            _ => {
                crate::format::joblib::dict_get(&probe.vm, r, "protocol_version").is_some()
                    && crate::format::joblib::dict_get(&probe.vm, r, "type_sizes").is_some()
            }
        };
        if hit {
            return true;
        }
        pos = end;
    }
    false
}

/// A raw pickle file: plain pickle, joblib dump, or torch's legacy format.
pub(crate) fn scan_pickle_file(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let scanned = scan_pickles(ctx, data);
    if ctx.models_torch_load(depth) {
        let replayed = Replay::file(data).finish();
        ctx.weights_only
            .replace(Some(weights_only::file_end(data, replayed)));
    }
    scanned
}

/// The pickles of `data` as torch's loaders read them (the legacy format, or pickles in a row).
pub(crate) fn scan_pickles(ctx: &Ctx<'_>, data: &[u8]) -> Scanned {
    if looks_legacy(ctx, data) {
        return scan_legacy(ctx, data, Walker::new(ctx, data));
    }
    scan_plain_pickle(ctx, data, None)
}

/// A storage persistent id: key, storage class name, element count.
type StorageId = (String, Option<String>, Option<u64>);

/// Joblib's hooks, and the storage ids of the first stream when asked for.
struct MemberHooks<'d, 'v> {
    joblib: JoblibHooks<'d>,
    storages: Option<&'v mut Vec<StorageId>>,
    /// `torch.storage._load_from_bytes` calls: (their offsets, the archive's bytes).
    nested: Vec<(Vec<u64>, Vec<u8>)>,
    /// Index in `nested` of each bytes object already copied.
    nested_by_arg: HashMap<Id, usize>,
    /// Events already looked at by `stream_end`.
    events_seen: usize,
}

impl Hooks for MemberHooks<'_, '_> {
    fn after_build(&mut self, vm: &Vm<'_>, target: Id) -> Result<AfterBuild, String> {
        self.joblib.after_build(vm, target)
    }

    fn stream_end(&mut self, vm: &Vm<'_>, index: usize) {
        if index == 0 {
            if let Some(out) = self.storages.as_deref_mut() {
                *out = storage_ids(vm, 0);
            }
        }
        // Only the events of the stream that ended (the machine keeps them all).
        let events = vm.events();
        for ev in &events[self.events_seen.min(events.len())..] {
            if let EventKind::Call(_) = ev.kind {
                let Some(arg) = load_from_bytes_arg(vm, ev.node) else {
                    continue;
                };
                // One copy per bytes object, however many calls share it through the memo.
                if let Some(&i) = self.nested_by_arg.get(&arg) {
                    self.nested[i].0.push(ev.offset);
                } else if let Some(Ok(bytes)) = vm.bytes_of(arg) {
                    self.nested_by_arg.insert(arg, self.nested.len());
                    self.nested.push((vec![ev.offset], bytes.into_owned()));
                }
            }
        }
        self.events_seen = events.len();
    }
}

/// The bytes of `torch.storage._load_from_bytes(b)` (how `pickle.dumps` writes a torch
/// storage: `torch.load` of a whole torch archive), given as bytes or, at protocol 2, as
/// `_codecs.encode(text, 'latin1')`.
fn load_from_bytes_arg(vm: &Vm<'_>, call: Id) -> Option<Id> {
    let Value::Object(o) = vm.value(call) else {
        return None;
    };
    let g = vm.as_global(o.func)?;
    if g.module != "torch.storage" || g.name != "_load_from_bytes" {
        return None;
    }
    match vm.value(o.args).as_seq()? {
        &[arg] => Some(arg),
        _ => None,
    }
}

/// Scan the torch archives a pickle loads with `torch.storage._load_from_bytes`: a clean archive
/// (a storage, as `pickle.dumps` of a tensor writes) clears the nested-loader finding of that
/// call; anything else in it is reported as found inside it.
fn judge_nested_loads(
    ctx: &Ctx<'_>,
    nested: Vec<(Vec<u64>, Vec<u8>)>,
    findings: &mut Vec<Finding>,
) {
    for (offsets, bytes) in nested {
        let at = offsets[0];
        let depth = ctx.nested_loads.get() + 1;
        if depth > ctx.scanner.limits.max_container_depth {
            continue;
        }
        ctx.nested_loads.set(depth);
        let scanned = scan_content(ctx, &bytes, None, depth);
        ctx.nested_loads.set(depth - 1);
        let clean = scanned.format.is_torch()
            && scanned
                .findings
                .iter()
                .all(|f| f.severity.verdict() == crate::Verdict::Clean);
        if clean {
            let offsets: HashSet<u64> = offsets.into_iter().collect();
            findings.retain(|f| {
                !(f.offset.is_some_and(|o| offsets.contains(&o))
                    && f.global.as_deref() == Some("torch.storage._load_from_bytes"))
            });
        } else {
            let member = format!("_load_from_bytes@{at}");
            findings.extend(scanned.findings.into_iter().map(|f| f.in_member(&member)));
        }
    }
}

/// A pickle that is not torch's legacy format: plain pickle or joblib dump. `storages`, when
/// given, receives the storage ids its first stream names.
fn scan_plain_pickle(ctx: &Ctx<'_>, data: &[u8], storages: Option<&mut Vec<StorageId>>) -> Scanned {
    let mut member = MemberHooks {
        joblib: JoblibHooks::new(data),
        storages,
        nested: Vec::new(),
        nested_by_arg: HashMap::new(),
        events_seen: 0,
    };
    let scan = ctx.scanner.scan_pickles(data, &mut member);
    let hooks = member.joblib;
    let mut findings = scan.findings;
    judge_nested_loads(ctx, member.nested, &mut findings);
    for (at, file) in &hooks.companion_files {
        findings.push(Finding {
            member: Some(file.clone()),
            ..ctx.anomaly(
                ids::JOBLIB_COMPANION,
                Some(*at),
                format!(
                    "joblib < 0.10 array stored in a companion file '{file}' (loaded from the dump's folder): not scanned with the dump"
                ),
            )
        });
        ctx.companions.borrow_mut().push((*at, file.clone()));
    }
    let format = if hooks.arrays + hooks.object_arrays > 0 || !hooks.companion_files.is_empty() {
        Format::Joblib
    } else {
        Format::Pickle
    };
    Scanned { format, findings }
}

/// Storages the object pickle of a legacy file names: key → (class, element count).
type LegacyStorages = HashMap<String, (Option<String>, Option<u64>)>;

/// The five pickles of torch's legacy format, read as torch reads them.
struct LegacyPickles {
    /// Position after the last pickle read.
    end: usize,
    storages: LegacyStorages,
    /// The storage keys the fifth pickle lists (`None` when it is no list).
    keys: Option<Vec<String>>,
    /// Why reading stopped before the fifth pickle's end.
    error: Option<VmError>,
}

fn read_legacy_pickles(w: &mut Walker<'_>) -> LegacyPickles {
    let mut out = LegacyPickles {
        end: 0,
        storages: HashMap::new(),
        keys: None,
        error: None,
    };
    for i in 0..5 {
        match w.next(out.end) {
            Ok((result, end, events)) => {
                out.end = end;
                if i == 3 {
                    for (k, class, numel) in storage_ids(&w.vm, events) {
                        out.storages.entry(k).or_insert((class, numel));
                    }
                }
                if i == 4 {
                    out.keys = w.vm.value(result).as_seq().map(|items| {
                        items
                            .iter()
                            .filter_map(|&k| w.vm.value(k).as_str().map(str::to_string))
                            .collect()
                    });
                }
            }
            Err(e) => {
                out.keys = None;
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// Where the legacy scan (`scan_legacy`, the same walk) stops reading `prefix`, the first bytes
/// of a legacy torch file (the five pickles, then each raw storage's element count, stepping
/// over its bytes; bytes after the last storage are read whole); also whether the pickles hold
/// a dangerous finding.
pub fn legacy_reads(scanner: &crate::Scanner, prefix: &[u8]) -> (StreamEnd, bool) {
    let ctx = Ctx::new(scanner, 0, None);
    let mut w = Walker::new(&ctx, prefix);
    let head = read_legacy_pickles(&mut w);
    let dangerous = ctx
        .scanner
        .judge_events(&w.vm)
        .iter()
        .any(|f| f.severity.verdict() == crate::Verdict::Dangerous);
    let reads = match (&head.error, &head.keys) {
        (Some(e), _) => StreamEnd::of(e),
        // No key list: the scanner reads the whole file as pickles.
        (None, None) => StreamEnd::Cut { need: None },
        (None, Some(keys)) => storage_reads(prefix, head.end as u64, keys, &head.storages),
    };
    (reads, dangerous)
}

/// How a walk over a legacy file's raw storages ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StorageWalk {
    /// Every listed storage was stepped over; the walk ended at this offset.
    End(u64),
    /// A listed key that no pickled storage has.
    Unlisted { key: String, at: u64 },
    /// A storage whose element size is unknown, or whose count is cut off by the end of the
    /// bytes given (`cut`).
    Unlocatable {
        key: String,
        class: Option<String>,
        at: u64,
        cut: bool,
    },
    /// A storage that runs past the end of the file (or whose size overflows).
    Overruns {
        key: String,
        count: u64,
        elem: u64,
        at: u64,
    },
}

/// Walk the raw storages after the pickles, from `at`, as torch's legacy loader reads them: for
/// each listed key, an element count (u64) then that many elements. `data` may be a prefix of a
/// file of `size` bytes (the remote scan's), then the walk stops where the prefix does. `each`
/// gets every storage's key, offset, count and the count its pickle recorded.
fn walk_storages(
    data: &[u8],
    size: u64,
    mut at: u64,
    keys: &[String],
    storages: &LegacyStorages,
    mut each: impl FnMut(&str, u64, u64, Option<u64>),
) -> StorageWalk {
    for key in keys {
        let Some((class, numel)) = storages.get(key) else {
            return StorageWalk::Unlisted {
                key: key.clone(),
                at,
            };
        };
        let elem = class.as_deref().and_then(storage_element_size);
        let count = usize::try_from(at)
            .ok()
            .and_then(|a| data.get(a..a.checked_add(8)?))
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let (Some(elem), Some(count)) = (elem, count) else {
            return StorageWalk::Unlocatable {
                key: key.clone(),
                class: class.clone(),
                at,
                cut: count.is_none(),
            };
        };
        each(key, at, count, *numel);
        match count
            .checked_mul(elem)
            .and_then(|n| n.checked_add(at + 8))
            .filter(|&e| e <= size)
        {
            Some(end) => at = end,
            None => {
                return StorageWalk::Overruns {
                    key: key.clone(),
                    count,
                    elem,
                    at,
                }
            }
        }
    }
    StorageWalk::End(at)
}

/// The legacy scanner's reads of the raw storages of `prefix` from `at`.
fn storage_reads(prefix: &[u8], at: u64, keys: &[String], storages: &LegacyStorages) -> StreamEnd {
    let have = prefix.len() as u64;
    match walk_storages(prefix, u64::MAX, at, keys, storages, |_, _, _, _| {}) {
        StorageWalk::End(end) if end > have => StreamEnd::Cut { need: Some(end) },
        StorageWalk::End(end) if end == have => StreamEnd::AtEnd,
        // What follows the last storage is read whole.
        StorageWalk::End(_) => StreamEnd::Cut { need: None },
        StorageWalk::Unlocatable { at, cut: true, .. } => StreamEnd::Cut { need: Some(at + 8) },
        StorageWalk::Unlisted { at, .. }
        | StorageWalk::Unlocatable { at, .. }
        | StorageWalk::Overruns { at, .. } => StreamEnd::Stopped { offset: at },
    }
}

/// torch legacy: magic, protocol, sys_info, object, storage keys, raw storages.
fn scan_legacy<'d>(ctx: &Ctx<'_>, data: &'d [u8], mut w: Walker<'d>) -> Scanned {
    let mut extra: Vec<Finding> = Vec::new();
    let head = read_legacy_pickles(&mut w);
    let (storages, keys) = (head.storages, head.keys);
    // After a broken stream the pickle scan below reads (and reports) the whole file.
    let pos = if head.error.is_some() {
        data.len()
    } else {
        head.end
    };
    let pickles_end = pos;
    let mut findings = ctx
        .scanner
        .scan_pickles(&data[..pickles_end], &mut NoHooks)
        .findings;
    if let Some(keys) = keys {
        let mismatch = |key: &str, at: u64, count: u64, numel: Option<u64>| {
            if let Some(n) = numel.filter(|&n| n != count) {
                extra.push(ctx.anomaly(
                    ids::MALFORMED,
                    Some(at),
                    format!(
                        "raw storage '{key}' holds {count} elements but the pickle records {n}: torch refuses it"
                    ),
                ));
            }
        };
        let size = data.len() as u64;
        let walk = walk_storages(data, size, pickles_end as u64, &keys, &storages, mismatch);
        match walk {
            StorageWalk::End(at) => {
                if at < size {
                    let tail = &data[at as usize..];
                    extra.push(ctx.anomaly(
                        ids::TRAILING_DATA,
                        Some(at),
                        format!("{} bytes after the last raw storage", tail.len()),
                    ));
                    if let Some(fs) = speculative_pickle(ctx, tail) {
                        extra.extend(shift(fs, at));
                    }
                }
            }
            StorageWalk::Unlisted { key, at } => extra.push(ctx.anomaly(
                ids::MALFORMED,
                Some(at),
                format!("storage key '{key}' is listed but no storage with that key was pickled: the rest of the file cannot be located"),
            )),
            StorageWalk::Unlocatable { key, class, at, cut } => extra.push(ctx.anomaly(
                if cut { ids::TRUNCATED } else { ids::MALFORMED },
                Some(at),
                format!(
                    "raw storage '{key}' of class {}: cannot be located",
                    class.as_deref().unwrap_or("?")
                ),
            )),
            StorageWalk::Overruns { key, count, elem, at } => extra.push(ctx.anomaly(
                ids::TRUNCATED,
                Some(at),
                format!("raw storage '{key}' ({count} elements of {elem} bytes) runs past the end of the file"),
            )),
        }
    } else if pickles_end < data.len() {
        // Not the full legacy layout: scan the rest as pickles, as a plain loader would.
        findings = ctx.scanner.scan_pickles(data, &mut NoHooks).findings;
    }
    findings.extend(extra);
    Scanned {
        format: Format::TorchLegacy,
        findings,
    }
}

/// A tar archive: torch ≤ 0.1.10 (`storages`, `tensors`, `pickle`) or any tar.
pub(crate) fn scan_tar(ctx: &Ctx<'_>, data: &[u8], depth: usize) -> Scanned {
    let listing = crate::format::tar::list(data, ctx.scanner.limits.max_members);
    let mut findings = Vec::new();
    if let Some(e) = &listing.error {
        findings.push(ctx.anomaly(ids::ZIP_ANOMALY, None, format!("tar archive: {e}")));
    }
    let torch = crate::format::tar::is_torch(&listing);
    for m in &listing.members {
        let fs = match (torch, m.name.as_str()) {
            (true, "pickle") => ctx.scanner.scan_pickles(m.data, &mut NoHooks).findings,
            (true, "storages") => scan_tar_storages(ctx, m.data),
            (true, "tensors") => scan_tar_tensors(ctx, m.data),
            _ => {
                let kind = super::detect(m.data, Some(&m.name));
                match kind {
                    Kind::Empty | Kind::Unknown => Vec::new(),
                    Kind::Pickle if m.data[0] != 0x80 && !is_pickle_name(&m.name) => {
                        speculative_pickle(ctx, m.data).unwrap_or_default()
                    }
                    _ => scan_content(ctx, m.data, Some(&m.name), depth + 1).findings,
                }
            }
        };
        findings.extend(fs.into_iter().map(|f| f.in_member(&m.name)));
    }
    Scanned {
        format: if torch { Format::TorchTar } else { Format::Tar },
        findings,
    }
}

/// Scan the pickles of a sequence given as byte ranges, each on its own.
fn scan_regions(ctx: &Ctx<'_>, data: &[u8], regions: &[(usize, usize)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for &(s, e) in regions {
        let fs = ctx.scanner.scan_pickles(&data[s..e], &mut NoHooks).findings;
        out.extend(shift(fs, s as u64));
    }
    out
}

/// Scan what is left of a sequence after a walk stopped at `pos` with `err`.
fn walk_error(ctx: &Ctx<'_>, data: &[u8], pos: usize, what: String) -> Vec<Finding> {
    let mut out = shift(
        ctx.scanner
            .scan_pickles(&data[pos..], &mut NoHooks)
            .findings,
        pos as u64,
    );
    out.push(ctx.anomaly(ids::MALFORMED, Some(pos as u64), what));
    out
}

/// The storage class named by one storage pickle of a tar archive's `storages` member
/// (`(key, location, storage class)`).
fn tar_storage_class(vm: &Vm<'_>, r: Id) -> Option<String> {
    vm.value(r)
        .as_seq()
        .and_then(|t| t.get(2))
        .and_then(|&c| vm.as_global(c))
        .map(|g| g.name.clone())
}

/// `storages`: pickle(n); n × (pickle((key, location, storage_type)), u64 count, data); pickle(views).
/// How a walk over a tar checkpoint's `storages` member ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TarWalk {
    /// Every storage was stepped over; what follows starts here.
    End(usize),
    /// The count pickle does not read (`None`) or is not a non-negative integer (it ends at
    /// `Some(pos)`).
    BadCount(Option<usize>),
    /// A storage pickle starting here does not read.
    BrokenPickle(usize),
    /// The raw data after the storage pickle ending at `end` cannot be located: unknown
    /// class, count cut off (`cut`), or running past the member.
    Unlocatable {
        end: usize,
        class: Option<String>,
        cut: bool,
    },
    /// The raw data end past the bytes given (a prefix of the member), at this offset.
    Beyond(u64),
}

/// Walk a `storages` member as torch's tar loader reads it: a count pickle, then per storage a
/// pickle `(key, device, class)`, an element count (u64) and that many elements. `data` may be
/// a prefix of a member of `size` bytes (the remote scan's). `region` gets each pickle's span.
fn walk_tar_storages(
    w: &mut Walker<'_>,
    data: &[u8],
    size: u64,
    mut region: impl FnMut(usize, usize),
) -> TarWalk {
    let Ok((r, mut pos, _)) = w.next(0) else {
        return TarWalk::BadCount(None);
    };
    region(0, pos);
    let Some(n) = w.vm.value(r).as_int().filter(|&n| n >= 0) else {
        return TarWalk::BadCount(Some(pos));
    };
    for _ in 0..n {
        let Ok((r, end, _)) = w.next(pos) else {
            return TarWalk::BrokenPickle(pos);
        };
        region(pos, end);
        let class = tar_storage_class(&w.vm, r);
        let elem = class.as_deref().and_then(storage_element_size);
        let count = data
            .get(end..end + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let next = match (elem, count) {
            (Some(e), Some(c)) => c
                .checked_mul(e)
                .and_then(|b| b.checked_add(end as u64 + 8))
                .filter(|&e| e <= size),
            _ => None,
        };
        match next {
            Some(p) if p > data.len() as u64 => return TarWalk::Beyond(p),
            Some(p) => pos = p as usize,
            None => {
                return TarWalk::Unlocatable {
                    end,
                    class,
                    cut: elem.is_some() && count.is_none(),
                }
            }
        }
    }
    TarWalk::End(pos)
}

fn scan_tar_storages(ctx: &Ctx<'_>, data: &[u8]) -> Vec<Finding> {
    let mut w = Walker::new(ctx, data);
    let mut regions = Vec::new();
    let walk = walk_tar_storages(&mut w, data, data.len() as u64, |s, e| regions.push((s, e)));
    let rest = |pos: usize| {
        shift(
            ctx.scanner
                .scan_pickles(&data[pos..], &mut NoHooks)
                .findings,
            pos as u64,
        )
    };
    if walk == TarWalk::BadCount(None) {
        return ctx.scanner.scan_pickles(data, &mut NoHooks).findings;
    }
    let mut out = scan_regions(ctx, data, &regions);
    match walk {
        TarWalk::BadCount(pos) => out.extend(walk_error(
            ctx,
            data,
            pos.unwrap_or(0),
            "storages: count is not an integer".into(),
        )),
        TarWalk::BrokenPickle(pos) => out.extend(rest(pos)),
        TarWalk::Unlocatable { end, class, .. } => out.push(ctx.anomaly(
            ids::MALFORMED,
            Some(end as u64),
            format!(
                "storages: raw data of class {} cannot be located",
                class.as_deref().unwrap_or("?")
            ),
        )),
        // The whole member is given: its raw data never end beyond it.
        TarWalk::Beyond(_) => {}
        // storage_views pickle and anything after it.
        TarWalk::End(pos) if pos < data.len() => out.extend(rest(pos)),
        TarWalk::End(_) => {}
    }
    out
}

/// How far the tar scan (`scan_tar_storages`) reads in the first bytes of a `storages` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberReads {
    /// It reads nothing past these bytes.
    Done,
    /// It reads past them, up to `need` (relative to the member) when that is the end of raw
    /// storage bytes it steps over.
    Cut {
        /// End of the raw bytes stepped over.
        need: Option<u64>,
    },
}

/// What the tar scan (`scan_tar_storages`, the same walk) reads of `prefix`, the first bytes of a `storages` member
/// of `size` bytes: the count pickle, each storage's pickle and element count (its raw bytes
/// stepped over), and everything after the last storage (or after a pickle that breaks).
pub fn tar_storages_reads(scanner: &crate::Scanner, prefix: &[u8], size: u64) -> MemberReads {
    let ctx = Ctx::new(scanner, 0, None);
    // The scanner reads the rest of the member whole.
    let rest = if prefix.len() as u64 >= size {
        MemberReads::Done
    } else {
        MemberReads::Cut { need: None }
    };
    let mut w = Walker::new(&ctx, prefix);
    match walk_tar_storages(&mut w, prefix, size, |_, _| {}) {
        TarWalk::Beyond(need) => MemberReads::Cut { need: Some(need) },
        // The scanner stops at raw data it cannot locate.
        TarWalk::Unlocatable { cut: false, .. } => MemberReads::Done,
        TarWalk::Unlocatable { cut: true, .. }
        | TarWalk::BadCount(_)
        | TarWalk::BrokenPickle(_)
        | TarWalk::End(_) => rest,
    }
}

/// `tensors`: pickle(n); n × (pickle((key, storage_id, type)), i32 ndim, 4 pad, sizes, strides, offset).
fn scan_tar_tensors(ctx: &Ctx<'_>, data: &[u8]) -> Vec<Finding> {
    let mut w = Walker::new(ctx, data);
    let mut regions = Vec::new();
    let (n, mut pos) = match w.next(0) {
        Ok((r, end, _)) => (w.vm.value(r).as_int(), end),
        Err(_) => return ctx.scanner.scan_pickles(data, &mut NoHooks).findings,
    };
    regions.push((0, pos));
    let n = n.filter(|&n| n >= 0).unwrap_or(0);
    for _ in 0..n {
        let start = pos;
        let end = match w.next(pos) {
            Ok((_, end, _)) => end,
            Err(_) => {
                let mut out = scan_regions(ctx, data, &regions);
                out.extend(shift(
                    ctx.scanner
                        .scan_pickles(&data[pos..], &mut NoHooks)
                        .findings,
                    pos as u64,
                ));
                return out;
            }
        };
        regions.push((start, end));
        let ndim = data
            .get(end..end + 4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")));
        let next = ndim
            .filter(|&d| (0..=64).contains(&d))
            .map(|d| end + 8 + 16 * d as usize + 8)
            .filter(|&p| p <= data.len());
        match next {
            Some(p) => pos = p,
            None => {
                let mut out = scan_regions(ctx, data, &regions);
                out.push(ctx.anomaly(
                    ids::MALFORMED,
                    Some(end as u64),
                    "tensors: tensor header cannot be read".into(),
                ));
                return out;
            }
        }
    }
    let mut out = scan_regions(ctx, data, &regions);
    if pos < data.len() {
        out.push(ctx.anomaly(
            ids::TRAILING_DATA,
            Some(pos as u64),
            format!("{} bytes after the last tensor header", data.len() - pos),
        ));
        if let Some(fs) = speculative_pickle(ctx, &data[pos..]) {
            out.extend(shift(fs, pos as u64));
        }
    }
    out
}

//! Torch tensors in a pickle's value graph: the known rebuild calls, interpreted, never called.
//!
//! Recognised (torch/_utils.py, torch/_tensor.py; argument order per formats.md §2.4):
//! `_rebuild_tensor(storage, offset, size, stride)`,
//! `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
//! `_rebuild_tensor_v3(…, hooks, dtype[, metadata])`, `_rebuild_parameter(data, …)`,
//! `_rebuild_parameter_with_state(data, …)`, `_rebuild_from_type_v2(func, type, args, state)`.
//! Storages are persistent ids `('storage', class, key, location, numel[, view])` resolved through
//! a [`Storages`] provided by the container. `_rebuild_qtensor` is reported as unsupported (its
//! values need its quantizer); the other rebuild kinds (sparse, nested, meta, device) are dropped.

use super::graph::{global_of, Interp, Walk};
use super::tensor::{ByteSource, ElemType, Region};
use crate::pickle::value::{Id, Value};

/// Where the storages of a torch pickle are: the container's records, by key.
pub trait Storages {
    /// The bytes of storage `key` and whether they must be byte-swapped (big-endian archive).
    fn storage(&self, key: &str) -> Result<(Region, bool), String>;
}

/// A pickle without storages (a plain pickle, joblib): every persistent id is unresolvable.
pub struct NoStorages;

impl Storages for NoStorages {
    fn storage(&self, key: &str) -> Result<(Region, bool), String> {
        Err(format!(
            "storage '{key}' is referenced but this file has no storage records"
        ))
    }
}

/// A resolved storage: bytes, element type of its class, swap flag.
struct Storage {
    region: Region,
    elem: ElemType,
    swap: bool,
}

/// Interpret `(func, args)` if `func` is a torch rebuild function.
pub(crate) fn rebuild(
    w: &mut Walk<'_, '_>,
    module: &str,
    name: &str,
    args: Id,
) -> Option<Result<Interp, String>> {
    let vm = w.vm;
    let args_v = vm
        .value(args)
        .as_seq()
        .map(|s| s.to_vec())
        .unwrap_or_default();
    match (module, name) {
        ("torch._utils", "_rebuild_tensor") => Some(dense(w, &args_v, 4, None, None)),
        ("torch._utils", "_rebuild_tensor_v2") => {
            let meta = args_v.get(6).copied();
            Some(dense(w, &args_v, 6, None, meta))
        }
        ("torch._utils", "_rebuild_tensor_v3") => {
            let dtype = args_v.get(6).copied();
            let meta = args_v.get(7).copied();
            Some(dense(w, &args_v, 7, dtype, meta))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            let Some(&data) = args_v.first() else {
                return Some(Err(format!("{name} without arguments")));
            };
            Some(w.tensor_value(data))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            if args_v.len() < 3 {
                return Some(Err(format!("{name} with {} arguments", args_v.len())));
            }
            let Some((m, n)) = global_of(vm, args_v[0]) else {
                return Some(Err(format!("{name}: the rebuild function is not a global")));
            };
            match rebuild(w, &m, &n, args_v[2]) {
                Some(r) => Some(r),
                None => Some(Ok(Interp::Dropped(format!(
                    "{name} with an unknown rebuild function {m}.{n}"
                )))),
            }
        }
        ("torch._utils", "_rebuild_qtensor") => Some(quantized(w, &args_v)),
        (
            "torch._utils",
            "_rebuild_sparse_tensor"
            | "_rebuild_nested_tensor"
            | "_rebuild_meta_tensor_no_storage"
            | "_rebuild_wrapper_subclass"
            | "_rebuild_device_tensor_from_cpu_tensor"
            | "_rebuild_device_tensor_from_numpy"
            | "_rebuild_xla_tensor"
            | "_rebuild_mtia_tensor",
        ) => Some(Ok(Interp::Dropped(format!(
            "{module}.{name}: tensor kind not extracted"
        )))),
        _ => None,
    }
}

fn int_arg(w: &Walk<'_, '_>, id: Id, what: &str) -> Result<u64, String> {
    match w.vm.value(id) {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Bool(b) => Ok(*b as u64),
        other => Err(format!(
            "{what} is not a non-negative integer: {}",
            kind_of(other)
        )),
    }
}

fn int_tuple(w: &Walk<'_, '_>, id: Id, what: &str) -> Result<Vec<u64>, String> {
    let v = w.vm.value(id);
    let items = match v {
        Value::Tuple(t) | Value::List(t) => t.clone(),
        // `torch.Size((…))` pickles as a REDUCE of torch.Size over a tuple.
        Value::Object(o) => match global_of(w.vm, o.func) {
            Some((m, n)) if m == "torch" && n == "Size" => {
                let inner = w.vm.value(o.args).as_seq().and_then(|s| s.first().copied());
                return match inner {
                    Some(i) => int_tuple(w, i, what),
                    None => Ok(Vec::new()),
                };
            }
            _ => return Err(format!("{what} is not a tuple of integers")),
        },
        _ => return Err(format!("{what} is not a tuple of integers")),
    };
    items.iter().map(|&i| int_arg(w, i, what)).collect()
}

fn kind_of(v: &Value<'_>) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::BigInt(_) | Value::BigText(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) | Value::ByteArray(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Set(_) | Value::FrozenSet(_) => "set",
        Value::Global(_) => "global",
        Value::Object(_) => "object",
        Value::Persistent { .. } => "persistent object",
        Value::Buffer => "buffer",
    }
}

/// The storage a persistent id names.
fn storage(w: &Walk<'_, '_>, id: Id) -> Result<Storage, String> {
    let vm = w.vm;
    let Value::Persistent { pid, .. } = vm.value(id) else {
        return Err(format!(
            "the storage argument is a {}, not a persistent storage id",
            kind_of(vm.value(id))
        ));
    };
    let parts = match vm.value(*pid) {
        Value::Tuple(t) => t.clone(),
        _ => return Err("the persistent id is not a tuple".into()),
    };
    let tag = parts.first().map(|&t| vm.value(t));
    let is_storage = match tag {
        Some(Value::Str(s)) => s == "storage",
        Some(Value::Bytes(b)) => *b == b"storage",
        _ => false,
    };
    if !is_storage || !(parts.len() == 5 || parts.len() == 6) {
        return Err("the persistent id is not ('storage', class, key, location, numel)".into());
    }
    let class = match global_of(vm, parts[1]) {
        Some((_, n)) => n,
        None => return Err("the storage class is not a global".into()),
    };
    let elem = ElemType::from_storage_class(&class)
        .ok_or_else(|| format!("unknown storage class {class}"))?;
    let key = match vm.value(parts[2]) {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Err("the storage key is not a string".into()),
    };
    let numel = int_arg(w, parts[4], "the storage size")?;
    let nbytes = numel
        .checked_mul(elem.size() as u64)
        .ok_or("the storage size overflows")?;
    let (record, swap) = w.storages.storage(&key)?;
    if (record.len() as u64) < nbytes {
        return Err(format!(
            "storage '{key}' declares {nbytes} bytes but its record has {}",
            record.len()
        ));
    }
    let mut region = record.sub(0, nbytes).ok_or("storage bounds")?;
    // Legacy storage views: (view_key, offset, size) in elements of the root storage.
    if parts.len() == 6 {
        if let Some(view) = vm.value(parts[5]).as_seq() {
            if view.len() == 3 {
                let off = int_arg(w, view[1], "the storage view offset")?;
                let size = int_arg(w, view[2], "the storage view size")?;
                let es = elem.size() as u64;
                region = off
                    .checked_mul(es)
                    .zip(size.checked_mul(es))
                    .and_then(|(o, s)| region.sub(o, s))
                    .ok_or_else(|| {
                        format!("storage view ({off}, {size}) outside storage '{key}'")
                    })?;
            }
        }
    }
    Ok(Storage { region, elem, swap })
}

/// `_rebuild_tensor[_v2|_v3]`.
fn dense(
    w: &mut Walk<'_, '_>,
    args: &[Id],
    min_args: usize,
    dtype: Option<Id>,
    meta: Option<Id>,
) -> Result<Interp, String> {
    if args.len() < min_args.min(4) {
        return Err(format!("tensor rebuild with {} arguments", args.len()));
    }
    let st = storage(w, args[0])?;
    let offset = int_arg(w, args[1], "storage_offset")?;
    let shape = int_tuple(w, args[2], "size")?;
    let stride = int_tuple(w, args[3], "stride")?;
    let elem = match dtype {
        Some(d) => {
            let (m, n) = global_of(w.vm, d).ok_or("the dtype argument is not a global")?;
            if m != "torch" {
                return Err(format!("the dtype argument is {m}.{n}, not a torch dtype"));
            }
            ElemType::from_torch_dtype(&n).ok_or_else(|| format!("unknown torch dtype {n}"))?
        }
        None => st.elem.clone(),
    };
    if let Some(m) = meta {
        if let Value::Dict(pairs) = w.vm.value(m) {
            for &(k, v) in pairs {
                let flag = w.vm.value(k).as_str().unwrap_or("?").to_string();
                if w.vm.value(v).as_int().unwrap_or(1) != 0 {
                    return Ok(Interp::Unsupported(format!(
                        "tensor with the '{flag}' bit set (its stored values are not its logical values)"
                    )));
                }
            }
        }
    }
    let source = ByteSource::new(
        st.region,
        elem.size(),
        offset,
        shape.clone(),
        stride,
        st.swap,
    )?;
    Ok(Interp::Array {
        elem,
        shape,
        source,
    })
}

fn quantized(w: &mut Walk<'_, '_>, args: &[Id]) -> Result<Interp, String> {
    let what = match args.first().map(|&a| storage(w, a)) {
        Some(Ok(s)) => match s.elem {
            ElemType::Unsupported { name, .. } => name,
            ElemType::Supported(d) => format!("{d:?}"),
        },
        _ => "quantized".into(),
    };
    Ok(Interp::Unsupported(format!("quantized tensor ({what})")))
}

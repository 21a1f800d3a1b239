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

use super::graph::{global_of, Interp, RebuildError, Walk};
use super::tensor::{ByteSource, ElemType, Region};
use crate::pickle::value::{Id, Value};

/// Where the storages of a torch pickle are: the container's records, by key.
pub trait Storages {
    /// The bytes of storage `key` and whether they must be byte-swapped (big-endian archive).
    fn storage(&self, key: &str) -> Result<(Region, bool), StorageError>;
}

/// Why the bytes of a storage a pickle names cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// A file without storage records (a plain pickle, joblib).
    #[error("storage '{0}' is referenced but this file has no storage records")]
    NoRecords(String),
    /// A key no record of the archive has.
    #[error("the archive has no record {0}")]
    NoRecord(String),
    /// A key none of a legacy file's raw storages has.
    #[error("storage '{0}' is not among the raw storages")]
    NotRaw(String),
    /// torch's reader would not find the record.
    #[error(transparent)]
    Layout(#[from] crate::format::torch::LayoutError),
    /// The record cannot be read.
    #[error(transparent)]
    Member(#[from] super::formats::MemberError),
}

/// A pickle without storages (a plain pickle, joblib): every persistent id is unresolvable.
pub struct NoStorages;

impl Storages for NoStorages {
    fn storage(&self, key: &str) -> Result<(Region, bool), StorageError> {
        Err(StorageError::NoRecords(key.to_string()))
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
) -> Option<Result<Interp, RebuildError>> {
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
                return Some(Err(RebuildError::Arguments {
                    call: name.to_string(),
                    given: 0,
                }));
            };
            Some(w.tensor_value(data))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            if args_v.len() < 3 {
                return Some(Err(RebuildError::Arguments {
                    call: name.to_string(),
                    given: args_v.len(),
                }));
            }
            let Some((m, n)) = global_of(vm, args_v[0]) else {
                return Some(Err(RebuildError::Malformed(
                    "_rebuild_from_type_v2: the rebuild function is not a global",
                )));
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

fn int_arg(w: &Walk<'_, '_>, id: Id, what: &'static str) -> Result<u64, RebuildError> {
    match w.vm.value(id) {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Bool(b) => Ok(*b as u64),
        other => Err(RebuildError::NotAnInteger {
            what,
            found: kind_of(other),
        }),
    }
}

fn int_tuple(w: &Walk<'_, '_>, id: Id, what: &'static str) -> Result<Vec<u64>, RebuildError> {
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
            _ => return Err(RebuildError::NotIntegers(what)),
        },
        _ => return Err(RebuildError::NotIntegers(what)),
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
fn storage(w: &Walk<'_, '_>, id: Id) -> Result<Storage, RebuildError> {
    let vm = w.vm;
    let Value::Persistent { pid, .. } = vm.value(id) else {
        return Err(RebuildError::NotAStorage(kind_of(vm.value(id))));
    };
    let parts = match vm.value(*pid) {
        Value::Tuple(t) => t.clone(),
        _ => return Err(RebuildError::Malformed("the persistent id is not a tuple")),
    };
    let tag = parts.first().map(|&t| vm.value(t));
    let is_storage = match tag {
        Some(Value::Str(s)) => s == "storage",
        Some(Value::Bytes(b)) => *b == b"storage",
        _ => false,
    };
    if !is_storage || !(parts.len() == 5 || parts.len() == 6) {
        return Err(RebuildError::Malformed(
            "the persistent id is not ('storage', class, key, location, numel)",
        ));
    }
    let class = match global_of(vm, parts[1]) {
        Some((_, n)) => n,
        None => return Err(RebuildError::Malformed("the storage class is not a global")),
    };
    let elem = ElemType::from_storage_class(&class)
        .ok_or_else(|| RebuildError::StorageClass(class.clone()))?;
    let key = match vm.value(parts[2]) {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Err(RebuildError::Malformed("the storage key is not a string")),
    };
    let numel = int_arg(w, parts[4], "the storage size")?;
    let nbytes = numel
        .checked_mul(elem.size() as u64)
        .ok_or(RebuildError::Overflow("the storage size"))?;
    let (record, swap) = w.storages.storage(&key)?;
    let short = |has: usize| RebuildError::ShortStorage {
        key: key.clone(),
        declared: nbytes,
        has,
    };
    let mut region = record.sub(0, nbytes).ok_or_else(|| short(record.len()))?;
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
                    .ok_or_else(|| RebuildError::ViewOutside {
                        key: key.clone(),
                        offset: off,
                        size,
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
) -> Result<Interp, RebuildError> {
    if args.len() < min_args.min(4) {
        return Err(RebuildError::Arguments {
            call: "tensor rebuild".into(),
            given: args.len(),
        });
    }
    let st = storage(w, args[0])?;
    let offset = int_arg(w, args[1], "storage_offset")?;
    let shape = int_tuple(w, args[2], "size")?;
    let stride = int_tuple(w, args[3], "stride")?;
    let elem = match dtype {
        Some(d) => {
            let (m, n) = global_of(w.vm, d).ok_or(RebuildError::Malformed(
                "the dtype argument is not a global",
            ))?;
            if m != "torch" {
                return Err(RebuildError::NotTorchDtype(format!("{m}.{n}")));
            }
            ElemType::from_torch_dtype(&n).ok_or_else(|| RebuildError::TorchDtype(n.clone()))?
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

fn quantized(w: &mut Walk<'_, '_>, args: &[Id]) -> Result<Interp, RebuildError> {
    let what = match args.first().map(|&a| storage(w, a)) {
        Some(Ok(s)) => match s.elem {
            ElemType::Unsupported { name, .. } => name,
            ElemType::Supported(d) => format!("{d:?}"),
        },
        _ => "quantized".into(),
    };
    Ok(Interp::Unsupported(format!("quantized tensor ({what})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::graph::{Leaf, Walk};
    use crate::extract::numpy::InlineArrays;
    use crate::extract::tensor::Backing;
    use crate::scan::Scanner;
    use std::collections::HashMap;

    /// Storages from a map; `swap` for a big-endian archive.
    struct Fake(HashMap<String, Vec<u8>>, bool);
    impl Storages for Fake {
        fn storage(&self, key: &str) -> Result<(Region, bool), StorageError> {
            let b = self
                .0
                .get(key)
                .ok_or_else(|| StorageError::NoRecord(format!("data/{key}")))?;
            Ok((Backing::owned(b.clone()).whole(), self.1))
        }
    }

    fn s(out: &mut Vec<u8>, t: &str) {
        out.push(b'X');
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    fn k(out: &mut Vec<u8>, v: u8) {
        out.extend_from_slice(&[b'K', v]);
    }
    fn ints(out: &mut Vec<u8>, v: &[u8]) {
        out.push(b'(');
        for &x in v {
            k(out, x);
        }
        out.push(b't');
    }

    /// `{'w': _rebuild_tensor_v2(storage(class, '0', numel), offset, size, stride, False, {})}`
    fn data_pkl(class: &str, numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}'];
        s(&mut p, "w");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        s(&mut p, "storage");
        p.extend_from_slice(format!("ctorch\n{class}\n").as_bytes());
        s(&mut p, "0");
        s(&mut p, "cpu");
        k(&mut p, numel);
        p.extend_from_slice(b"tQ");
        k(&mut p, offset);
        ints(&mut p, size);
        ints(&mut p, stride);
        p.extend_from_slice(b"\x89}tRs.");
        p
    }

    fn leaves(pkl: &[u8], st: &Fake) -> Result<Vec<Leaf>, RebuildError> {
        let scanner = Scanner::default();
        let (vm, run) = scanner.run_one(pkl, &mut crate::pickle::vm::NoHooks);
        assert!(run.error.is_none(), "{:?}", run.error);
        let inline = InlineArrays::new();
        let mut w = Walk::new(&vm, Backing::owned(pkl.to_vec()), st, &inline, "tensor");
        w.walk(run.result.unwrap(), "")?;
        Ok(w.leaves)
    }

    fn bytes_of(l: &Leaf) -> (Vec<u64>, Vec<u8>) {
        let Leaf::Tensor { shape, source, .. } = l else {
            panic!("not a tensor: {l:?}")
        };
        let mut out = Vec::new();
        source
            .for_each_chunk(3, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        (shape.clone(), out)
    }

    #[test]
    fn strided_view_with_offset() {
        // int16 storage 0..6 as a 2x3 matrix; the view w[:, 1:] has offset 1, stride (3, 1).
        let storage: Vec<u8> = (0u16..6).flat_map(|v| v.to_le_bytes()).collect();
        let st = Fake(HashMap::from([("0".to_string(), storage)]), false);
        let l = leaves(&data_pkl("ShortStorage", 6, 1, &[2, 2], &[3, 1]), &st).unwrap();
        let (shape, b) = bytes_of(&l[0]);
        assert_eq!(shape, [2, 2]);
        assert_eq!(b, [1, 0, 2, 0, 4, 0, 5, 0]);
    }

    #[test]
    fn big_endian_archive_is_swapped() {
        let storage: Vec<u8> = [1u32, 2].iter().flat_map(|v| v.to_be_bytes()).collect();
        let st = Fake(HashMap::from([("0".to_string(), storage)]), true);
        let l = leaves(&data_pkl("IntStorage", 2, 0, &[2], &[1]), &st).unwrap();
        assert_eq!(bytes_of(&l[0]).1, [1, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn stride_outside_storage_is_an_error() {
        let st = Fake(HashMap::from([("0".to_string(), vec![0u8; 16])]), false);
        let e = leaves(&data_pkl("FloatStorage", 4, 0, &[2, 2], &[3, 1]), &st)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'w'") && e.contains("storage has only 16 bytes"),
            "{e}"
        );
        // The record is shorter than the declared numel.
        let e = leaves(&data_pkl("FloatStorage", 8, 0, &[2], &[1]), &st).unwrap_err();
        let RebuildError::At { name, source } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "w");
        assert!(
            matches!(
                **source,
                RebuildError::ShortStorage {
                    declared: 32,
                    has: 16,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("declares 32 bytes"), "{e}");
        // A missing record.
        let none = Fake(HashMap::new(), false);
        assert!(leaves(&data_pkl("FloatStorage", 4, 0, &[4], &[1]), &none).is_err());
    }

    #[test]
    fn complex_storage_is_unsupported() {
        let st = Fake(HashMap::from([("0".to_string(), vec![0u8; 16])]), false);
        let l = leaves(&data_pkl("ComplexFloatStorage", 2, 0, &[2], &[1]), &st).unwrap();
        assert!(
            matches!(&l[0], Leaf::Unsupported { name, what } if name == "w" && what.contains("complex64"))
        );
    }
}

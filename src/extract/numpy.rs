//! Numpy arrays in pickles and joblib files, interpreted from the value graph.
//!
//! * `numpy._core.multiarray._reconstruct(ndarray, (0,), b'b')` + BUILD state
//!   `([version,] shape, dtype, is_fortran, rawdata)` (formats.md §4.3); `numpy.core.*` is the same.
//! * `numpy._core.numeric._frombuffer(buf, dtype, shape, order[, axis_order])` (protocol 5).
//! * joblib `NumpyArrayWrapper` + BUILD state, whose bytes follow the BUILD opcode in the file
//!   (§3.2): [`JoblibArrays`] is the machine hook that finds them while the pickle runs.
//! * `numpy.dtype(typestr, False, True)` + BUILD state `(version, byteorder, …)`.
//!
//! Non-numeric arrays (objects, strings, dates, records) are dropped like any non-tensor value;
//! complex ones are reported as unsupported.

use super::graph::{global_of, Interp, RebuildError, RebuildError::Malformed, Walk};
use super::tensor::{c_strides, f_strides, numel, Backing, ByteSource, Region};
use crate::format::joblib::{self, dict_get, Inline};
pub use crate::format::numpy::NpDtype;
use crate::pickle::value::{Id, Value};
use crate::pickle::vm::{AfterBuild, Hooks, Vm};
use std::borrow::Cow;
use std::collections::HashMap;

/// The numpy dtype object `id`, as the scan reads it.
fn dtype_of(vm: &Vm<'_>, id: Id) -> Result<NpDtype, RebuildError> {
    Ok(joblib::pickled_dtype(vm, id)?.dtype)
}

/// Joblib arrays found while the pickle ran: wrapper object → its raw bytes in the stream.
pub type InlineArrays = HashMap<Id, Region>;

/// The machine hook that finds joblib's inline array bytes: after the BUILD of a
/// `NumpyArrayWrapper`, skip (and remember) the padding and the array bytes that follow.
pub struct JoblibArrays {
    data: Region,
    /// Where each wrapper's bytes are.
    pub found: InlineArrays,
}

impl JoblibArrays {
    /// A hook over the stream `data` (run from its start with base 0: the machine's offsets
    /// index it).
    pub fn new(data: Region) -> Self {
        JoblibArrays {
            data,
            found: HashMap::new(),
        }
    }
}

fn is_wrapper(module: &str, name: &str) -> bool {
    name == "NumpyArrayWrapper"
        && (module == "joblib.numpy_pickle" || module.ends_with(".joblib.numpy_pickle"))
}

fn ints(vm: &Vm<'_>, id: Id) -> Option<Vec<u64>> {
    vm.value(id)
        .as_seq()?
        .iter()
        .map(|&i| vm.value(i).as_int().filter(|&v| v >= 0).map(|v| v as u64))
        .collect()
}

impl Hooks for JoblibArrays {
    fn after_build(&mut self, vm: &Vm<'_>, target: Id) -> Result<AfterBuild, String> {
        // The scan's reading of the stream: both step over exactly the same bytes.
        match joblib::inline_array(vm, target, self.data.bytes()).map_err(|e| e.to_string())? {
            Inline::Nothing | Inline::CompanionFile(_) => Ok(AfterBuild::Continue),
            Inline::NestedPickle => Ok(AfterBuild::NestedPickle),
            Inline::Bytes { at, padding, len } => {
                let region = self
                    .data
                    .sub(at + padding, len)
                    .ok_or_else(|| format!("joblib array of {len} bytes runs past the end"))?;
                self.found.insert(target, region);
                Ok(AfterBuild::Skip(padding + len))
            }
        }
    }
}

/// Raw bytes of a bytes-like value: `bytes`, `bytearray`, or protocol 2's
/// `_codecs.encode(text, 'latin1')`.
fn raw_bytes(w: &Walk<'_, '_>, id: Id) -> Result<Option<Region>, RebuildError> {
    let vm = w.vm;
    match vm.bytes_of(id) {
        Some(Ok(Cow::Borrowed(b))) => {
            return Ok(Some(
                w.pickle
                    .region_of(b)
                    .unwrap_or_else(|| Backing::owned(b.to_vec()).whole()),
            ))
        }
        Some(Ok(Cow::Owned(v))) => return Ok(Some(Backing::owned(v).whole())),
        Some(Err(e)) => return Err(RebuildError::Bytes(e)),
        None => {}
    }
    match vm.value(id) {
        Value::Object(o) => match global_of(vm, o.func) {
            // `bytes()`: protocol 2's empty bytes.
            Some((m, n))
                if (m == "builtins" || m == "__builtin__")
                    && n == "bytes"
                    && vm.value(o.args).as_seq().is_some_and(|a| a.is_empty()) =>
            {
                Ok(Some(Backing::owned(Vec::new()).whole()))
            }
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

fn make(
    dtype: &NpDtype,
    shape: Vec<u64>,
    strides: Vec<u64>,
    data: Region,
) -> Result<Interp, RebuildError> {
    let Some(elem) = dtype.elem() else {
        return Ok(Interp::Dropped(format!(
            "numpy array of dtype {} (not numeric)",
            dtype.text
        )));
    };
    let need = numel(&shape)
        .and_then(|n| n.checked_mul(dtype.itemsize))
        .ok_or(RebuildError::Overflow("array size"))?;
    if need != data.len() as u64 {
        return Err(RebuildError::ArrayBytes {
            shape,
            dtype: dtype.text.clone(),
            need,
            has: data.len(),
        });
    }
    let source = ByteSource::new(data, elem.size(), 0, shape.clone(), strides, dtype.swap())?;
    Ok(Interp::Array {
        elem,
        shape,
        source,
    })
}

/// Interpret `id` (an object made by `module.name`) if it is a numpy or joblib array.
pub(crate) fn array(
    w: &mut Walk<'_, '_>,
    module: &str,
    name: &str,
    id: Id,
) -> Option<Result<Interp, RebuildError>> {
    let vm = w.vm;
    let Value::Object(o) = vm.value(id) else {
        return None;
    };
    match (module, name) {
        ("numpy._core.multiarray", "_reconstruct") => Some(reconstruct(w, id)),
        ("numpy._core.numeric", "_frombuffer") => Some(frombuffer(w, o.args)),
        ("numpy._core.multiarray", "scalar") => {
            Some(Ok(Interp::Dropped("numpy scalar (not an array)".into())))
        }
        (m, n) if is_wrapper(m, n) => Some(wrapper(w, id)),
        _ => None,
    }
}

fn reconstruct(w: &mut Walk<'_, '_>, id: Id) -> Result<Interp, RebuildError> {
    let vm = w.vm;
    let Value::Object(o) = vm.value(id) else {
        unreachable!("checked by the caller")
    };
    let args = vm.value(o.args).as_seq().unwrap_or(&[]);
    match args.first().and_then(|&c| global_of(vm, c)) {
        Some((m, n)) if m == "numpy" && n == "ndarray" => {}
        Some((m, n)) if n == "memmap" && m.starts_with("numpy") => {}
        Some((m, n)) => {
            return Ok(Interp::Dropped(format!(
                "array of the ndarray subclass {m}.{n}"
            )));
        }
        None => return Err(Malformed("_reconstruct without an array class")),
    }
    let state = o
        .state
        .ok_or(Malformed("numpy array without state (no BUILD)"))?;
    let st = vm
        .value(state)
        .as_seq()
        .ok_or(Malformed("numpy array state is not a tuple"))?;
    let st: &[Id] = match st.len() {
        5 => &st[1..],
        4 => st,
        n => {
            return Err(RebuildError::Items {
                what: "numpy array state",
                given: n,
            })
        }
    };
    let shape = ints(vm, st[0]).ok_or(RebuildError::NotIntegers("numpy array shape"))?;
    let dtype = dtype_of(vm, st[1])?;
    let fortran = vm.value(st[2]).as_int().unwrap_or(0) != 0;
    let Some(data) = raw_bytes(w, st[3])? else {
        return Ok(Interp::Dropped(format!(
            "numpy array of dtype {} (objects)",
            dtype.text
        )));
    };
    let strides = if fortran {
        f_strides(&shape)
    } else {
        c_strides(&shape)
    };
    make(&dtype, shape, strides, data)
}

fn frombuffer(w: &mut Walk<'_, '_>, args: Id) -> Result<Interp, RebuildError> {
    let vm = w.vm;
    let a = vm.value(args).as_seq().unwrap_or(&[]).to_vec();
    if a.len() < 4 {
        return Err(RebuildError::Arguments {
            call: "_frombuffer".into(),
            given: a.len(),
        });
    }
    let data =
        raw_bytes(w, a[0])?.ok_or(Malformed("_frombuffer of something that is not bytes"))?;
    let dtype = dtype_of(vm, a[1])?;
    let shape = ints(vm, a[2]).ok_or(RebuildError::NotIntegers("_frombuffer shape"))?;
    let order = vm.value(a[3]).as_str().unwrap_or("C").to_string();
    let (shape, strides) = match order.as_str() {
        "F" => {
            let s = f_strides(&shape);
            (shape, s)
        }
        "K" if a.len() > 4 && !matches!(vm.value(a[4]), Value::None) => {
            // reshape(shape, 'C').transpose(axis_order)
            let axes = ints(vm, a[4]).ok_or(RebuildError::NotIntegers("_frombuffer axis order"))?;
            let base = c_strides(&shape);
            if axes.len() != shape.len() {
                return Err(Malformed("_frombuffer axis order does not match the shape"));
            }
            let mut new_shape = Vec::with_capacity(axes.len());
            let mut new_strides = Vec::with_capacity(axes.len());
            let mut seen = vec![false; axes.len()];
            for &ax in &axes {
                let ax = ax as usize;
                if ax >= shape.len() || seen[ax] {
                    return Err(Malformed("_frombuffer axis order is not a permutation"));
                }
                seen[ax] = true;
                new_shape.push(shape[ax]);
                new_strides.push(base[ax]);
            }
            (new_shape, new_strides)
        }
        _ => {
            let s = c_strides(&shape);
            (shape, s)
        }
    };
    make(&dtype, shape, strides, data)
}

fn wrapper(w: &mut Walk<'_, '_>, id: Id) -> Result<Interp, RebuildError> {
    let vm = w.vm;
    let Value::Object(o) = vm.value(id) else {
        unreachable!("checked by the caller")
    };
    let state = o
        .state
        .ok_or(Malformed("NumpyArrayWrapper without state"))?;
    let dtype = dtype_of(
        vm,
        dict_get(vm, state, "dtype").ok_or(Malformed("NumpyArrayWrapper without dtype"))?,
    )?;
    if let Some(sub) = dict_get(vm, state, "subclass").and_then(|s| global_of(vm, s)) {
        if !(sub.0 == "numpy" && sub.1 == "ndarray") && sub.1 != "memmap" {
            return Ok(Interp::Dropped(format!(
                "array of the ndarray subclass {}.{}",
                sub.0, sub.1
            )));
        }
    }
    let shape = dict_get(vm, state, "shape")
        .and_then(|s| ints(vm, s))
        .ok_or(Malformed("NumpyArrayWrapper without a shape"))?;
    let order = dict_get(vm, state, "order")
        .and_then(|s| vm.value(s).as_str())
        .unwrap_or("C");
    let Some(region) = w.inline.get(&id).cloned() else {
        return Ok(Interp::Dropped(format!(
            "joblib array of dtype {} whose bytes were not found inline",
            dtype.text
        )));
    };
    let strides = if order == "F" {
        f_strides(&shape)
    } else {
        c_strides(&shape)
    };
    make(&dtype, shape, strides, region)
}

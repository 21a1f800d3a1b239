//! joblib's inline arrays: after the BUILD of a `NumpyArrayWrapper`, `joblib.load` reads the
//! array bytes straight from the stream (optionally after alignment padding), or a whole nested
//! pickle for object arrays, then resumes unpickling. These hooks make the symbolic machine do the
//! same, so the scan continues exactly where joblib's does.

use crate::format::numpy::NpDtype;
use crate::pickle::value::{CallKind, Id, Value};
use crate::pickle::vm::{AfterBuild, EventKind, Hooks, Vm};

/// Hooks for a pickle stream that may be a joblib dump.
pub struct JoblibHooks<'d> {
    data: &'d [u8],
    /// Inline arrays skipped.
    pub arrays: usize,
    /// Nested object-array pickles entered.
    pub object_arrays: usize,
    /// Arrays stored in companion files (joblib < 0.10): the file names, not scanned here.
    pub companion_files: Vec<(u64, String)>,
}

impl<'d> JoblibHooks<'d> {
    /// Hooks for the pickle bytes `data`; the machine must be run with offsets relative to the
    /// start of `data` (the `base` of [`Vm::run`] is the position in `data`).
    pub fn new(data: &'d [u8]) -> Self {
        JoblibHooks {
            data,
            arrays: 0,
            object_arrays: 0,
            companion_files: Vec::new(),
        }
    }
}

/// The class name a BUILD target was created from, when it is an instance of a global class.
fn instance_class<'v>(vm: &'v Vm<'_>, target: Id) -> Option<(&'v str, &'v str, Option<Id>)> {
    let Value::Object(o) = vm.value(target) else {
        return None;
    };
    if !matches!(
        o.kind,
        CallKind::NewObj | CallKind::NewObjEx | CallKind::Reduce | CallKind::Obj | CallKind::Inst
    ) {
        return None;
    }
    let g = vm.as_global(o.func)?;
    Some((g.module.as_str(), g.name.as_str(), o.state))
}

fn is_joblib_module(module: &str) -> bool {
    module == "joblib.numpy_pickle" || module.ends_with(".joblib.numpy_pickle")
}

/// Look a key up in a dict value.
pub fn dict_get(vm: &Vm<'_>, dict: Id, key: &str) -> Option<Id> {
    match vm.value(dict) {
        Value::Dict(pairs) => pairs
            .iter()
            .rev()
            .find(|(k, _)| vm.value(*k).as_str() == Some(key))
            .map(|(_, v)| *v),
        _ => None,
    }
}

/// A pickled `numpy.dtype(typestr, align, copy)` with its BUILD state `(version, byteorder,
/// subarray, names, fields, elsize, alignment, flags)`, read as numpy's `__setstate__` reads it:
/// the one reading of it, for the scan (joblib's inline arrays) and extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickledDtype {
    /// The type string, with the state's byte order; kind `V` when the state names fields (a
    /// structured dtype).
    pub dtype: NpDtype,
    /// Item size from the state, when it gives a positive one.
    pub elsize: Option<u64>,
    /// The state's flags say the dtype holds objects (`NPY_ITEM_REFCOUNT`).
    pub object_flag: bool,
}

impl PickledDtype {
    /// Bytes per item.
    pub fn itemsize(&self) -> u64 {
        self.elsize.unwrap_or(self.dtype.itemsize)
    }

    /// Whether the array holds Python objects (its data are a nested pickle).
    pub fn has_object(&self) -> bool {
        self.dtype.has_object() || self.object_flag
    }
}

/// Why a joblib array or its dtype cannot be read as `joblib.load` reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoblibError {
    /// The dtype is not a `numpy.dtype` object, or not one numpy knows.
    #[error("{0}")]
    Dtype(&'static str),
    /// The dtype object is made by another callable.
    #[error("the dtype is created by {0}")]
    DtypeCreatedBy(String),
    /// A type string numpy does not know.
    #[error("unknown dtype '{0}'")]
    UnknownDtype(String),
    /// The wrapper's state is not what joblib writes.
    #[error("{0}")]
    Wrapper(&'static str),
}

/// Read the pickled `numpy.dtype` object `id`.
pub fn pickled_dtype(vm: &Vm<'_>, id: Id) -> Result<PickledDtype, JoblibError> {
    use JoblibError::Dtype;
    let Value::Object(o) = vm.value(id) else {
        return Err(Dtype("the dtype is not a numpy.dtype object"));
    };
    let g = vm
        .as_global(o.func)
        .ok_or(Dtype("the dtype is not created by numpy.dtype"))?;
    if g.name != "dtype" || !g.module.starts_with("numpy") {
        return Err(JoblibError::DtypeCreatedBy(g.qualified()));
    }
    let code = vm
        .value(o.args)
        .as_seq()
        .and_then(|a| a.first())
        .and_then(|&a| vm.value(a).as_str())
        .ok_or(Dtype("numpy.dtype without a type string"))?;
    let mut dtype =
        NpDtype::parse(code).ok_or_else(|| JoblibError::UnknownDtype(code.to_string()))?;
    let state = o.state.and_then(|s| vm.value(s).as_seq()).unwrap_or(&[]);
    let item = |i: usize| state.get(i).map(|&e| vm.value(e));
    if let Some(order) = item(1).and_then(|v| v.as_str()) {
        dtype.big_endian = order == ">";
        dtype.text = format!("{order}{code}");
    }
    // Structured dtypes carry field names: not a plain numeric array.
    if item(3).is_some_and(|v| !matches!(v, Value::None)) {
        dtype.kind = 'V';
    }
    let elsize = item(5)
        .and_then(|v| v.as_int())
        .filter(|&e| e > 0)
        .map(|e| e as u64);
    let object_flag = item(7).and_then(|v| v.as_int()).unwrap_or(0) & 1 != 0;
    Ok(PickledDtype {
        dtype,
        elsize,
        object_flag,
    })
}

/// What `joblib.load` reads after the BUILD of a wrapper object, before it resumes unpickling
/// (`NumpyArrayWrapper.read_array` in joblib/numpy_pickle.py). The one reading of it: the scan
/// steps over these bytes, extraction takes the array from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Not a joblib array wrapper: unpickling goes on right after the BUILD.
    Nothing,
    /// An array stored in a companion file (joblib < 0.10 `NDArrayWrapper`/`ZNDArrayWrapper`):
    /// the file name; nothing inline.
    CompanionFile(String),
    /// An array that holds Python objects: a whole nested pickle follows.
    NestedPickle,
    /// Raw array bytes. `at` is the offset right after the BUILD opcode; `padding` bytes (the
    /// padding-length byte and the padding, joblib ≥ 1.2 when the dump could `tell()`) come
    /// first, then the array's `len` bytes. Either may run past the end of the stream.
    Bytes {
        /// Offset right after the BUILD opcode.
        at: u64,
        /// Bytes before the array: none, or the length byte and that many padding bytes.
        padding: u64,
        /// The array's size in bytes.
        len: u64,
    },
}

impl Inline {
    /// Bytes to step over after the BUILD opcode.
    pub fn skip(&self) -> u64 {
        match self {
            Inline::Bytes { padding, len, .. } => padding + len,
            _ => 0,
        }
    }
}

/// What follows the BUILD of `target` in `data` (the pickle bytes, indexed by the machine's
/// offsets), called right after that BUILD.
pub fn inline_array(vm: &Vm<'_>, target: Id, data: &[u8]) -> Result<Inline, JoblibError> {
    use JoblibError::Wrapper;
    let Some((module, name, state)) = instance_class(vm, target) else {
        return Ok(Inline::Nothing);
    };
    if !is_joblib_module(module) {
        return Ok(Inline::Nothing);
    }
    let Some(state) = state else {
        return Ok(Inline::Nothing);
    };
    match name {
        "NumpyArrayWrapper" => {}
        "NDArrayWrapper" | "ZNDArrayWrapper" => {
            let file = dict_get(vm, state, "filename")
                .and_then(|f| vm.value(f).as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            return Ok(Inline::CompanionFile(file));
        }
        _ => return Ok(Inline::Nothing),
    }
    // The BUILD event was recorded just before this hook: the array follows its opcode.
    let build = vm
        .events()
        .last()
        .filter(|e| e.kind == EventKind::Build)
        .ok_or(Wrapper("NumpyArrayWrapper BUILD without an event"))?;
    let at = build.offset + 1;
    let dtype = dict_get(vm, state, "dtype").ok_or(Wrapper("NumpyArrayWrapper without a dtype"))?;
    let dtype = pickled_dtype(vm, dtype)?;
    let (itemsize, has_object) = (dtype.itemsize(), dtype.has_object());
    if has_object {
        return Ok(Inline::NestedPickle);
    }
    let shape = dict_get(vm, state, "shape").ok_or(Wrapper("NumpyArrayWrapper without a shape"))?;
    let dims = vm
        .value(shape)
        .as_seq()
        .ok_or(Wrapper("NumpyArrayWrapper shape is not a tuple"))?;
    let mut count: u64 = 1;
    for &d in dims {
        let d = vm.value(d).as_int().filter(|&d| d >= 0).ok_or(Wrapper(
            "NumpyArrayWrapper shape holds a non-integer or negative size",
        ))?;
        count = count
            .checked_mul(d as u64)
            .ok_or(Wrapper("NumpyArrayWrapper shape overflows"))?;
    }
    let len = count
        .checked_mul(itemsize)
        .ok_or(Wrapper("NumpyArrayWrapper size overflows"))?;
    // joblib ≥ 1.2: one padding-length byte, then that many padding bytes, unless the alignment
    // is None (written when the output could not `tell()`) or absent (older joblib).
    let padding = match dict_get(vm, state, "numpy_array_alignment_bytes") {
        Some(a) if !matches!(vm.value(a), Value::None) => {
            match usize::try_from(at).ok().and_then(|i| data.get(i)) {
                Some(&p) => 1 + u64::from(p),
                // The stream ends before the padding byte: skipping past the end reports the
                // truncation, with where the array would end at the least.
                None => 1,
            }
        }
        _ => 0,
    };
    Ok(Inline::Bytes { at, padding, len })
}

impl Hooks for JoblibHooks<'_> {
    fn after_build(&mut self, vm: &Vm<'_>, target: Id) -> Result<AfterBuild, String> {
        match inline_array(vm, target, self.data).map_err(|e| e.to_string())? {
            Inline::Nothing => Ok(AfterBuild::Continue),
            Inline::CompanionFile(file) => {
                let at = vm.events().last().map(|e| e.offset).unwrap_or(0);
                self.companion_files.push((at, file));
                Ok(AfterBuild::Continue)
            }
            Inline::NestedPickle => {
                self.object_arrays += 1;
                Ok(AfterBuild::NestedPickle)
            }
            bytes @ Inline::Bytes { .. } => {
                self.arrays += 1;
                Ok(AfterBuild::Skip(bytes.skip()))
            }
        }
    }
}

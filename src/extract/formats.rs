//! From a file's bytes to named leaves: which container it is (recognised by content, with the
//! container readers of [`crate::container`]), where its pickles and storages are, and the walk
//! over each pickle.
//!
//! * torch zip: `<prefix>/data.pkl` with storages in `<prefix>/data/<key>` and the `byteorder`
//!   record; TorchScript also `constants.pkl` (storages in `constants/`), named `constants.*`.
//! * `.npz`: every `*.npy` member, named by the member name without `.npy`.
//! * torch legacy: five pickles then the raw storages in the order of the key list.
//! * `.npy`: one array named `array`.
//! * ONNX: the main graph's initializers ([`super::onnx`]); legacy GGML: its F32/F16 tensors
//!   ([`super::ggml`]); HDF5 (Keras weights, h5py files): its numeric datasets
//!   ([`super::hdf5`]), also as the `model.weights.h5` member of a Keras `.keras` zip.
//! * joblib (compressed or not) and plain pickles: the first pickle stream, joblib's inline arrays
//!   included.
//!
//! Stored zip members and raw storages are ranges of the input (copied file to file when
//! written); deflated members and compressed streams are inflated once, within the budget of
//! [`crate::Limits::max_decompressed`].

use super::graph::{join, Leaf, Walk};
use super::numpy::{InlineArrays, JoblibArrays, NpDtype};
use super::tensor::{c_strides, f_strides, Backing, ByteSource, DType, Region};
use super::torch::{NoStorages, StorageError, Storages};
use super::ExtractError;
use crate::container;
use crate::format::compress;
use crate::format::detect::Recognised;
use crate::format::detect::{detect, Kind};
use crate::format::npy;
use crate::format::torch::ZipLayout;
use crate::format::zip::{self, Archive, Entry, ZipError, STORED};
use crate::format::Format;
use crate::pickle::vm::{NoHooks, Vm};
use crate::scan::Scanner;
use std::collections::HashMap;
use std::path::Path;

fn fmt_err(e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Format(e.to_string())
}

/// The leaves of a file and what it was read as.
pub(crate) fn leaves(
    scanner: &Scanner,
    path: &Path,
    backing: &Backing,
) -> Result<(Format, Vec<Leaf>), ExtractError> {
    let data = backing.bytes();
    let name = path.file_name().and_then(|n| n.to_str());
    match detect(data, name) {
        Kind::Zip => zip_leaves(scanner, backing),
        Kind::Npy => Ok((Format::Npy, npy_leaves(&backing.whole(), "array")?)),
        Kind::TorchLegacy => Ok((Format::TorchLegacy, legacy_leaves(scanner, backing)?)),
        Kind::Tar => tar_leaves(scanner, backing),
        Kind::Compressed(codec) => {
            let out = compress::decompress(codec, data, scanner.limits.max_decompressed);
            if let Some(e) = out.error {
                return Err(fmt_err(format!(
                    "cannot decompress the {} stream: {e}",
                    codec.name()
                )));
            }
            let inner = Backing::owned(out.data);
            let leaves = pickle_leaves(scanner, &inner.whole(), &NoStorages, "tensor")?;
            Ok((Format::JoblibCompressed(codec), leaves))
        }
        Kind::Pickle => {
            let leaves = pickle_leaves(scanner, &backing.whole(), &NoStorages, "tensor")?;
            Ok((Format::Pickle, leaves))
        }
        Kind::Safetensors => Ok((Format::Safetensors, safetensors_leaves(backing)?)),
        Kind::Format(Recognised::Onnx) => Ok((Format::Onnx, super::onnx::leaves(path, backing)?)),
        Kind::Format(Recognised::Ggml(flavour)) => {
            Ok((Format::Ggml(flavour), super::ggml::leaves(backing)?))
        }
        Kind::Format(Recognised::Hdf5) => Ok((
            Format::Hdf5,
            super::hdf5::leaves(&backing.whole(), &scanner.limits)?,
        )),
        Kind::Gguf => Err(fmt_err(format!(
            "the file is already a {} tensor file: nothing to extract",
            Format::Gguf
        ))),
        other => Err(fmt_err(format!(
            "cannot extract tensors from {} content",
            other.format()
        ))),
    }
}

/// The dtype a safetensors dtype name stands for, when extraction can write it.
fn safetensors_dtype(name: &str) -> Option<DType> {
    name.parse().ok()
}

/// A safetensors file: validated as the reference reader does, then every tensor is a range
/// of the input (in data order).
fn safetensors_leaves(backing: &Backing) -> Result<Vec<Leaf>, ExtractError> {
    let header = crate::format::safetensors::read(backing.bytes())
        .map_err(|e| fmt_err(format!("invalid safetensors file: {e}")))?;
    let whole = backing.whole();
    // Data order; tensors of no bytes that share an offset by name.
    let mut tensors = header.tensors;
    tensors.sort_by(|a, b| (a.begin, &a.name).cmp(&(b.begin, &b.name)));
    let mut leaves = Vec::with_capacity(tensors.len());
    for t in tensors {
        let (name, dtype, shape) = (t.name, t.dtype, t.shape);
        let Some(elem) = safetensors_dtype(&dtype) else {
            leaves.push(Leaf::Unsupported {
                name,
                what: format!("{dtype} tensor"),
            });
            continue;
        };
        let region = whole
            .sub(header.data_start + t.begin, t.end - t.begin)
            .ok_or_else(|| fmt_err(format!("safetensors tensor '{name}' lies outside the file")))?;
        let source = ByteSource::contiguous(region, elem.size(), shape.clone())
            .map_err(|m| fmt_err(format!("safetensors tensor '{name}': {m}")))?;
        leaves.push(Leaf::Tensor {
            name,
            elem,
            shape,
            source,
        });
    }
    Ok(leaves)
}

/// Run one pickle stream (with joblib's inline arrays) and walk what it returns.
pub(crate) fn pickle_leaves(
    scanner: &Scanner,
    data: &Region,
    storages: &dyn Storages,
    root_name: &str,
) -> Result<Vec<Leaf>, ExtractError> {
    let bytes = data.bytes();
    let mut hook = JoblibArrays::new(data.clone());
    let (vm, run) = scanner.run_one(bytes, &mut hook);
    if let Some(e) = &run.error {
        return Err(fmt_err(format!("the pickle cannot be read: {e}")));
    }
    let root = run
        .result
        .ok_or_else(|| fmt_err("the pickle returned nothing"))?;
    walk(&vm, data, storages, &hook.found, root, root_name)
}

fn walk(
    vm: &Vm<'_>,
    data: &Region,
    storages: &dyn Storages,
    inline: &InlineArrays,
    root: crate::pickle::value::Id,
    root_name: &str,
) -> Result<Vec<Leaf>, ExtractError> {
    let mut walk = Walk::new(vm, data.backing().clone(), storages, inline, root_name);
    walk.walk(root, "")?;
    Ok(walk.leaves)
}

/// Why a zip member's bytes cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// Its local header would start past the end of the file.
    #[error("member {0}: local header past the end of the file")]
    HeaderPastEnd(String),
    /// No local header signature where the directory says.
    #[error("member {name}: no local header at offset {at}")]
    NoHeader {
        /// The member.
        name: String,
        /// The offset the directory gives.
        at: u64,
    },
    /// Stored data running past the end of the file.
    #[error("member {0}: its data run past the end of the file")]
    DataPastEnd(String),
    /// The zip reader's refusal (inflating, encryption, budget).
    #[error("member {name}: {source}")]
    Read {
        /// The member.
        name: String,
        /// Why.
        source: ZipError,
    },
}

/// A zip member's uncompressed bytes: a range of the input when stored, inflated otherwise.
fn member(
    scanner: &Scanner,
    archive: &Archive<'_>,
    backing: &Backing,
    e: &Entry,
) -> Result<Region, MemberError> {
    let mut notes = Vec::new();
    if e.method == STORED && !e.is_encrypted() {
        // The data start from the local header's own name and extra lengths (torch's
        // getRecordOffset), read with pread rather than through the mapping.
        let h = backing
            .read_at(e.local_offset, zip::LOCAL_HEADER_LEN as usize)
            .ok_or_else(|| MemberError::HeaderPastEnd(e.name.clone()))?;
        let start =
            zip::local_data_start(&h, e.local_offset).ok_or_else(|| MemberError::NoHeader {
                name: e.name.clone(),
                at: e.local_offset,
            })?;
        return backing
            .whole()
            .sub(start, e.compressed_size)
            .ok_or_else(|| MemberError::DataPastEnd(e.name.clone()));
    }
    let bytes = archive
        .read(e, scanner.limits.max_decompressed, &mut notes)
        .map_err(|source| MemberError::Read {
            name: e.name.clone(),
            source,
        })?;
    Ok(Backing::owned(bytes.into_owned()).whole())
}

/// Storages of a torch zip: `<dir><key>` members, looked up case-insensitively as torch does.
struct ZipStorages<'z, 'a> {
    scanner: &'z Scanner,
    archive: &'z Archive<'a>,
    backing: &'z Backing,
    layout: &'z ZipLayout<'z>,
    /// `data/` or `constants/`.
    dir: &'static str,
    swap: bool,
}

impl Storages for ZipStorages<'_, '_> {
    fn storage(&self, key: &str) -> Result<(Region, bool), StorageError> {
        let name = format!("{}{key}", self.dir);
        match self.layout.record(&name)? {
            Some(e) => Ok((
                member(self.scanner, self.archive, self.backing, e)?,
                self.swap,
            )),
            None => Err(StorageError::NoRecord(format!(
                "{}{name}",
                self.layout.prefix
            ))),
        }
    }
}

fn zip_leaves(scanner: &Scanner, backing: &Backing) -> Result<(Format, Vec<Leaf>), ExtractError> {
    let archive = Archive::parse(backing.bytes(), scanner.limits.max_members)
        .map_err(|e| fmt_err(format!("cannot read the zip archive: {e}")))?;
    // A torch archive, read as torch's zip reader reads it.
    if let Ok(layout) = ZipLayout::of(&archive) {
        if let Some(data_pkl) = layout.record("data.pkl").map_err(fmt_err)? {
            return torch_zip(scanner, &archive, backing, &layout, data_pkl);
        }
    }
    // numpy .npz: one array per *.npy member; Keras `.keras`: the datasets of its
    // `model.weights.h5`, named by their paths in it.
    let mut leaves = Vec::new();
    let mut keras = false;
    for e in &archive.entries {
        if e.is_dir() {
            continue;
        }
        if e.name == "model.weights.h5" {
            let region = member(scanner, &archive, backing, e).map_err(fmt_err)?;
            leaves.extend(super::hdf5::leaves(&region, &scanner.limits)?);
            keras = true;
            continue;
        }
        let Some(stem) = e.name.strip_suffix(".npy") else {
            leaves.push(Leaf::Dropped {
                name: e.name.clone(),
                what: "zip member that is not an array".into(),
            });
            continue;
        };
        let region = member(scanner, &archive, backing, e).map_err(fmt_err)?;
        leaves.extend(npy_leaves(&region, stem)?);
    }
    if !leaves.iter().any(|l| !matches!(l, Leaf::Dropped { .. })) {
        return Err(fmt_err(
            "the zip archive has no torch data.pkl, .npy members or Keras model.weights.h5",
        ));
    }
    Ok((if keras { Format::Keras } else { Format::Npz }, leaves))
}

fn torch_zip(
    scanner: &Scanner,
    archive: &Archive<'_>,
    backing: &Backing,
    layout: &ZipLayout<'_>,
    data_pkl: &Entry,
) -> Result<(Format, Vec<Leaf>), ExtractError> {
    let record = |name: &str| -> Result<Option<Region>, ExtractError> {
        match layout.record(name).map_err(fmt_err)? {
            Some(e) => Ok(Some(member(scanner, archive, backing, e).map_err(fmt_err)?)),
            None => Ok(None),
        }
    };
    // No byteorder record: little-endian (what current torch assumes).
    let swap = match record("byteorder")? {
        Some(r) => match r.bytes().trim_ascii() {
            b"little" => false,
            b"big" => true,
            other => {
                return Err(fmt_err(format!(
                    "unknown byteorder record {:?}",
                    String::from_utf8_lossy(other)
                )))
            }
        },
        None => false,
    };
    let storages = |dir: &'static str| ZipStorages {
        scanner,
        archive,
        backing,
        layout,
        dir,
        swap,
    };
    let pkl = member(scanner, archive, backing, data_pkl).map_err(fmt_err)?;
    let mut leaves = pickle_leaves(scanner, &pkl, &storages("data/"), "tensor")?;
    let mut format = Format::TorchZip;
    if let Some(constants) = record("constants.pkl")? {
        format = Format::TorchScript;
        let more = pickle_leaves(scanner, &constants, &storages("constants/"), "constants")?;
        leaves.extend(
            more.into_iter()
                .map(|l| rename(l, |n| join("constants", n))),
        );
    }
    Ok((format, leaves))
}

fn rename(mut l: Leaf, f: impl Fn(&str) -> String) -> Leaf {
    let name = match &mut l {
        Leaf::Tensor { name, .. } | Leaf::Unsupported { name, .. } | Leaf::Dropped { name, .. } => {
            name
        }
    };
    *name = f(name);
    l
}

/// One `.npy` array.
fn npy_leaves(data: &Region, name: &str) -> Result<Vec<Leaf>, ExtractError> {
    let bytes = data.bytes();
    let h = npy::parse_header(bytes).map_err(|e| fmt_err(format!("{name}: invalid .npy: {e}")))?;
    if h.has_object {
        return Ok(vec![Leaf::Dropped {
            name: name.into(),
            what: "numpy object array (a pickle; not loaded)".into(),
        }]);
    }
    let start = if h.major == 1 { 10 } else { 12 };
    let text = &bytes[start..h.data_start];
    let descr = match npy::parse_literal(text) {
        Ok(npy::Lit::Dict(pairs)) => pairs.into_iter().find_map(|(k, v)| match (k, v) {
            (npy::Lit::Str(k), npy::Lit::Str(v)) if k == "descr" => Some(v),
            _ => None,
        }),
        _ => None,
    };
    let Some(dtype) = descr.as_deref().and_then(NpDtype::parse) else {
        return Ok(vec![Leaf::Dropped {
            name: name.into(),
            what: "numpy array of a structured dtype".into(),
        }]);
    };
    let Some(elem) = dtype.elem() else {
        return Ok(vec![Leaf::Dropped {
            name: name.into(),
            what: format!("numpy array of dtype {} (not numeric)", dtype.text),
        }]);
    };
    let n =
        super::tensor::numel(&h.shape).ok_or_else(|| fmt_err(format!("{name}: size overflows")))?;
    let nbytes = n
        .checked_mul(dtype.itemsize)
        .ok_or_else(|| fmt_err(format!("{name}: size overflows")))?;
    let region = data.sub(h.data_start as u64, nbytes).ok_or_else(|| {
        fmt_err(format!(
            "{name}: the array data ({nbytes} bytes) run past the end"
        ))
    })?;
    let strides = if h.fortran_order {
        f_strides(&h.shape)
    } else {
        c_strides(&h.shape)
    };
    let source = ByteSource::new(
        region,
        elem.size(),
        0,
        h.shape.clone(),
        strides,
        dtype.swap(),
    )
    .map_err(|e| fmt_err(format!("'{name}': {e}")))?;
    Ok(vec![match elem {
        super::tensor::ElemType::Supported(d) => Leaf::Tensor {
            name: name.into(),
            elem: d,
            shape: h.shape,
            source,
        },
        super::tensor::ElemType::Unsupported { name: what, .. } => Leaf::Unsupported {
            name: name.into(),
            what: format!("dtype {what}"),
        },
    }])
}

/// Raw storages of the legacy format, by key.
struct LegacyStorages(HashMap<String, Region>);

impl Storages for LegacyStorages {
    fn storage(&self, key: &str) -> Result<(Region, bool), StorageError> {
        self.0
            .get(key)
            .cloned()
            .map(|r| (r, false))
            .ok_or_else(|| StorageError::NotRaw(key.to_string()))
    }
}

/// torch legacy: magic, protocol, sys_info, the object, the storage keys, then per key a u64 LE
/// element count and the raw little-endian elements.
fn legacy_leaves(scanner: &Scanner, backing: &Backing) -> Result<Vec<Leaf>, ExtractError> {
    let data = backing.bytes();
    let mut vm = Vm::new(scanner.limits.clone());
    let mut pos = 0usize;
    let mut results = Vec::new();
    let mut main_events = 0;
    for i in 0..5 {
        if i == 3 {
            main_events = vm.events().len();
        }
        let run = vm.run(&data[pos..], pos as u64, &mut NoHooks);
        if let Some(e) = run.error {
            return Err(fmt_err(format!(
                "legacy torch pickle {} cannot be read: {e}",
                i + 1
            )));
        }
        results.push(
            run.result
                .ok_or_else(|| fmt_err("legacy pickle without result"))?,
        );
        pos += run.end;
    }
    let mut classes: HashMap<String, Option<String>> = HashMap::new();
    for (key, class, _) in container::torch::storage_ids(&vm, main_events) {
        classes.entry(key).or_insert(class);
    }
    let keys: Vec<String> = vm
        .value(results[4])
        .as_seq()
        .ok_or_else(|| fmt_err("the legacy storage key list is not a list"))?
        .iter()
        .map(|&k| vm.value(k).as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| fmt_err("a legacy storage key is not a string"))?;
    let whole = backing.whole();
    let mut regions = HashMap::new();
    let mut at = pos as u64;
    for key in keys {
        let class = classes
            .get(&key)
            .cloned()
            .flatten()
            .ok_or_else(|| fmt_err(format!("storage '{key}' is listed but never used")))?;
        let size = container::torch::storage_element_size(&class)
            .ok_or_else(|| fmt_err(format!("unknown storage class {class}")))?;
        let count = backing
            .read_at(at, 8)
            .map(|r| u64::from_le_bytes(r.try_into().expect("8 bytes")))
            .ok_or_else(|| fmt_err(format!("raw storage '{key}' is cut off")))?;
        let region = count
            .checked_mul(size)
            .and_then(|n| whole.sub(at + 8, n))
            .ok_or_else(|| fmt_err(format!("raw storage '{key}' runs past the end of the file")))?;
        at += 8 + region.len() as u64;
        regions.insert(key, region);
    }
    walk(
        &vm,
        &whole,
        &LegacyStorages(regions),
        &InlineArrays::new(),
        results[3],
        "tensor",
    )
}

/// The oldest tar format: only its main pickle is walked; its tensors live in the `tensors`
/// member, which extraction does not read.
fn tar_leaves(scanner: &Scanner, backing: &Backing) -> Result<(Format, Vec<Leaf>), ExtractError> {
    let listing = crate::format::tar::list(backing.bytes(), scanner.limits.max_members);
    let pickle = listing
        .members
        .iter()
        .find(|m| m.name == "pickle")
        .ok_or_else(|| fmt_err("a tar archive without a 'pickle' member"))?;
    let region = backing
        .region_of(pickle.data)
        .ok_or_else(|| fmt_err("tar member outside the file"))?;
    Ok((
        Format::TorchTar,
        pickle_leaves(scanner, &region, &NoStorages, "tensor")?,
    ))
}

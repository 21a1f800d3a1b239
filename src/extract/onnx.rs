//! ONNX initializers as tensors: the weights of a model's main graph, from `raw_data` (or
//! packed `float_data`/`double_data`) in the model file, or from external data files inside the
//! model's folder. External paths are checked as the scan checks them: an absolute path, one
//! that leaves the folder or a missing file is refused, never opened.

use super::graph::Leaf;
use super::tensor::{Backing, ByteSource, DType};
use super::ExtractError;
use crate::format::onnx::{self, InitData};
use std::collections::HashMap;
use std::path::{Component, Path};

fn err(e: impl std::fmt::Display) -> ExtractError {
    ExtractError::Format(e.to_string())
}

/// `TensorProto.DataType` → dtype (`None`: no such dtype here).
fn dtype(t: u64) -> Option<DType> {
    Some(match t {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::BOOL,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        16 => DType::BF16,
        _ => return None,
    })
}

/// A location that names a file inside the model's folder: relative, no `..`, no root.
fn inside(location: &str) -> bool {
    let p = Path::new(location);
    !location.is_empty()
        && !location.contains('\0')
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The initializers of the ONNX model at `path` (its bytes in `backing`).
pub(crate) fn leaves(path: &Path, backing: &Backing) -> Result<Vec<Leaf>, ExtractError> {
    let inits = onnx::initializers(backing.bytes()).map_err(|e| err(format!("ONNX: {e}")))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut external: HashMap<String, Backing> = HashMap::new();
    let whole = backing.whole();
    let mut out = Vec::with_capacity(inits.len());
    for init in inits {
        let name = init.name.clone();
        let Some(elem) = dtype(init.data_type) else {
            out.push(Leaf::Unsupported {
                name,
                what: format!("ONNX data type {}", init.data_type),
            });
            continue;
        };
        let shape = init.dims.clone();
        let numel =
            super::tensor::numel(&shape).ok_or_else(|| err(format!("{name}: size overflows")))?;
        let nbytes = numel
            .checked_mul(elem.size() as u64)
            .ok_or_else(|| err(format!("{name}: size overflows")))?;
        let region = match &init.data {
            InitData::Bytes { offset, len } => {
                if *len as u64 != nbytes {
                    return Err(err(format!(
                        "{name}: {len} bytes of data for {numel} values of {} bytes",
                        elem.size()
                    )));
                }
                whole
                    .sub(*offset as u64, *len as u64)
                    .ok_or_else(|| err(format!("{name}: data outside the file")))?
            }
            InitData::Empty if numel == 0 => whole.sub(0, 0).expect("an empty range"),
            InitData::Empty => {
                return Err(err(format!("{name}: {numel} values declared, none stored")))
            }
            InitData::Typed(field) => {
                out.push(Leaf::Unsupported {
                    name,
                    what: format!("values in {field}"),
                });
                continue;
            }
            InitData::External {
                location,
                offset,
                length,
            } => {
                if !inside(location) {
                    return Err(err(format!(
                        "{name}: external data {location:?} is not a file inside the model's \
                         folder; it is not read"
                    )));
                }
                if length.is_some_and(|l| l != nbytes) {
                    return Err(err(format!(
                        "{name}: external length {} for {nbytes} bytes of values",
                        length.unwrap_or(0)
                    )));
                }
                let b = match external.get(location) {
                    Some(b) => b.clone(),
                    None => {
                        let file = folder.join(location);
                        let b = super::open_backing(&file)
                            .map_err(|e| err(format!("{name}: external data {location:?}: {e}")))?;
                        external.insert(location.clone(), b.clone());
                        b
                    }
                };
                b.whole().sub(*offset, nbytes).ok_or_else(|| {
                    err(format!(
                        "{name}: external data {location:?} is shorter than offset {offset} + \
                         {nbytes} bytes"
                    ))
                })?
            }
        };
        let source = ByteSource::contiguous(region, elem.size(), shape.clone())
            .map_err(|m| err(format!("{name}: {m}")))?;
        out.push(Leaf::Tensor {
            name,
            elem,
            shape,
            source,
        });
    }
    Ok(out)
}

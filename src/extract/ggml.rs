//! Legacy GGML/GGMF/GGJT tensors: the F32 and F16 tensors of a file validated by
//! [`crate::format::ggml`], as ranges of the input. Quantized blocks are listed as unsupported
//! (their legacy layouts differ between file versions).

use super::graph::Leaf;
use super::tensor::{Backing, ByteSource, DType};
use super::ExtractError;

/// The tensors of a legacy GGML-family file.
pub(crate) fn leaves(backing: &Backing) -> Result<Vec<Leaf>, ExtractError> {
    let g = crate::format::ggml::read(backing.bytes())
        .map_err(|e| ExtractError::Format(format!("legacy GGML: {e}")))?;
    let whole = backing.whole();
    let mut out = Vec::with_capacity(g.tensors.len());
    for t in g.tensors {
        let elem = match t.ggml_type {
            0 => DType::F32,
            1 => DType::F16,
            other => {
                out.push(Leaf::Unsupported {
                    name: t.name,
                    what: format!("ggml type {other} (quantized legacy blocks)"),
                });
                continue;
            }
        };
        // ggml lists `ne0` (the row) first; the tensor's shape lists it last.
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        let region = whole
            .sub(t.offset, t.size)
            .ok_or_else(|| ExtractError::Format(format!("{}: data outside the file", t.name)))?;
        let source = ByteSource::contiguous(region, elem.size(), shape.clone())
            .map_err(|m| ExtractError::Format(format!("{}: {m}", t.name)))?;
        out.push(Leaf::Tensor {
            name: t.name,
            elem,
            shape,
            source,
        });
    }
    Ok(out)
}

//! Legacy GGML/GGMF/GGJT tensors, as ranges of a file validated by [`crate::format::ggml`]:
//! F32 and F16 as they are; quantized tensors as their ggml blocks (copied into GGUF as they
//! are, decoded to F32 for safetensors) when their layout is the one ggml has today.
//!
//! The block layouts changed twice (llama.cpp's `convert_llama_ggml_to_gguf.py` refuses the same
//! files): GGJT v2 changed the bit order of every quantized type, and GGJT v3 the scale of Q4_0,
//! Q4_1 and Q8_0 from f32 to f16. So quantized tensors of `ggml`, GGMF and GGJT v1 files, and the
//! Q4_0/Q4_1/Q8_0 tensors of GGJT v2 files, are listed as not extracted; GGJT v3 (and GGLA LoRA)
//! blocks are today's.

use super::graph::Leaf;
use super::tensor::{Backing, ByteSource, DType};
use super::ExtractError;
use crate::format::ggml::Flavour;
use crate::quant::GgmlType;

/// The tensors of a legacy GGML-family file.
pub(crate) fn leaves(backing: &Backing) -> Result<Vec<Leaf>, ExtractError> {
    let g = crate::format::ggml::read(backing.bytes())
        .map_err(|e| ExtractError::Format(format!("legacy GGML: {e}")))?;
    let whole = backing.whole();
    let mut out = Vec::with_capacity(g.tensors.len());
    for t in g.tensors {
        // ggml lists `ne0` (the row) first; the tensor's shape lists it last.
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        let region = whole
            .sub(t.offset, t.size)
            .ok_or_else(|| ExtractError::Format(format!("{}: data outside the file", t.name)))?;
        let source = match t.ggml_type {
            0 => ByteSource::contiguous(region, 4, shape.clone()),
            1 => ByteSource::contiguous(region, 2, shape.clone()),
            id => match today_layout(id, g.flavour, g.version) {
                Ok(ty) => ByteSource::ggml_blocks(region, ty, shape.clone()),
                Err(what) => {
                    out.push(Leaf::Unsupported { name: t.name, what });
                    continue;
                }
            },
        }
        .map_err(|m| ExtractError::Format(format!("{}: {m}", t.name)))?;
        // Blocks are read as the f32 values they decode to.
        let elem = if t.ggml_type == 1 {
            DType::F16
        } else {
            DType::F32
        };
        out.push(Leaf::Tensor {
            name: t.name,
            elem,
            shape,
            source,
        });
    }
    Ok(out)
}

/// The quantized type `id` of a file of this flavour and version, when its blocks are laid out
/// as ggml lays them out today; otherwise why not.
fn today_layout(id: u32, flavour: Flavour, version: u32) -> Result<GgmlType, String> {
    let ty = GgmlType::from_id(id)
        .filter(|t| t.block_size() > 1)
        .ok_or_else(|| format!("ggml type {id}: not a block type this tool decodes"))?;
    let current = match flavour {
        Flavour::Ggla => true,
        Flavour::Ggjt if version >= 3 => true,
        Flavour::Ggjt if version == 2 => {
            !matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
        }
        _ => false,
    };
    if current {
        Ok(ty)
    } else {
        let file = match flavour {
            Flavour::Ggml => "an unversioned ggml".to_string(),
            _ => format!("a {} v{version}", flavour.name()),
        };
        let changed = if flavour == Flavour::Ggjt && version == 2 {
            "v3"
        } else {
            "v2"
        };
        Err(format!(
            "{ty} blocks of {file} file: their layout changed in GGJT {changed} (convert the \
             original weights instead)"
        ))
    }
}

//! HDF5 datasets (Keras `model.weights.h5` and `.weights.h5`, legacy Keras `.h5` models, h5py
//! files): every numeric dataset read by [`crate::format::hdf5`], named by its path without the
//! leading `/` (`layers/dense/vars/0`). Contiguous and compact data are ranges of the input
//! (big-endian data swapped on the way out). Chunked datasets (compressed or resizable) are
//! decoded into memory by [`hdf5::read_chunked`]: chunks found through version 1 B-trees, single
//! chunk, implicit, fixed array, extensible array and version 2 B-tree indexes, undone by the
//! deflate, shuffle and fletcher32 filters (the checksum verified), chunks never written given
//! the fill value. Listed as not extracted: datasets with another filter (lzf, szip, blosc, …,
//! named), contiguous data never written, and non-numeric types. A damaged chunk (a stream that
//! is corrupt, cut short or inflates past its chunk, a checksum that does not match) fails the
//! extraction, naming the dataset. A file that refers to data outside itself is refused.

use super::graph::Leaf;
use super::tensor::{c_strides, Backing, ByteSource, DType, Region};
use super::ExtractError;
use crate::format::hdf5::{self, Element, Hdf5Error, Layout};
use crate::limits::Limits;

/// The datasets of the HDF5 file in `region`.
///
/// Chunked datasets are decoded whole into memory, so every one of them is held until the
/// tensors are written. What they decode to (and what they hold) is charged, for the whole file,
/// against the budget a compressed stream of the file's size gets
/// ([`Limits::inflate_budget`]): at most `max_ratio` times the file (64 MiB for small files),
/// never more than `max_decompressed`.
pub(crate) fn leaves(region: &Region, limits: &Limits) -> Result<Vec<Leaf>, ExtractError> {
    let mut budget = limits.inflate_budget(region.len() as u64);
    let c = hdf5::read(region.bytes()).map_err(|e| ExtractError::Format(format!("HDF5: {e}")))?;
    if let Some(x) = c.externals.first() {
        return Err(ExtractError::Format(format!(
            "HDF5: {} refers to data outside the file ({:?}): not extracted",
            x.path, x.external
        )));
    }
    let mut out = Vec::with_capacity(c.datasets.len());
    for d in c.datasets {
        let name = d.path.trim_start_matches('/').to_string();
        let unsupported = |what: String| Leaf::Unsupported {
            name: name.clone(),
            what,
        };
        let (elem, big_endian) = match d.element {
            Element::Float { size, big_endian } => match size {
                2 => (DType::F16, big_endian),
                4 => (DType::F32, big_endian),
                8 => (DType::F64, big_endian),
                _ => {
                    out.push(unsupported(format!("{size}-byte floats")));
                    continue;
                }
            },
            Element::Int {
                size,
                signed,
                big_endian,
            } => match (size, signed) {
                (1, true) => (DType::I8, false),
                (2, true) => (DType::I16, big_endian),
                (4, true) => (DType::I32, big_endian),
                (8, true) => (DType::I64, big_endian),
                (1, false) => (DType::U8, false),
                (2, false) => (DType::U16, big_endian),
                (4, false) => (DType::U32, big_endian),
                (8, false) => (DType::U64, big_endian),
                _ => {
                    out.push(unsupported(format!("{size}-byte integers")));
                    continue;
                }
            },
            Element::Other { .. } => {
                out.push(unsupported(
                    "a non-numeric HDF5 type (string, enum, compound, …)".into(),
                ));
                continue;
            }
        };
        let numel = d
            .elements()
            .ok_or_else(|| ExtractError::Format(format!("{name}: element count overflows")))?;
        let bytes = numel
            .checked_mul(elem.size() as u64)
            .ok_or_else(|| ExtractError::Format(format!("{name}: byte size overflows")))?;
        // Where the dataset's bytes are: a range of the file, or its chunks assembled.
        let range = |start: u64| {
            region.sub(start, bytes).ok_or_else(|| {
                ExtractError::Format(format!("{name}: data at {start} runs past the file"))
            })
        };
        let data = match d.layout {
            Layout::Contiguous {
                offset: Some(start),
                ..
            } => range(start)?,
            Layout::Compact { offset, len } if len >= bytes => range(offset)?,
            Layout::Contiguous { offset: None, .. } if numel > 0 => {
                out.push(unsupported(
                    "a dataset never written (all fill value)".into(),
                ));
                continue;
            }
            Layout::Contiguous { offset: None, .. } => Backing::owned(Vec::new()).whole(),
            Layout::Chunked(_) => match hdf5::read_chunked(region.bytes(), &d, &mut budget) {
                Ok(bytes) => Backing::owned(bytes).whole(),
                Err(Hdf5Error::Unsupported(what)) => {
                    out.push(unsupported(what));
                    continue;
                }
                Err(e) => return Err(ExtractError::Format(format!("HDF5: {e}"))),
            },
            _ => {
                out.push(unsupported(format!("layout {:?}", d.layout)));
                continue;
            }
        };
        let strides = c_strides(&d.shape);
        let source = ByteSource::new(data, elem.size(), 0, d.shape.clone(), strides, big_endian)
            .map_err(|m| ExtractError::Format(format!("{name}: {m}")))?;
        out.push(Leaf::Tensor {
            name,
            elem,
            shape: d.shape,
            source,
        });
    }
    Ok(out)
}

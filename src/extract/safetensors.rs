//! The safetensors output: the extracted tensors laid out by the format's writer
//! ([`crate::format::safetensors::Layout`], the reference serializer's bytes) and streamed in
//! that order.

use super::output::TensorWriter;
use super::tensor::{DType, Tensor};
use super::Progress;
pub use crate::format::safetensors::Layout;
use crate::format::safetensors::Planned;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// Lay out the extracted `tensors` with `metadata`.
pub fn layout(tensors: &[Tensor], metadata: &BTreeMap<String, String>) -> Layout {
    let planned: Vec<Planned<'_>> = tensors
        .iter()
        .map(|t| Planned {
            name: &t.name,
            dtype: t.dtype,
            shape: &t.shape,
            nbytes: t.nbytes(),
        })
        .collect();
    Layout::new(&planned, metadata)
}

/// A safetensors file as written by [`super::output::write_output`]: the planned header, the
/// data in file order, then the header again with the input's digest in its metadata
/// ([`super::SOURCE_SHA256`], planned with a placeholder of the same length).
pub(crate) struct SafetensorsFile<'a> {
    plan: Layout,
    tensors: &'a [Tensor],
    progress: &'a Progress,
}

impl<'a> SafetensorsFile<'a> {
    pub(crate) fn new(
        tensors: &'a [Tensor],
        metadata: &BTreeMap<String, String>,
        progress: &'a Progress,
    ) -> Self {
        SafetensorsFile {
            plan: layout(tensors, metadata),
            tensors,
            progress,
        }
    }

    /// `(name, dtype, shape)` of the tensors, in file order.
    pub(crate) fn written(&self) -> Vec<(String, DType, Vec<u64>)> {
        self.plan
            .order
            .iter()
            .map(|&i| {
                let t = &self.tensors[i];
                (t.name.clone(), t.dtype, t.shape.clone())
            })
            .collect()
    }
}

impl TensorWriter for SafetensorsFile<'_> {
    fn write(&mut self, out: &mut File) -> io::Result<()> {
        out.write_all(&self.plan.head)?;
        super::write_in_order(&self.plan, self.tensors, out, self.progress)
    }

    fn put_digest(&mut self, out: &mut File, digest: &str) -> io::Result<()> {
        let placeholder = "0".repeat(digest.len());
        if !self
            .plan
            .patch_metadata(super::SOURCE_SHA256, &placeholder, digest)
        {
            return Err(io::Error::other(format!(
                "metadata {} could not be filled in",
                super::SOURCE_SHA256
            )));
        }
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&self.plan.head)
    }

    fn planned_len(&self) -> Option<u64> {
        Some(self.plan.file_len())
    }
}

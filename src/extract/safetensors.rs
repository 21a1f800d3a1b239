//! The safetensors writer: the same bytes as the reference serializer.
//!
//! Layout (formats.md §5.1, §5.4): u64 LE header length `N`, the JSON header padded with spaces to
//! a multiple of 8, then every tensor's bytes back to back. Tensors are ordered by dtype (widest
//! first, the reference's `Dtype` order reversed) then by name, so every tensor starts naturally
//! aligned; `__metadata__` comes first in the JSON; the JSON is compact. The header is planned
//! before any data is written, so the data can be streamed tensor by tensor.

use super::output::TensorWriter;
use super::tensor::{DType, Tensor};
use super::Progress;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// The header of a safetensors file and the order its tensors' bytes follow in.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `N` (u64 LE) followed by the padded JSON header.
    pub head: Vec<u8>,
    /// Indices into the tensor list, in data order.
    pub order: Vec<usize>,
    /// Total bytes of tensor data.
    pub data_len: u64,
}

impl Plan {
    /// Lay out `tensors` with `metadata` (string to string).
    pub fn new(tensors: &[Tensor], metadata: &BTreeMap<String, String>) -> Plan {
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by(|&a, &b| {
            let (ta, tb) = (&tensors[a], &tensors[b]);
            tb.dtype.cmp(&ta.dtype).then_with(|| ta.name.cmp(&tb.name))
        });
        let mut json = String::from("{");
        let mut first = true;
        if !metadata.is_empty() {
            json.push_str("\"__metadata__\":");
            json.push_str(&serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into()));
            first = false;
        }
        let mut offset = 0u64;
        for &i in &order {
            let t = &tensors[i];
            let end = offset + t.nbytes();
            if !first {
                json.push(',');
            }
            first = false;
            json.push_str(&quote(&t.name));
            json.push_str(":{\"dtype\":\"");
            json.push_str(t.dtype.safetensors_name());
            json.push_str("\",\"shape\":[");
            let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            json.push_str(&dims.join(","));
            json.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
            offset = end;
        }
        json.push('}');
        let mut header = json.into_bytes();
        let padded = header.len().next_multiple_of(8);
        header.resize(padded, b' ');
        let mut head = Vec::with_capacity(8 + header.len());
        head.extend_from_slice(&(header.len() as u64).to_le_bytes());
        head.extend_from_slice(&header);
        Plan {
            head,
            order,
            data_len: offset,
        }
    }

    /// Total file size.
    pub fn file_len(&self) -> u64 {
        self.head.len() as u64 + self.data_len
    }

    /// Replace the value of metadata entry `key` by one of the same length (used to fill in a
    /// value known only once the data is written). False if not found or the lengths differ.
    pub fn patch_metadata(&mut self, key: &str, old: &str, new: &str) -> bool {
        if old.len() != new.len() {
            return false;
        }
        let needle = format!("{}:{}", quote(key), quote(old)).into_bytes();
        let replacement = format!("{}:{}", quote(key), quote(new)).into_bytes();
        match find(&self.head, &needle) {
            Some(at) => {
                self.head[at..at + needle.len()].copy_from_slice(&replacement);
                true
            }
            None => false,
        }
    }

    /// Write the whole file to an in-memory writer (tests, small outputs).
    pub fn write_all(&self, tensors: &[Tensor], out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.head)?;
        for &i in &self.order {
            tensors[i]
                .source
                .for_each_chunk(1 << 20, &mut |b| out.write_all(b))?;
        }
        Ok(())
    }
}

/// A safetensors file as written by [`super::output::write_output`]: the planned header, the
/// data in file order, then the header again with the input's digest in its metadata
/// ([`super::SOURCE_SHA256`], planned with a placeholder of the same length).
pub(crate) struct SafetensorsFile<'a> {
    plan: Plan,
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
            plan: Plan::new(tensors, metadata),
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

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::tensor::{Backing, ByteSource, DType};

    fn t(name: &str, dtype: DType, shape: Vec<u64>) -> Tensor {
        let n: u64 = shape.iter().product();
        let b = Backing::owned(vec![0; (n as usize) * dtype.size()]);
        Tensor {
            name: name.into(),
            dtype,
            source: ByteSource::contiguous(b.whole(), dtype.size(), shape.clone()).unwrap(),
            shape,
        }
    }

    #[test]
    fn header_matches_reference_layout() {
        // safetensors.torch.save_file({'a': zeros(0,3), 's': tensor(1.5), 'b': arange(4.)})
        let ts = vec![
            t("a", DType::F32, vec![0, 3]),
            t("s", DType::F32, vec![]),
            t("b", DType::F32, vec![4]),
        ];
        let p = Plan::new(&ts, &BTreeMap::new());
        let expected = br#"{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"s":{"dtype":"F32","shape":[],"data_offsets":[16,20]}}    "#;
        assert_eq!(&p.head[..8], &(expected.len() as u64).to_le_bytes());
        assert_eq!(&p.head[8..], &expected[..]);
        assert_eq!(p.data_len, 20);
    }

    #[test]
    fn dtype_order_then_name() {
        let ts = vec![
            t("z", DType::BOOL, vec![1]),
            t("y", DType::U64, vec![1]),
            t("x", DType::BF16, vec![1]),
            t("w", DType::F16, vec![1]),
            t("v", DType::F8_E4M3, vec![1]),
            t("u", DType::F32, vec![1]),
        ];
        let p = Plan::new(&ts, &BTreeMap::new());
        let names: Vec<&str> = p.order.iter().map(|&i| ts[i].name.as_str()).collect();
        assert_eq!(names, ["y", "u", "x", "w", "v", "z"]);
    }

    #[test]
    fn metadata_first_and_patchable() {
        let mut m = BTreeMap::new();
        m.insert("format".to_string(), "pt".to_string());
        m.insert("h".to_string(), "0000".to_string());
        let mut p = Plan::new(&[t("a", DType::U8, vec![2])], &m);
        assert!(p.head[8..].starts_with(br#"{"__metadata__":{"format":"pt","h":"0000"},"a""#));
        assert!(p.patch_metadata("h", "0000", "abcd"));
        assert!(!p.patch_metadata("h", "0000", "abcde"));
        assert!(p.head[8..].starts_with(br#"{"__metadata__":{"format":"pt","h":"abcd"}"#));
        assert_eq!(p.head.len() % 8, 0);
    }
}

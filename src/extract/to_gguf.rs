//! GGUF output: the extracted tensors written as a GGUF v3 file, optionally quantized.
//!
//! Each tensor gets a ggml type: F32, F16 and BF16 (and the integer types and F64, which GGUF
//! stores natively) keep their type unless a conversion is requested; with a requested type the
//! float tensors are converted as llama.cpp's tools would (see [`quant::choose_type`]: 1-D tensors
//! stay F32, rows that do not fit the block size fall back, with a note). A tensor whose type
//! already is the target is copied byte for byte.
//!
//! Conversion is streamed in batches of rows: each batch is split in pieces that are read (with
//! `pread` when the tensor is a span of the input file, so the input's pages never count as the
//! process's memory), widened to f32 and encoded in parallel, then written in order. Memory stays
//! at one batch of output plus one piece per thread, whatever the size of the model.

use super::tensor::ByteSource;
use super::{DType, Dropped, Extraction, Tensor};
use crate::format::gguf::{GgufError, GgufWriter};
use crate::quant::{self, bf16_to_f32, f16_to_f32, GgmlType, QuantError};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Elements per parallel piece (a multiple of every block size).
const PIECE: usize = 1 << 16;
/// Elements per batch: the pieces of a batch are encoded in parallel, then written.
const BATCH: usize = 1 << 22;
/// Key of the input digest, filled in once the data are written.
pub const SHA_KEY: &str = "picklescan.source_sha256";
/// Metadata key of the scan's verdict on the input.
pub const VERDICT_KEY: &str = "picklescan.scan_verdict";
/// Metadata key of what the input was read as ([`crate::format::Format`]'s name).
pub const FORMAT_KEY: &str = "picklescan.source_format";

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct GgufOptions {
    /// Convert the float tensors to this type (`None`: keep F32/F16/BF16 as they are).
    pub quant: Option<GgmlType>,
    /// `general.architecture` (default `unknown`).
    pub arch: Option<String>,
    /// `general.name`.
    pub name: String,
}

/// How one tensor is written.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index in the extraction.
    pub index: usize,
    /// Output type.
    pub ty: GgmlType,
    /// Convert (widen to f32, then encode) rather than copy the bytes.
    pub convert: bool,
}

/// The GGUF type a dtype is stored as without conversion.
pub fn native_type(d: DType) -> Option<GgmlType> {
    Some(match d {
        DType::F32 => GgmlType::F32,
        DType::F16 => GgmlType::F16,
        DType::BF16 => GgmlType::BF16,
        DType::F64 => GgmlType::F64,
        DType::I8 => GgmlType::I8,
        DType::I16 => GgmlType::I16,
        DType::I32 => GgmlType::I32,
        DType::I64 => GgmlType::I64,
        _ => return None,
    })
}

fn is_float(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
}

/// Decide each tensor's type. Returns the plan, the tensors GGUF cannot hold and the notes
/// about fallbacks.
pub fn plan(
    tensors: &[Tensor],
    quant: Option<GgmlType>,
) -> (Vec<Planned>, Vec<Dropped>, Vec<String>) {
    let mut out = Vec::new();
    let mut unsupported = Vec::new();
    let mut notes = Vec::new();
    for (index, t) in tensors.iter().enumerate() {
        let refuse = |what: String| Dropped {
            name: t.name.clone(),
            what,
        };
        let Some(native) = native_type(t.dtype) else {
            unsupported.push(refuse(format!(
                "{} tensor: GGUF has no such type",
                t.dtype.safetensors_name()
            )));
            continue;
        };
        if t.shape.len() > crate::format::gguf::MAX_DIMS {
            unsupported.push(refuse(format!(
                "{}-D tensor: GGUF holds at most {} dimensions",
                t.shape.len(),
                crate::format::gguf::MAX_DIMS
            )));
            continue;
        }
        if t.shape.contains(&0) {
            unsupported.push(refuse(
                "empty tensor: GGUF dimensions are at least 1".into(),
            ));
            continue;
        }
        if let Some((blocks, _)) = t.source.ggml_block_bytes() {
            out.push(plan_blocks(index, blocks, quant, &t.name, &mut notes));
            continue;
        }
        let (ty, convert) = match quant {
            Some(q) if is_float(t.dtype) => {
                let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
                let (ty, note) = quant::choose_type(q, &shape);
                if let Some(n) = note {
                    notes.push(format!("{}: {n}", t.name));
                }
                (ty, ty != native)
            }
            _ => (native, false),
        };
        out.push(Planned { index, ty, convert });
    }
    (out, unsupported, notes)
}

/// A tensor already in ggml blocks (a legacy GGML file) is copied as it is. A requested float
/// type decodes it; a requested quantized type of another kind is not applied (quantizing
/// quantized values again loses precision, which `llama-quantize` also refuses by default).
fn plan_blocks(
    index: usize,
    blocks: GgmlType,
    quant: Option<GgmlType>,
    name: &str,
    notes: &mut Vec<String>,
) -> Planned {
    match quant {
        Some(q) if q != blocks && q.block_size() == 1 => Planned {
            index,
            ty: q,
            convert: true,
        },
        Some(q) if q != blocks => {
            notes.push(format!(
                "{name}: already quantized as {blocks}, kept (not quantized again to {q})"
            ));
            Planned {
                index,
                ty: blocks,
                convert: false,
            }
        }
        _ => Planned {
            index,
            ty: blocks,
            convert: false,
        },
    }
}

/// `general.file_type` of a file without a requested type: the type holding most elements
/// among the tensors of two or more dimensions (ALL_F32 when there are none; on a tie, the
/// lowest type id).
pub fn guessed_file_type(tensors: &[Tensor], plan: &[Planned]) -> u32 {
    let mut counts = std::collections::BTreeMap::<GgmlType, u64>::new();
    for p in plan {
        let t = &tensors[p.index];
        let counted =
            matches!(p.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) || p.ty.block_size() > 1;
        if t.shape.len() >= 2 && counted {
            *counts.entry(p.ty).or_default() += t.source.numel();
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(ty, n)| (n, std::cmp::Reverse(ty)))
        .map_or(GgmlType::F32, |(ty, _)| ty)
        .file_type()
}

fn gerr(e: GgufError) -> io::Error {
    match e {
        GgufError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Widen `src` (whole elements of `dtype`, little-endian) to f32.
fn widen(dtype: DType, src: &[u8], dst: &mut [f32]) {
    match dtype {
        DType::F32 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::F16 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        DType::BF16 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        DType::F64 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(8)) {
                *o = f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32;
            }
        }
        _ => unreachable!("only float tensors are converted"),
    }
}

fn quant_err(name: &str, base: usize, e: QuantError) -> io::Error {
    let e = match e {
        QuantError::NonFinite { ty, index, value } => QuantError::NonFinite {
            ty,
            index: base + index,
            value,
        },
        other => other,
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("tensor '{name}': {e}"))
}

/// Stream one tensor's bytes (C-contiguous, little-endian) to `sink` in chunks of at most
/// `chunk` bytes, with `pread` when it is a span of a file.
fn read_chunks(
    src: &ByteSource,
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    if let Some((file, start, len)) = src.file_range() {
        let mut buf = vec![0u8; (chunk as u64).min(len) as usize];
        let mut pos = 0u64;
        while pos < len {
            let n = (buf.len() as u64).min(len - pos) as usize;
            file.read_exact_at(&mut buf[..n], start + pos)?;
            sink(&buf[..n])?;
            pos += n as u64;
        }
        return Ok(());
    }
    src.for_each_chunk(chunk, sink)
}

/// Convert a tensor stored as a span of `file` (from byte `start`) to `ty` and write it.
///
/// Batches are encoded in parallel pieces, each read with its own `pread` (F32 values are
/// encoded straight from the bytes read, other types widened first), while the previous
/// batch is written: two output batches and one read buffer per thread are all the memory.
/// `pending` holds encoded bytes not yet written: those of the previous tensor on entry, those
/// of this tensor's last batch on return (written while the next tensor's first batch is
/// encoded, so that the encoders do not wait for a write at the end of each tensor).
fn convert_file_span<W: io::Write + Send>(
    t: &Tensor,
    ty: GgmlType,
    file: &File,
    start: u64,
    w: &mut GgufWriter<W>,
    pending: &mut Pending,
) -> io::Result<()> {
    let es = t.dtype.size();
    let total = t.source.numel() as usize;
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let encode = |o: &mut [u8], first: usize| -> io::Result<()> {
        o.par_chunks_mut(PIECE / bs * ts)
            .enumerate()
            .try_for_each_init(
                || (Vec::<u8>::new(), Vec::<f32>::new()),
                |(raw, vals), (i, o)| {
                    let first = first + i * PIECE;
                    let m = o.len() / ts * bs;
                    raw.resize(m * es, 0);
                    file.read_exact_at(raw, start + (first * es) as u64)?;
                    let r = if t.dtype == DType::F32 {
                        quant::quantize_le_into(ty, raw, m, o)
                    } else {
                        vals.resize(m, 0.0);
                        widen(t.dtype, raw, vals);
                        quant::quantize_into(ty, vals, m, o)
                    };
                    r.map_err(|e| quant_err(&t.name, first, e))
                },
            )
    };
    let mut cur = std::mem::take(&mut pending.spare);
    let mut done = 0usize;
    while done < total {
        let n = BATCH.min(total - done);
        // Every byte is encoded: the buffer's old contents do not matter.
        cur.resize(n / bs * ts, 0);
        let (written, encoded) = rayon::join(
            || w.write_tensor_data(&pending.bytes).map_err(gerr),
            || encode(&mut cur, done),
        );
        written?;
        encoded?;
        std::mem::swap(&mut cur, &mut pending.bytes);
        done += n;
    }
    pending.spare = cur;
    Ok(())
}

/// Encoded bytes not yet written, and a spare buffer for the next batch.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    spare: Vec<u8>,
}

/// Write the bytes `pending` holds, and empty it.
fn write_pending<W: io::Write>(w: &mut GgufWriter<W>, pending: &mut Pending) -> io::Result<()> {
    w.write_tensor_data(&pending.bytes).map_err(gerr)?;
    pending.bytes.clear();
    Ok(())
}

/// Convert one tensor to `ty` and write it, batch by batch.
/// `pending`: see [`convert_file_span`].
fn write_converted<W: io::Write + Send>(
    t: &Tensor,
    ty: GgmlType,
    w: &mut GgufWriter<W>,
    pending: &mut Pending,
) -> io::Result<()> {
    let es = t.dtype.size();
    let total = t.source.numel() as usize;
    let bs = ty.block_size();
    let ts = ty.type_size();
    if let Some((file, start, _)) = t.source.file_range() {
        return convert_file_span(t, ty, file, start, w, pending);
    }
    write_pending(w, pending)?;
    let mut out = vec![0u8; BATCH.min(total) / bs * ts];
    // Other layouts come through one reader: gather a batch, then encode it in parallel.
    let mut vals = vec![0f32; BATCH.min(total)];
    let mut filled = 0usize;
    let mut done = 0usize;
    let mut carry: Vec<u8> = Vec::new();
    let mut flush = |vals: &[f32], done: usize, w: &mut GgufWriter<W>| -> io::Result<()> {
        let o = &mut out[..vals.len() / bs * ts];
        o.par_chunks_mut(PIECE / bs * ts)
            .zip(vals.par_chunks(PIECE))
            .enumerate()
            .try_for_each(|(i, (o, x))| {
                quant::quantize_into(ty, x, x.len(), o)
                    .map_err(|e| quant_err(&t.name, done + i * PIECE, e))
            })?;
        w.write_tensor_data(o).map_err(gerr)
    };
    read_chunks(&t.source, super::CHUNK, &mut |mut b: &[u8]| {
        if !carry.is_empty() {
            let need = es - carry.len();
            let take = need.min(b.len());
            carry.extend_from_slice(&b[..take]);
            b = &b[take..];
            if carry.len() < es {
                return Ok(());
            }
            widen(t.dtype, &carry, &mut vals[filled..filled + 1]);
            carry.clear();
            filled += 1;
            if filled == vals.len().min(total - done) {
                flush(&vals[..filled], done, w)?;
                done += filled;
                filled = 0;
            }
        }
        while b.len() >= es {
            let room = vals.len().min(total - done) - filled;
            let m = room.min(b.len() / es);
            widen(t.dtype, &b[..m * es], &mut vals[filled..filled + m]);
            b = &b[m * es..];
            filled += m;
            if filled == vals.len().min(total - done) {
                flush(&vals[..filled], done, w)?;
                done += filled;
                filled = 0;
            }
        }
        carry.extend_from_slice(b);
        Ok(())
    })?;
    if done != total {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("tensor '{}': the data ended early", t.name),
        ));
    }
    Ok(())
}

/// Write the header and every planned tensor to `out` (a file positioned at its start). `kvs`
/// go after `general.architecture`; the returned value is the header length (where the late
/// metadata can be patched).
pub fn write_gguf(
    extraction: &Extraction,
    planned: &[Planned],
    kvs: Vec<(String, crate::format::gguf::Value)>,
    out: &mut (impl Write + Send),
    progress: &super::Progress,
) -> io::Result<u64> {
    let mut w = GgufWriter::new(BufWriter::with_capacity(1 << 20, out));
    for (k, v) in kvs {
        w.add_kv(k, v).map_err(gerr)?;
    }
    for p in planned {
        let t = &extraction.tensors[p.index];
        let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        w.add_tensor_info(t.name.clone(), &shape, p.ty)
            .map_err(|e| io::Error::other(format!("tensor '{}': {e}", t.name)))?;
    }
    w.write_header().map_err(gerr)?;
    let header_len = w.position();
    let mut pending = Pending::default();
    for p in planned {
        let t = &extraction.tensors[p.index];
        if p.convert {
            write_converted(t, p.ty, &mut w, &mut pending)?;
        } else {
            write_pending(&mut w, &mut pending)?;
            // Blocks are copied as they are, everything else as its elements.
            let raw = t.source.ggml_block_bytes().map(|(_, raw)| raw);
            read_chunks(raw.as_ref().unwrap_or(&t.source), super::CHUNK, &mut |b| {
                w.write_tensor_data(b).map_err(gerr)
            })
            .map_err(|e| io::Error::new(e.kind(), format!("tensor '{}': {e}", t.name)))?;
        }
        progress.add(t.source.nbytes());
    }
    write_pending(&mut w, &mut pending)?;
    w.finish().map_err(gerr)?;
    Ok(header_len)
}

/// A GGUF file as written by [`super::output::write_output`]: the header with `kvs` (among them
/// [`SHA_KEY`] with a placeholder as long as the digest), the planned tensors, then the digest
/// patched over the placeholder.
pub(crate) struct GgufFile<'a> {
    extraction: &'a Extraction,
    planned: &'a [Planned],
    kvs: Vec<(String, crate::format::gguf::Value)>,
    progress: &'a super::Progress,
    header_len: u64,
}

impl<'a> GgufFile<'a> {
    pub(crate) fn new(
        extraction: &'a Extraction,
        planned: &'a [Planned],
        kvs: Vec<(String, crate::format::gguf::Value)>,
        progress: &'a super::Progress,
    ) -> Self {
        GgufFile {
            extraction,
            planned,
            kvs,
            progress,
            header_len: 0,
        }
    }
}

impl super::output::TensorWriter for GgufFile<'_> {
    fn write(&mut self, out: &mut File) -> io::Result<()> {
        let kvs = std::mem::take(&mut self.kvs);
        self.header_len = write_gguf(self.extraction, self.planned, kvs, out, self.progress)?;
        Ok(())
    }

    fn put_digest(&mut self, out: &mut File, digest: &str) -> io::Result<()> {
        patch_string(out, self.header_len, SHA_KEY, digest)
    }

    fn data_error(&self, e: &io::Error) -> bool {
        // What the GGUF writer and the quantizers refuse (see `gerr`, `quant_err`).
        matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::Other)
    }
}

/// Replace the value of the string key `key` (of the same length) in the header of `file`.
pub fn patch_string(file: &File, header_len: u64, key: &str, value: &str) -> io::Result<()> {
    let mut head = vec![0u8; header_len as usize];
    file.read_exact_at(&mut head, 0)?;
    let mut pat = Vec::new();
    pat.extend_from_slice(&(key.len() as u64).to_le_bytes());
    pat.extend_from_slice(key.as_bytes());
    pat.extend_from_slice(&8u32.to_le_bytes());
    pat.extend_from_slice(&(value.len() as u64).to_le_bytes());
    let at = memchr::memmem::find(&head, &pat)
        .ok_or_else(|| io::Error::other(format!("metadata {key} not found in the header")))?;
    file.write_all_at(value.as_bytes(), (at + pat.len()) as u64)
}

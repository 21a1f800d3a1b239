//! Tensors as extraction produces them: a name, a dtype, a shape and a [`ByteSource`] that says
//! where each element's bytes live in the input.
//!
//! A byte source is a view (offset, strides, both in elements) over a [`Region`] of the input, the
//! way torch and numpy describe arrays. Everything is validated when the view is made, with
//! overflow-checked arithmetic: a view whose last element lies outside its region is an error, never
//! a panic or an out-of-bounds read. Reading a source yields the tensor's bytes C-contiguous and
//! little-endian, in bounded chunks, whatever the layout on disk.
//!
//! A source may also be a run of ggml quantization blocks (legacy GGML files): its elements are
//! the blocks' values decoded to f32 as ggml decodes them, and the blocks themselves stay
//! available for an output that holds them as they are (GGUF).

use crate::quant::GgmlType;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub use crate::format::dtype::{DType, ElemType};

/// Bytes the input provides: a memory-mapped file, an inflated archive member, a decompressed
/// stream. When the bytes are a file's own bytes, the file and the offset of the first byte are
/// kept too, so contiguous spans can be copied by the kernel without passing through memory.
#[derive(Clone)]
pub struct Backing {
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
    file: Option<(Arc<File>, u64)>,
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backing")
            .field("len", &self.bytes().len())
            .field("file_offset", &self.file.as_ref().map(|f| f.1))
            .finish()
    }
}

impl Backing {
    /// Bytes in memory.
    pub fn memory(data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Self {
        Backing { data, file: None }
    }

    /// Bytes that are the file's own bytes from `file_offset` on (a mapping of it).
    pub fn file(
        data: Arc<dyn AsRef<[u8]> + Send + Sync>,
        file: Arc<File>,
        file_offset: u64,
    ) -> Self {
        Backing {
            data,
            file: Some((file, file_offset)),
        }
    }

    /// An owned buffer.
    pub fn owned(v: Vec<u8>) -> Self {
        Self::memory(Arc::new(v))
    }

    /// All the bytes.
    pub fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// Copy `len` bytes at `offset` without touching the mapping when the bytes are a file's:
    /// a page fault on a mapping can map a whole large folio (megabytes) into the process, so
    /// small reads scattered over a big file (zip local headers, legacy storage counts) go through
    /// `pread` instead.
    pub fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let end = offset.checked_add(len as u64)?;
        if end > self.bytes().len() as u64 {
            return None;
        }
        if let Some((file, base)) = &self.file {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; len];
            if file.read_exact_at(&mut buf, base + offset).is_ok() {
                return Some(buf);
            }
        }
        Some(self.bytes()[offset as usize..end as usize].to_vec())
    }

    /// The file these bytes are, when they are a whole file's own bytes from offset 0.
    pub fn file_handle(&self) -> Option<&Arc<File>> {
        match &self.file {
            Some((f, 0)) => Some(f),
            _ => None,
        }
    }

    /// The region of these bytes that `sub` (a slice borrowed from them) covers.
    pub fn region_of(&self, sub: &[u8]) -> Option<Region> {
        let all = self.bytes();
        let base = all.as_ptr() as usize;
        let p = sub.as_ptr() as usize;
        let start = p.checked_sub(base)?;
        if start.checked_add(sub.len())? > all.len() {
            return None;
        }
        Some(Region {
            backing: self.clone(),
            start,
            len: sub.len(),
        })
    }

    /// The whole of it as a region.
    pub fn whole(&self) -> Region {
        Region {
            backing: self.clone(),
            start: 0,
            len: self.bytes().len(),
        }
    }
}

/// A byte range of a [`Backing`].
#[derive(Debug, Clone)]
pub struct Region {
    backing: Backing,
    start: usize,
    len: usize,
}

impl Region {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.backing.bytes()[self.start..self.start + self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A sub-range, if it lies inside.
    pub fn sub(&self, start: u64, len: u64) -> Option<Region> {
        let end = start.checked_add(len)?;
        if end > self.len as u64 {
            return None;
        }
        Some(Region {
            backing: self.backing.clone(),
            start: self.start + start as usize,
            len: len as usize,
        })
    }

    /// The bytes this is a range of.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The file and offset of the first byte, when the bytes are a file's own.
    fn file_span(&self) -> Option<(&File, u64)> {
        self.backing
            .file
            .as_ref()
            .map(|(f, off)| (&**f, off + self.start as u64))
    }
}

/// Where a tensor's elements live: `element(i0..ik)` is at element index
/// `offset + Σ ij·strides[j]` of `region`, each element `elem_size` bytes, byte-swapped when
/// `swap` (big-endian source).
#[derive(Debug, Clone)]
pub struct ByteSource {
    region: Region,
    elem_size: usize,
    offset: u64,
    shape: Vec<u64>,
    strides: Vec<u64>,
    swap: bool,
    numel: u64,
    /// `Some`: `region` holds ggml blocks of this type, decoded to f32 elements when read.
    blocks: Option<GgmlType>,
}

/// Shortest run of a strided view read with `pread` rather than from the memory map.
const PREAD_RUN: usize = 4096;

/// C-contiguous strides (in elements) of a shape.
pub fn c_strides(shape: &[u64]) -> Vec<u64> {
    let mut strides = vec![0u64; shape.len()];
    let mut acc = 1u64;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

/// Fortran (column-major) strides of a shape.
pub fn f_strides(shape: &[u64]) -> Vec<u64> {
    let mut strides = vec![0u64; shape.len()];
    let mut acc = 1u64;
    for i in 0..shape.len() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

/// Number of elements of a shape, overflow-checked.
pub fn numel(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

/// What [`ViewError::Overflow`] says overflowed.
const ELEMENTS: &str = "the number of elements";
const BYTES: &str = "the byte size";
const EXTENT: &str = "the extent of the strides";

/// Why a view of a tensor's bytes cannot be made: its geometry does not fit its bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Shape and strides of different lengths.
    #[error("size has {shape} dimensions but stride has {stride}")]
    Rank {
        /// Dimensions of the shape.
        shape: usize,
        /// Dimensions of the strides.
        stride: usize,
    },
    /// A count or size past 64 bits.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// Elements addressed outside the bytes.
    #[error(
        "the view (offset {offset}, size {shape:?}, stride {strides:?}) reaches byte {end} but its storage has only {len} bytes"
    )]
    OutOfBounds {
        /// Offset in elements.
        offset: u64,
        /// Shape.
        shape: Vec<u64>,
        /// Strides in elements.
        strides: Vec<u64>,
        /// Byte the view reaches.
        end: u64,
        /// Bytes there are.
        len: usize,
    },
    /// Rows that are not whole quantization blocks.
    #[error("a row of {row} values is not whole {ty} blocks of {block}")]
    PartialBlocks {
        /// Values in a row.
        row: u64,
        /// The block type.
        ty: GgmlType,
        /// Values in a block.
        block: u64,
    },
    /// Blocks whose bytes do not match the values they hold.
    #[error("{n} values of {ty} take {want} bytes, the data has {len}")]
    BlockBytes {
        /// Values.
        n: u64,
        /// The block type.
        ty: GgmlType,
        /// Bytes they take.
        want: u64,
        /// Bytes there are.
        len: usize,
    },
    /// A view of quantization blocks in another order (blocks cut rows, not elements).
    #[error("{0} blocks cannot be viewed in another order")]
    Blocks(GgmlType),
    /// A scalar where rows are regrouped.
    #[error("a scalar has no rows to permute")]
    Scalar,
    /// Rows that do not split into the heads' two halves.
    #[error("{rows} rows cannot be split in {n_head} heads of two halves")]
    Heads {
        /// Rows.
        rows: u64,
        /// Heads.
        n_head: u64,
    },
    /// A transpose of a tensor that is not 2-D.
    #[error("a tensor of {0} dimensions is not transposed")]
    NotMatrix(usize),
}

impl ByteSource {
    /// A view over `region`, checked: every element it addresses lies inside the region.
    pub fn new(
        region: Region,
        elem_size: usize,
        offset: u64,
        shape: Vec<u64>,
        strides: Vec<u64>,
        swap: bool,
    ) -> Result<Self, ViewError> {
        if shape.len() != strides.len() {
            return Err(ViewError::Rank {
                shape: shape.len(),
                stride: strides.len(),
            });
        }
        let n = numel(&shape).ok_or(ViewError::Overflow(ELEMENTS))?;
        let es = elem_size as u64;
        n.checked_mul(es).ok_or(ViewError::Overflow(BYTES))?;
        if n > 0 {
            let mut last = offset;
            for (&d, &s) in shape.iter().zip(&strides) {
                last = (d - 1)
                    .checked_mul(s)
                    .and_then(|x| last.checked_add(x))
                    .ok_or(ViewError::Overflow(EXTENT))?;
            }
            let end = last
                .checked_add(1)
                .and_then(|x| x.checked_mul(es))
                .ok_or(ViewError::Overflow(EXTENT))?;
            if end > region.len() as u64 {
                return Err(ViewError::OutOfBounds {
                    offset,
                    shape,
                    strides,
                    end,
                    len: region.len(),
                });
            }
        }
        Ok(ByteSource {
            region,
            elem_size,
            offset,
            shape,
            strides,
            swap: swap && elem_size > 1,
            numel: n,
            blocks: None,
        })
    }

    /// Whole ggml blocks of `ty` holding a tensor of `shape` (C order: the row, which the
    /// blocks cut, is the last dimension). The region must be exactly the blocks.
    pub fn ggml_blocks(region: Region, ty: GgmlType, shape: Vec<u64>) -> Result<Self, ViewError> {
        let n = numel(&shape).ok_or(ViewError::Overflow(ELEMENTS))?;
        let row = shape.last().copied().unwrap_or(1);
        let bs = ty.block_size() as u64;
        if !row.is_multiple_of(bs) {
            return Err(ViewError::PartialBlocks { row, ty, block: bs });
        }
        let want = (n / bs)
            .checked_mul(ty.type_size() as u64)
            .ok_or(ViewError::Overflow(BYTES))?;
        if want != region.len() as u64 {
            return Err(ViewError::BlockBytes {
                n,
                ty,
                want,
                len: region.len(),
            });
        }
        n.checked_mul(4).ok_or(ViewError::Overflow(BYTES))?;
        Ok(ByteSource {
            region,
            elem_size: 4,
            offset: 0,
            strides: c_strides(&shape),
            shape,
            swap: false,
            numel: n,
            blocks: Some(ty),
        })
    }

    /// For a source of ggml blocks: their type, and the blocks as a plain run of bytes.
    pub fn ggml_block_bytes(&self) -> Option<(GgmlType, ByteSource)> {
        let ty = self.blocks?;
        let len = self.region.len() as u64;
        let raw = ByteSource::contiguous(self.region.clone(), 1, vec![len]).ok()?;
        Some((ty, raw))
    }

    /// Refuse a re-laid-out view of blocks: the blocks cut rows, not elements.
    fn plain(&self) -> Result<(), ViewError> {
        match self.blocks {
            Some(ty) => Err(ViewError::Blocks(ty)),
            None => Ok(()),
        }
    }

    /// A C-contiguous little-endian run of bytes holding `shape`.
    pub fn contiguous(
        region: Region,
        elem_size: usize,
        shape: Vec<u64>,
    ) -> Result<Self, ViewError> {
        let strides = c_strides(&shape);
        Self::new(region, elem_size, 0, shape, strides, false)
    }

    /// Number of elements.
    pub fn numel(&self) -> u64 {
        self.numel
    }

    /// The same elements with the first dimension regrouped as llama.cpp's converter does for
    /// rotary embeddings (`LlamaModel.permute`): rows `[n_head, 2, half, …]` read as
    /// `[n_head, half, 2, …]`. Only the view changes; the output is the permuted tensor in C
    /// order, of the same shape.
    pub fn rope_permuted(&self, n_head: u64) -> Result<ByteSource, ViewError> {
        self.plain()?;
        let rows = *self.shape.first().ok_or(ViewError::Scalar)?;
        if n_head == 0 || rows % (2 * n_head) != 0 {
            return Err(ViewError::Heads { rows, n_head });
        }
        let half = rows / n_head / 2;
        let s0 = self.strides[0];
        let mut shape = vec![n_head, half, 2];
        let mut strides = vec![2 * half * s0, s0, half * s0];
        shape.extend_from_slice(&self.shape[1..]);
        strides.extend_from_slice(&self.strides[1..]);
        ByteSource::new(
            self.region.clone(),
            self.elem_size,
            self.offset,
            shape,
            strides,
            self.swap,
        )
    }

    /// The same 2-D tensor transposed (`data.transpose(1, 0)`): the view's strides swapped.
    pub fn transposed(&self) -> Result<ByteSource, ViewError> {
        self.plain()?;
        if self.shape.len() != 2 {
            return Err(ViewError::NotMatrix(self.shape.len()));
        }
        ByteSource::new(
            self.region.clone(),
            self.elem_size,
            self.offset,
            vec![self.shape[1], self.shape[0]],
            vec![self.strides[1], self.strides[0]],
            self.swap,
        )
    }

    /// Bytes of the contiguous output.
    pub fn nbytes(&self) -> u64 {
        self.numel * self.elem_size as u64
    }

    /// Bytes per element.
    pub fn elem_size(&self) -> usize {
        self.elem_size
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// True when the source bytes are already the C-contiguous little-endian output.
    pub fn is_contiguous(&self) -> bool {
        self.run_dims().0 == 0 && !self.swap && self.blocks.is_none()
    }

    /// `(outer dims, run length in elements)`: the innermost dimensions that are laid out
    /// contiguously collapse into runs; the remaining outer dimensions are iterated.
    fn run_dims(&self) -> (usize, u64) {
        let mut run = 1u64;
        let mut k = self.shape.len();
        while k > 0 {
            let d = self.shape[k - 1];
            if d == 1 || self.strides[k - 1] == run {
                run *= d;
                k -= 1;
            } else {
                break;
            }
        }
        (k, run)
    }

    /// Feed the tensor's bytes, C-contiguous and little-endian, to `sink` in chunks of at most
    /// about `chunk` bytes (a single element run may be handed over whole when it is a slice of
    /// the input and needs no swapping).
    pub fn for_each_chunk(
        &self,
        chunk: usize,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.numel == 0 {
            return Ok(());
        }
        if let Some(ty) = self.blocks {
            return self.decode_blocks(ty, chunk, sink);
        }
        let es = self.elem_size;
        let data = self.region.bytes();
        let (outer, run) = self.run_dims();
        let run_bytes = run as usize * es;
        if outer == 0 {
            let start = self.offset as usize * es;
            let all = &data[start..start + run_bytes];
            if !self.swap {
                for piece in all.chunks(chunk.max(es)) {
                    sink(piece)?;
                }
            } else {
                let step = (chunk.max(es) / es) * es;
                let mut buf = Vec::with_capacity(step.min(all.len()));
                for piece in all.chunks(step) {
                    buf.clear();
                    buf.extend_from_slice(piece);
                    swap_in_place(&mut buf, es);
                    sink(&buf)?;
                }
            }
            return Ok(());
        }
        // Iterate the outer dimensions in C order, one run at a time.
        let swap = self.swap;
        let mut flush = |buf: &mut Vec<u8>| -> io::Result<()> {
            if swap {
                swap_in_place(buf, es);
            }
            sink(buf)?;
            buf.clear();
            Ok(())
        };
        // Runs of a file-backed view long enough to be worth a system call are read with
        // `pread`, so a view read in another order than the file's (the rows of a rotary
        // regrouping) does not map the input's pages into the process's memory.
        let file = self
            .region
            .backing
            .file
            .as_ref()
            .filter(|_| run_bytes >= PREAD_RUN)
            .map(|(f, base)| (f, base + self.region.start as u64));
        let mut idx = vec![0u64; outer];
        let mut buf: Vec<u8> = Vec::with_capacity(chunk.max(run_bytes).min(1 << 26));
        let mut pos = self.offset;
        loop {
            if !buf.is_empty() && buf.len() + run_bytes > chunk {
                flush(&mut buf)?;
            }
            let start = pos as usize * es;
            match file {
                Some((f, base)) => {
                    let old = buf.len();
                    buf.resize(old + run_bytes, 0);
                    f.read_exact_at(&mut buf[old..], base + start as u64)?;
                }
                None => buf.extend_from_slice(&data[start..start + run_bytes]),
            }
            // Advance the odometer over the outer dimensions.
            let mut k = outer;
            loop {
                if k == 0 {
                    return flush(&mut buf);
                }
                k -= 1;
                idx[k] += 1;
                // Wrapping: an intermediate position may pass the last element, the result
                // (checked against the region when the view was made) does not.
                pos = pos.wrapping_add(self.strides[k]);
                if idx[k] < self.shape[k] {
                    break;
                }
                pos = pos.wrapping_sub(self.strides[k].wrapping_mul(idx[k]));
                idx[k] = 0;
            }
        }
    }

    /// Decode the blocks to f32 (little-endian) in pieces of about `chunk` bytes.
    fn decode_blocks(
        &self,
        ty: GgmlType,
        chunk: usize,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let blocks_per_piece = (chunk / (ty.block_size() * 4)).max(1);
        let mut out = Vec::with_capacity(blocks_per_piece * ty.block_size() * 4);
        for piece in self
            .region
            .bytes()
            .chunks(blocks_per_piece * ty.type_size())
        {
            let vals = crate::quant::dequantize(ty, piece)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            out.clear();
            out.extend(vals.iter().flat_map(|v| v.to_le_bytes()));
            sink(&out)?;
        }
        Ok(())
    }

    /// When the output bytes are one span of a file as they stand (contiguous, no swapping):
    /// the file, the offset of the first byte and the length.
    pub fn file_range(&self) -> Option<(&Arc<File>, u64, u64)> {
        if !self.is_contiguous() || self.numel == 0 {
            return None;
        }
        let (file, base) = self.region.backing.file.as_ref()?;
        let start = base + self.region.start as u64 + self.offset * self.elem_size as u64;
        Some((file, start, self.nbytes()))
    }

    /// Write the tensor's bytes to `out` (a file positioned at the tensor's place). Contiguous
    /// spans that are a file's own bytes are copied file to file by the kernel; everything else
    /// goes through a bounded buffer.
    pub fn write_to<W: Write>(&self, out: &mut W, chunk: usize) -> io::Result<()> {
        if self.numel == 0 {
            return Ok(());
        }
        if self.is_contiguous() {
            if let Some((file, off)) = self.region.file_span() {
                let start = off + self.offset * self.elem_size as u64;
                let mut src = file;
                src.seek(SeekFrom::Start(start))?;
                let n = io::copy(&mut io::Read::take(src, self.nbytes()), out)?;
                if n != self.nbytes() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the input file is shorter than when it was read",
                    ));
                }
                return Ok(());
            }
        }
        self.for_each_chunk(chunk, &mut |b| out.write_all(b))
    }
}

/// Reverse the bytes of every `size`-byte element.
pub fn swap_in_place(buf: &mut [u8], size: usize) {
    if size > 1 {
        for e in buf.chunks_exact_mut(size) {
            e.reverse();
        }
    }
}

/// One tensor ready to be written.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// Flattened name (`state_dict.layers.0.weight`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, C order (`[]` for a 0-d scalar).
    pub shape: Vec<u64>,
    /// Where the bytes are.
    pub source: ByteSource,
}

impl Tensor {
    /// Bytes of the tensor's data.
    pub fn nbytes(&self) -> u64 {
        self.source.nbytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_blocks_must_be_whole_rows_of_exactly_their_bytes() {
        let region = |n: usize| Backing::owned(vec![0u8; n]).whole();
        // Two rows of 64 Q8_0 values: 4 blocks of 34 bytes.
        let s = ByteSource::ggml_blocks(region(136), GgmlType::Q8_0, vec![2, 64]).unwrap();
        assert_eq!((s.numel(), s.nbytes()), (128, 512));
        assert!(!s.is_contiguous() && s.file_range().is_none());
        assert_eq!(collect(&s, 100), vec![0u8; 512]);
        let (ty, raw) = s.ggml_block_bytes().unwrap();
        assert_eq!((ty, raw.nbytes()), (GgmlType::Q8_0, 136));
        assert!(s.transposed().is_err() && s.rope_permuted(1).is_err());
        let short = ByteSource::ggml_blocks(region(135), GgmlType::Q8_0, vec![2, 64]);
        assert!(short.unwrap_err().to_string().contains("take 136 bytes"));
        let cut = ByteSource::ggml_blocks(region(136), GgmlType::Q8_0, vec![4, 32, 1]);
        assert!(cut.unwrap_err().to_string().contains("not whole"));
        let huge = ByteSource::ggml_blocks(region(0), GgmlType::Q8_0, vec![u64::MAX, 64]);
        assert!(huge.is_err());
    }

    fn collect(s: &ByteSource, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        s.for_each_chunk(chunk, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn transposed_view_is_gathered_in_c_order() {
        let b = Backing::owned((0u8..12).collect());
        // 3x4 matrix, its transpose 4x3 with strides (1, 4).
        let s = ByteSource::new(b.whole(), 1, 0, vec![4, 3], vec![1, 4], false).unwrap();
        assert!(!s.is_contiguous());
        for chunk in [1, 2, 5, 100] {
            assert_eq!(
                collect(&s, chunk),
                vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
            );
        }
    }

    #[test]
    fn offset_rows_and_swap() {
        let b = Backing::owned((0u8..16).collect());
        let s = ByteSource::new(b.whole(), 2, 2, vec![2, 2], vec![4, 1], true).unwrap();
        assert_eq!(collect(&s, 3), vec![5, 4, 7, 6, 13, 12, 15, 14]);
    }

    #[test]
    fn out_of_bounds_is_an_error() {
        let b = Backing::owned(vec![0; 16]);
        assert!(ByteSource::new(b.whole(), 4, 1, vec![4], vec![1], false).is_err());
        assert!(ByteSource::new(b.whole(), 4, 0, vec![2, 2], vec![u64::MAX, 1], false).is_err());
        assert!(ByteSource::new(b.whole(), 4, u64::MAX, vec![1], vec![1], false).is_err());
        // Empty tensors read nothing, wherever they point.
        assert!(ByteSource::new(b.whole(), 4, 100, vec![0, 3], vec![3, 1], false).is_ok());
    }

    #[test]
    fn expanded_stride_zero() {
        let b = Backing::owned(vec![1, 2]);
        let s = ByteSource::new(b.whole(), 1, 0, vec![3, 2], vec![0, 1], false).unwrap();
        assert_eq!(collect(&s, 4), vec![1, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn scalar() {
        let b = Backing::owned(vec![9, 8, 7, 6]);
        let s = ByteSource::new(b.whole(), 4, 0, vec![], vec![], false).unwrap();
        assert!(s.is_contiguous());
        assert_eq!(collect(&s, 64), vec![9, 8, 7, 6]);
    }
}

//! Chunked storage: the chunked form of the data layout message (versions 1–4, spec IV.A.2.i)
//! and the chunk indexes it names, walked only when a dataset's data are read (a scan reads the
//! message, never the index): version 1 B-trees (node type 1, what the library writes unless
//! asked for newer formats), a single chunk, the implicit index (chunks back to back), fixed
//! arrays and extensible arrays (one unlimited dimension under libver latest), paged or not, and
//! version 2 B-trees (record types 10 and 11).
//!
//! Every chunk found is checked against the dataset: its offsets must be multiples of the chunk
//! dimensions and inside the dataset's extent, and no chunk may be listed twice. Walks are
//! bounded (tree depth, nodes visited once, the number of chunks).

use super::{Cur, Hdf5Error, Reader, Result, UNDEFINED};
use std::collections::HashSet;

/// Most chunks one dataset may have (stored or not).
pub const MAX_CHUNKS: u64 = 1 << 24;

/// How the chunks of a dataset are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkIndex {
    /// A version 1 B-tree (layout messages 1–3).
    BtreeV1,
    /// One chunk, the whole dataset; its stored size and filter mask when filtered.
    Single {
        /// Stored (filtered) size.
        filtered_size: Option<u64>,
        /// Filter mask.
        mask: u32,
    },
    /// Chunks back to back from the index address, never filtered.
    Implicit,
    /// A fixed array.
    FixedArray {
        /// Log2 of the elements per data block page.
        page_bits: u8,
    },
    /// An extensible array.
    ExtensibleArray,
    /// A version 2 B-tree.
    BtreeV2,
}

impl ChunkIndex {
    /// A name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ChunkIndex::BtreeV1 => "version 1 B-tree",
            ChunkIndex::Single { .. } => "single chunk",
            ChunkIndex::Implicit => "implicit",
            ChunkIndex::FixedArray { .. } => "fixed array",
            ChunkIndex::ExtensibleArray => "extensible array",
            ChunkIndex::BtreeV2 => "version 2 B-tree",
        }
    }
}

/// The chunked form of a data layout message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked {
    /// Chunk dimensions, in elements (one per dataset dimension).
    pub dims: Vec<u64>,
    /// Element size the layout records (the last chunk dimension on disk).
    pub element_size: u64,
    /// The index.
    pub index: ChunkIndex,
    /// The index's address (undefined: no chunk was ever written).
    pub address: u64,
    /// Layout version 4 flag: partial edge chunks are stored unfiltered.
    pub unfiltered_edges: bool,
}

/// One stored chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chunk {
    /// Position in chunks along each dimension.
    pub scaled: Vec<u64>,
    /// File address.
    pub addr: u64,
    /// Stored size.
    pub size: u64,
    /// Filters skipped (bit i: filter i).
    pub mask: u32,
}

/// The dataset's chunk grid: chunks per dimension over its extent and over its maximum extent
/// (which the implicit and fixed array indexes are laid out by).
pub(super) struct Grid {
    pub dims: Vec<u64>,
    pub chunk: Vec<u64>,
    pub count: Vec<u64>,
    pub max_count: Vec<u64>,
    /// Dimensions without a maximum.
    pub unlimited: Vec<bool>,
    /// Bytes of one whole chunk.
    pub chunk_bytes: u64,
}

impl Grid {
    pub fn new(dims: &[u64], max_dims: &[u64], layout: &Chunked) -> Result<Grid> {
        if layout.dims.len() != dims.len() || max_dims.len() != dims.len() {
            return Err(Hdf5Error::Invalid(format!(
                "chunks of rank {} for a dataset of rank {}",
                layout.dims.len(),
                dims.len()
            )));
        }
        if layout.dims.contains(&0) {
            return Err(Hdf5Error::Invalid("a chunk dimension of 0".into()));
        }
        let count: Vec<u64> = dims
            .iter()
            .zip(&layout.dims)
            .map(|(&d, &c)| d.div_ceil(c))
            .collect();
        let max_count: Vec<u64> = max_dims
            .iter()
            .zip(&layout.dims)
            .zip(dims)
            .map(|((&m, &c), &d)| if m == UNDEFINED { d.max(1) } else { m.max(d) }.div_ceil(c))
            .collect();
        let chunk_bytes = layout
            .dims
            .iter()
            .try_fold(layout.element_size, |a, &x| a.checked_mul(x))
            .filter(|&b| b <= u32::MAX as u64)
            .ok_or_else(|| Hdf5Error::Invalid("a chunk of 4 GiB or more".into()))?;
        let grid = Grid {
            dims: dims.to_vec(),
            chunk: layout.dims.clone(),
            count,
            max_count,
            unlimited: max_dims.iter().map(|&m| m == UNDEFINED).collect(),
            chunk_bytes,
        };
        if grid.total(&grid.count).is_none() {
            return Err(too_many_chunks());
        }
        Ok(grid)
    }

    /// The chunks of the maximum extent, which the implicit and fixed array indexes hold one
    /// entry each for.
    pub fn max_total(&self) -> Result<u64> {
        self.total(&self.max_count).ok_or_else(too_many_chunks)
    }

    /// The number of chunks of a grid of `count` chunks per dimension, if within the limit.
    pub fn total(&self, count: &[u64]) -> Option<u64> {
        count
            .iter()
            .try_fold(1u64, |a, &x| a.checked_mul(x))
            .filter(|&n| n <= MAX_CHUNKS)
    }

    /// Row-major position of `scaled` in a grid of `count` chunks per dimension.
    pub fn linear(scaled: &[u64], count: &[u64]) -> u64 {
        // Callers check `scaled` against `count`, and that `count`'s total is within MAX_CHUNKS
        // (`count` itself always is; `max_count` through `max_total`).
        scaled.iter().zip(count).fold(0, |a, (&s, &n)| a * n + s)
    }

    /// Every chunk position of the dataset's extent, in row-major order.
    pub fn positions(&self) -> impl Iterator<Item = Vec<u64>> + '_ {
        let total = self.total(&self.count).unwrap_or(0);
        (0..total).map(move |mut i| {
            let mut s = vec![0; self.count.len()];
            for (k, &n) in self.count.iter().enumerate().rev() {
                s[k] = i % n;
                i /= n;
            }
            s
        })
    }
}

fn too_many_chunks() -> Hdf5Error {
    Hdf5Error::Limit(format!("more than {MAX_CHUNKS} chunks in one dataset"))
}

/// The chunked form of a data layout message, after its version byte and class (versions 3
/// and 4) or after the fields common to all classes (versions 1 and 2, `v12` holding the
/// dimensionality and the index address).
pub(super) fn layout(
    r: &Reader<'_>,
    c: &mut Cur<'_>,
    version: u8,
    v12: Option<(usize, u64)>,
) -> Result<Chunked> {
    let bad = |m: String| Hdf5Error::Invalid(format!("chunked layout: {m}"));
    let (ndims, address, enc, flags) = match v12 {
        Some((ndims, address)) => (ndims, address, 4, 0),
        None if version == 3 => {
            let ndims = c.u8()? as usize;
            (ndims, r.offset(c)?, 4, 0)
        }
        None => {
            let flags = c.u8()?;
            if flags & !3 != 0 {
                return Err(bad(format!("flags {flags:#x}")));
            }
            let ndims = c.u8()? as usize;
            let enc = c.u8()? as usize;
            if !(1..=8).contains(&enc) {
                return Err(bad(format!("dimensions of {enc} bytes")));
            }
            (ndims, UNDEFINED, enc, flags)
        }
    };
    // The chunk's dimensions, then the element size as a last dimension.
    if !(2..=33).contains(&ndims) {
        return Err(bad(format!("{ndims} dimensions")));
    }
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        dims.push(c.uint(enc)?);
    }
    let element_size = dims.pop().unwrap_or(0);
    if version < 4 {
        return Ok(Chunked {
            dims,
            element_size,
            index: ChunkIndex::BtreeV1,
            address,
            unfiltered_edges: false,
        });
    }
    let index = match c.u8()? {
        1 => {
            if flags & 2 != 0 {
                let size = r.length(c)?;
                let mask = c.u32()?;
                ChunkIndex::Single {
                    filtered_size: Some(size),
                    mask,
                }
            } else {
                ChunkIndex::Single {
                    filtered_size: None,
                    mask: 0,
                }
            }
        }
        2 => ChunkIndex::Implicit,
        3 => ChunkIndex::FixedArray { page_bits: c.u8()? },
        4 => {
            c.skip(5)?; // maximum bits, index block elements, pointers and elements minima, page bits
            ChunkIndex::ExtensibleArray
        }
        5 => {
            c.skip(6)?; // node size, split and merge percentages
            ChunkIndex::BtreeV2
        }
        k => return Err(bad(format!("chunk index type {k}"))),
    };
    let address = r.offset(c)?;
    Ok(Chunked {
        dims,
        element_size,
        index,
        address,
        unfiltered_edges: flags & 1 != 0,
    })
}

/// A fill value message (new form, type 5, versions 1–3) or the old one (type 4): the fill
/// value's bytes when one is defined (empty: the library's default, zeros).
pub(super) fn fill_value(c: &mut Cur<'_>, old: bool) -> Result<Option<Vec<u8>>> {
    let sized = |c: &mut Cur<'_>| -> Result<Option<Vec<u8>>> {
        let n = c.u32()? as usize;
        Ok(Some(c.bytes(n)?.to_vec()))
    };
    if old {
        return sized(c);
    }
    match c.u8()? {
        1 => {
            c.skip(3)?; // allocation time, write time, defined
            sized(c)
        }
        2 => {
            c.skip(2)?; // allocation time, write time
            if c.u8()? != 0 {
                sized(c)
            } else {
                Ok(None)
            }
        }
        3 => {
            let flags = c.u8()?;
            if flags & 0x20 != 0 {
                sized(c)
            } else {
                Ok(None)
            }
        }
        v => Err(Hdf5Error::Invalid(format!(
            "fill value message version {v}"
        ))),
    }
}

impl<'a> Reader<'a> {
    /// The stored chunks of a chunked dataset, checked against its grid.
    pub(super) fn chunks(
        &self,
        layout: &Chunked,
        grid: &Grid,
        filtered: bool,
    ) -> Result<Vec<Chunk>> {
        if layout.address == UNDEFINED {
            return Ok(Vec::new());
        }
        let mut found = match &layout.index {
            ChunkIndex::BtreeV1 => self.btree_v1_chunks(layout.address, grid)?,
            ChunkIndex::Single {
                filtered_size,
                mask,
            } => vec![Chunk {
                scaled: vec![0; grid.dims.len()],
                addr: layout.address,
                size: filtered_size.unwrap_or(grid.chunk_bytes),
                mask: *mask,
            }],
            ChunkIndex::Implicit => {
                if filtered {
                    return Err(Hdf5Error::Invalid(
                        "an implicit chunk index for a filtered dataset".into(),
                    ));
                }
                grid.max_total()?; // the linear positions below fit
                let mut out = Vec::new();
                for scaled in grid.positions() {
                    let i = Grid::linear(&scaled, &grid.max_count);
                    let addr = i
                        .checked_mul(grid.chunk_bytes)
                        .and_then(|o| o.checked_add(layout.address))
                        .ok_or_else(|| Hdf5Error::Invalid("chunk address overflows".into()))?;
                    out.push(Chunk {
                        scaled,
                        addr,
                        size: grid.chunk_bytes,
                        mask: 0,
                    });
                }
                out
            }
            ChunkIndex::FixedArray { .. } => {
                self.fixed_array_chunks(layout.address, grid, filtered)?
            }
            ChunkIndex::BtreeV2 => self.btree_v2_chunks(layout.address, grid, filtered)?,
            ChunkIndex::ExtensibleArray => {
                self.extensible_array_chunks(layout.address, grid, filtered)?
            }
        };
        // Each chunk once, inside the extent.
        let mut seen = HashSet::with_capacity(found.len());
        for ch in &found {
            if ch.scaled.iter().zip(&grid.count).any(|(&s, &n)| s >= n) {
                return Err(Hdf5Error::Invalid(format!(
                    "a chunk at {:?} (in chunks) lies outside the dataset's {:?}",
                    ch.scaled, grid.dims
                )));
            }
            if !seen.insert(Grid::linear(&ch.scaled, &grid.count)) {
                return Err(Hdf5Error::Invalid(format!(
                    "the chunk at {:?} (in chunks) is listed twice",
                    ch.scaled
                )));
            }
        }
        found.sort_by_key(|c| c.addr);
        Ok(found)
    }

    /// A version 1 B-tree of chunks (node type 1): each key holds the chunk's stored size, its
    /// filter mask and its offset in elements (one more dimension, the element, always 0).
    fn btree_v1_chunks(&self, root: u64, grid: &Grid) -> Result<Vec<Chunk>> {
        let rank = grid.dims.len();
        let max = grid.total(&grid.count).unwrap_or(0);
        let mut out = Vec::new();
        let mut nodes = vec![(root, None::<u8>)];
        let mut seen = HashSet::new();
        while let Some((node, parent_level)) = nodes.pop() {
            if !seen.insert(node) || seen.len() as u64 > max.saturating_mul(2).saturating_add(1) {
                return Err(Hdf5Error::Invalid(format!(
                    "chunk B-tree node {node} is reached twice, or the tree has more nodes than chunks"
                )));
            }
            let (mut c, level, entries) = self.btree_v1_node(node, 1, parent_level)?;
            for _ in 0..entries {
                let size = c.u32()? as u64;
                let mask = c.u32()?;
                let mut scaled = Vec::with_capacity(rank);
                for &d in &grid.chunk {
                    let offset = c.uint(8)?;
                    if offset % d != 0 {
                        return Err(Hdf5Error::Invalid(format!(
                            "a chunk offset {offset} that is not a multiple of the chunk's {d}"
                        )));
                    }
                    scaled.push(offset / d);
                }
                if c.uint(8)? != 0 {
                    return Err(Hdf5Error::Invalid(
                        "a chunk key with a non-zero element offset".into(),
                    ));
                }
                let child = self.offset(&mut c)?;
                if level > 0 {
                    nodes.push((child, Some(level)));
                } else {
                    out.push(Chunk {
                        scaled,
                        addr: child,
                        size,
                        mask,
                    });
                    if out.len() as u64 > max {
                        return Err(Hdf5Error::Invalid(format!(
                            "the chunk B-tree lists more than the dataset's {max} chunks"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// A fixed array (`FAHD` header, `FADB` data block, paged when it has more elements than a
    /// page holds): one element per chunk of the maximum extent, in row-major order; an element
    /// is the chunk's address, then for filtered chunks its stored size and filter mask.
    fn fixed_array_chunks(&self, addr: u64, grid: &Grid, filtered: bool) -> Result<Vec<Chunk>> {
        let mut c = self.from(addr, "fixed array header")?;
        if c.bytes(4)? != b"FAHD" {
            return Err(Hdf5Error::Invalid(format!(
                "no fixed array header at {addr}"
            )));
        }
        let version = c.u8()?;
        let client = c.u8()?;
        let elem = c.u8()? as usize;
        let page_bits = c.u8()?;
        let count = self.length(&mut c)?;
        let block = self.offset(&mut c)?;
        let want = grid.max_total()?;
        if version != 0 || client != filtered as u8 || count != want || page_bits >= 32 {
            return Err(Hdf5Error::Invalid(format!(
                "fixed array at {addr}: version {version}, class {client}, {count} elements for \
                 {want} chunks, page bits {page_bits}"
            )));
        }
        let element = self.chunk_element(elem, filtered, grid)?;
        if block == UNDEFINED {
            return Ok(Vec::new());
        }
        let mut c = self.from(block, "fixed array data block")?;
        if c.bytes(4)? != b"FADB"
            || c.u8()? != 0
            || c.u8()? != client
            || self.offset(&mut c)? != addr
        {
            return Err(Hdf5Error::Invalid(format!(
                "no fixed array data block of the header at {addr} at {block}"
            )));
        }
        // Where element i is: in the block, or (more elements than a page holds) in page
        // i / page, after the block's prefix (page bitmap, checksum); each page ends with a
        // checksum. None: its page was never written.
        let page = 1u64 << page_bits;
        let elem64 = elem as u64;
        let mut prefix = c.pos as u64 - self.base;
        let bitmap = if count > page {
            let pages = count.div_ceil(page);
            let bitmap = c.bytes(pages.div_ceil(8) as usize)?;
            prefix = c.pos as u64 - self.base + 4; // after the prefix's checksum
            Some(bitmap)
        } else {
            None
        };
        let locate = |i: u64| -> Option<Option<u64>> {
            match bitmap {
                None => Some(Some(prefix.checked_add(i.checked_mul(elem64)?)?)),
                Some(bits) => {
                    let p = i / page;
                    let written = bits.get((p / 8) as usize)? & (0x80 >> (p % 8)) != 0;
                    let page_bytes = page.checked_mul(elem64)?.checked_add(4)?;
                    let at = prefix
                        .checked_add(p.checked_mul(page_bytes)?)?
                        .checked_add((i % page).checked_mul(elem64)?)?;
                    Some(written.then_some(at))
                }
            }
        };
        let mut out = Vec::new();
        for scaled in grid.positions() {
            let i = Grid::linear(&scaled, &grid.max_count);
            let at = locate(i)
                .ok_or_else(|| Hdf5Error::Invalid(format!("fixed array element {i} overflows")))?;
            if let Some(at) = at {
                let e = self.at(at, elem64, "fixed array element")?;
                if let Some(ch) = element(&e.data[e.pos..e.end], scaled)? {
                    out.push(ch);
                }
            }
        }
        Ok(out)
    }

    /// An extensible array (`EAHD` header, `EAIB` index block, `EASB` super blocks, `EADB` data
    /// blocks): one element per chunk, indexed row-major with the unlimited dimension moved
    /// first. The first elements are in the index block; the rest in data blocks of growing
    /// size, whose addresses are in the index block (the first super blocks' worth) or in super
    /// blocks; data blocks of more elements than a page holds are paged.
    fn extensible_array_chunks(
        &self,
        addr: u64,
        grid: &Grid,
        filtered: bool,
    ) -> Result<Vec<Chunk>> {
        let bad = |m: String| Hdf5Error::Invalid(format!("extensible array at {addr}: {m}"));
        let mut c = self.from(addr, "extensible array header")?;
        if c.bytes(4)? != b"EAHD" {
            return Err(bad("no header signature".into()));
        }
        let version = c.u8()?;
        let client = c.u8()?;
        let elem = c.u8()? as u64;
        let max_bits = c.u8()? as u32;
        let index_elems = c.u8()? as u64;
        let block_min = c.u8()? as u64;
        let pointers_min = c.u8()? as u64;
        let page_bits = c.u8()? as u32;
        c.skip(6 * self.sl)?; // statistics
        let index_block = self.offset(&mut c)?;
        if version != 0
            || client != filtered as u8
            || !(1..=64).contains(&max_bits)
            || !block_min.is_power_of_two()
            || !pointers_min.is_power_of_two()
            || page_bits >= 32
        {
            return Err(bad(format!(
                "version {version}, class {client}, {max_bits} bits, data blocks of at least \
                 {block_min}, super blocks of at least {pointers_min}, page bits {page_bits}"
            )));
        }
        let element = self.chunk_element(elem as usize, filtered, grid)?;
        if index_block == UNDEFINED {
            return Ok(Vec::new());
        }
        // Super block s holds 2^(s/2) data blocks of 2^((s+1)/2) × block_min elements.
        let super_blocks = (max_bits + 1)
            .checked_sub(block_min.ilog2())
            .ok_or_else(|| bad("fewer bits than the smallest data block".into()))?;
        let in_index = 2 * pointers_min.ilog2(); // super blocks whose data blocks the index block lists
        if in_index > super_blocks {
            return Err(bad(format!(
                "{in_index} super blocks of {super_blocks} in the index block"
            )));
        }
        let mut info = Vec::new(); // (data blocks, elements each, first element, first data block)
        let (mut start, mut first_block) = (0u64, 0u64);
        for s in 0..super_blocks {
            let blocks = 1u64 << (s / 2);
            let each = block_min
                .checked_shl(s.div_ceil(2))
                .filter(|&n| n >> s.div_ceil(2) == block_min)
                .unwrap_or(u64::MAX);
            info.push((blocks, each, start, first_block));
            start = start.saturating_add(blocks.saturating_mul(each));
            first_block += blocks;
        }
        let dblock_addrs = 2 * (pointers_min - 1);
        let off_size = max_bits.div_ceil(8) as u64;
        let so = self.so as u64;
        let mut c = self.from(index_block, "extensible array index block")?;
        if c.bytes(4)? != b"EAIB"
            || c.u8()? != 0
            || c.u8()? != client
            || self.offset(&mut c)? != addr
        {
            return Err(bad(format!("no index block at {index_block}")));
        }
        let elems_at = c.pos as u64 - self.base;
        let dblocks_at = elems_at + index_elems * elem;
        let sblocks_at = dblocks_at + dblock_addrs * so;
        let address_at = |at: u64| -> Result<u64> {
            let mut c = self.at(at, so, "extensible array address")?;
            self.offset(&mut c)
        };
        let page = 1u64 << page_bits;
        let overflow = || bad("a block address overflows".into());
        // Where element `e` of the data block at `block` (`each` elements) is, checking the
        // block's signature. A data block of more than a page's elements is paged: after its
        // prefix (which then ends with a checksum), pages of `page` elements and a checksum each.
        let in_block = |block: u64, each: u64, e: u64| -> Result<Option<u64>> {
            if block == UNDEFINED {
                return Ok(None);
            }
            let mut c = self.at(block, 6, "extensible array data block")?;
            if c.bytes(4)? != b"EADB" || c.u8()? != 0 || c.u8()? != client {
                return Err(bad(format!("no data block at {block}")));
            }
            let prefix = 6 + so + off_size;
            let at = if each > page {
                let page_bytes = page * elem + 4;
                (e / page)
                    .checked_mul(page_bytes)
                    .and_then(|o| o.checked_add((e % page) * elem + prefix + 4))
            } else {
                e.checked_mul(elem).and_then(|o| o.checked_add(prefix))
            };
            at.and_then(|o| o.checked_add(block))
                .map(Some)
                .ok_or_else(overflow)
        };
        let locate = |i: u64| -> Result<Option<u64>> {
            if i < index_elems {
                return Ok(Some(elems_at + i * elem));
            }
            let j = i - index_elems;
            let s = (j / block_min).saturating_add(1).ilog2() as usize;
            let &(blocks, each, start, first) = info
                .get(s)
                .ok_or_else(|| bad(format!("element {i} past its last super block")))?;
            let k = j
                .checked_sub(start)
                .ok_or_else(|| bad(format!("element {i} before its super block")))?;
            let (d, e) = (k / each, k % each);
            if s < in_index as usize {
                if each > page {
                    return Err(Hdf5Error::Unsupported(
                        "paged extensible array data blocks listed in the index block".into(),
                    ));
                }
                // Within the index block's list: d < the super block's data blocks.
                let block = address_at(dblocks_at + (first + d) * so)?;
                return in_block(block, each, e);
            }
            let sblock = address_at(sblocks_at + (s as u64 - in_index as u64) * so)?;
            if sblock == UNDEFINED {
                return Ok(None);
            }
            let mut c = self.at(sblock, 6, "extensible array super block")?;
            if c.bytes(4)? != b"EASB" || c.u8()? != 0 || c.u8()? != client {
                return Err(bad(format!("no super block at {sblock}")));
            }
            // After the prefix, for paged data blocks: which pages were written, one bit per page
            // of every data block in turn (high bit first; each block's share of the bytes is
            // rounded up, the bits are not); then the data blocks' addresses.
            let prefix = sblock.checked_add(6 + so + off_size).ok_or_else(overflow)?;
            let pages = if each > page { each / page } else { 0 };
            let bitmap = pages.div_ceil(8);
            if pages > 0 {
                let bit = d
                    .checked_mul(pages)
                    .and_then(|b| b.checked_add(e / page))
                    .ok_or_else(overflow)?;
                let at = prefix.checked_add(bit / 8).ok_or_else(overflow)?;
                let byte = self.at(at, 1, "extensible array page bitmap")?.u8()?;
                if byte & (0x80 >> (bit % 8)) == 0 {
                    return Ok(None); // a page never written
                }
            }
            let at = blocks
                .checked_mul(bitmap)
                .and_then(|o| o.checked_add(d.checked_mul(so)?))
                .and_then(|o| o.checked_add(prefix))
                .ok_or_else(overflow)?;
            in_block(address_at(at)?, each, e)
        };
        // Row-major over the chunk grid with the unlimited dimension first.
        let unlimited = grid.unlimited.iter().position(|&u| u).unwrap_or(0);
        let mut order: Vec<usize> = (0..grid.dims.len()).filter(|&k| k != unlimited).collect();
        order.insert(0, unlimited);
        let counts: Vec<u64> = order.iter().map(|&k| grid.max_count[k]).collect();
        let mut out = Vec::new();
        for scaled in grid.positions() {
            let swizzled: Vec<u64> = order.iter().map(|&k| scaled[k]).collect();
            // The first count never multiplies: the unlimited dimension's bound does not matter.
            let i = swizzled
                .iter()
                .zip(&counts)
                .fold(0u64, |a, (&s, &n)| a.saturating_mul(n).saturating_add(s));
            if let Some(at) = locate(i)? {
                let e = self.at(at, elem, "extensible array element")?;
                if let Some(ch) = element(&e.data[e.pos..e.end], scaled)? {
                    out.push(ch);
                }
            }
        }
        Ok(out)
    }

    /// A version 2 B-tree of chunks: records of type 10 (address, then the scaled offsets) or
    /// 11 (address, stored size, filter mask, scaled offsets).
    fn btree_v2_chunks(&self, addr: u64, grid: &Grid, filtered: bool) -> Result<Vec<Chunk>> {
        let rank = grid.dims.len();
        let mut out = Vec::new();
        for (kind, rec) in self.btree_records(addr)? {
            if kind != 10 + filtered as u8 {
                return Err(Hdf5Error::Invalid(format!(
                    "a version 2 B-tree of type {kind} as a chunk index"
                )));
            }
            let head = rec.len().checked_sub(8 * rank).ok_or_else(|| {
                Hdf5Error::Invalid("a chunk record shorter than its offsets".into())
            })?;
            let element = self.chunk_element(head, filtered, grid)?;
            let mut c = Cur::over(&rec[head..], "chunk record");
            let mut scaled = Vec::with_capacity(rank);
            for _ in 0..rank {
                scaled.push(c.uint(8)?);
            }
            if let Some(ch) = element(&rec[..head], scaled)? {
                out.push(ch);
            }
        }
        Ok(out)
    }

    /// A decoder of `width`-byte chunk entries: the address, then (filtered) the stored size in
    /// the bytes left before a 4-byte filter mask.
    #[allow(clippy::type_complexity)]
    fn chunk_element(
        &self,
        width: usize,
        filtered: bool,
        grid: &Grid,
    ) -> Result<impl Fn(&[u8], Vec<u64>) -> Result<Option<Chunk>> + '_> {
        let so = self.so;
        let size_len = if filtered {
            width.checked_sub(so + 4).filter(|n| (1..=8).contains(n))
        } else {
            (width == so).then_some(0)
        }
        .ok_or_else(|| Hdf5Error::Invalid(format!("chunk index entries of {width} bytes")))?;
        let whole = grid.chunk_bytes;
        Ok(move |bytes: &[u8], scaled: Vec<u64>| {
            let mut c = Cur::over(bytes, "chunk index entry");
            let addr = self.offset(&mut c)?;
            let (size, mask) = if filtered {
                (c.uint(size_len)?, c.u32()?)
            } else {
                (whole, 0)
            };
            Ok((addr != UNDEFINED).then_some(Chunk {
                scaled,
                addr,
                size,
                mask,
            }))
        })
    }
}

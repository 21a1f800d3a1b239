//! Dense link and attribute storage: the messages of a group with many links (or created with
//! link order tracked) and of an object with many attributes are kept as objects of a fractal
//! heap, found through the heap IDs in the records of a version 2 B-tree (the name index).
//!
//! Read as the HDF5 library reads them (spec III.A.2 and III.G; `H5B2cache.c` for the widths of
//! internal-node child counts, `H5HFdtable.c` for the doubling table). Filtered heaps and huge
//! objects (kept outside the heap's blocks) are not followed: an error, never a silent skip.

use super::{Cur, Hdf5Error, Reader, Result, UNDEFINED};
use std::collections::HashSet;

/// Deepest version 2 B-tree followed.
const MAX_BTREE_DEPTH: u16 = 16;
/// Deepest nesting of fractal heap indirect blocks followed.
const MAX_INDIRECT_DEPTH: usize = 16;

/// A fractal heap: its header fields and every direct block (heap offset, file address, size).
struct Heap {
    id_len: usize,
    offset_size: usize,
    length_size: usize,
    checksummed: bool,
    blocks: Vec<(u64, u64, u64)>,
}

impl<'a> Reader<'a> {
    /// The messages a Link Info or Attribute Info message points to (none when they are kept
    /// in the object header): version, flags, the maximum creation index (`index_len` bytes)
    /// when flag bit 0 is set, then the fractal heap and name-index B-tree addresses.
    pub(super) fn dense_index(
        &self,
        c: &mut Cur<'_>,
        index_len: usize,
        what: &'static str,
    ) -> Result<Vec<&'a [u8]>> {
        c.skip(1)?;
        if c.u8()? & 1 != 0 {
            c.skip(index_len)?;
        }
        let heap = self.offset(c)?;
        let btree = self.offset(c)?;
        if heap == UNDEFINED {
            return Ok(Vec::new());
        }
        self.dense_messages(heap, btree, what)
    }

    /// The messages (link or attribute messages, by `what`) stored in the fractal heap at `heap`
    /// and indexed by the version 2 B-tree at `btree`.
    fn dense_messages(&self, heap: u64, btree: u64, what: &'static str) -> Result<Vec<&'a [u8]>> {
        let heap = self.fractal_heap(heap)?;
        let mut out = Vec::new();
        for record in self.btree_records(btree)? {
            // Name-index records: links (type 5) are hash, heap ID; attributes (type 8) are
            // heap ID, flags, creation order, hash.
            let id = match record.0 {
                5 => record.1.get(4..),
                8 => Some(record.1),
                t => {
                    return Err(Hdf5Error::Unsupported(format!(
                        "{what} indexed by a B-tree of type {t}"
                    )))
                }
            }
            .and_then(|r| r.get(..heap.id_len))
            .ok_or_else(|| Hdf5Error::Invalid(format!("{what}: a B-tree record too short")))?;
            out.push(self.heap_object(&heap, id, what)?);
        }
        Ok(out)
    }

    fn fractal_heap(&self, addr: u64) -> Result<Heap> {
        let mut c = self.from(addr, "fractal heap header")?;
        if c.bytes(4)? != b"FRHP" {
            return Err(Hdf5Error::Invalid(format!("no fractal heap at {addr}")));
        }
        c.skip(1)?; // version
        let id_len = c.u16()? as usize;
        let filters_len = c.u16()?;
        let flags = c.u8()?;
        let max_managed = c.u32()? as u64;
        self.length(&mut c)?; // next huge object id
        self.offset(&mut c)?; // huge objects' B-tree
        self.length(&mut c)?; // free space
        self.offset(&mut c)?; // free-space manager
        for _ in 0..8 {
            self.length(&mut c)?; // managed, allocated, iterator, object and size counts
        }
        let width = c.u16()? as u64;
        let start = self.length(&mut c)?;
        let max_direct = self.length(&mut c)?;
        let max_heap_bits = c.u16()? as u32;
        c.skip(2)?; // starting rows of the root indirect block
        let root = self.offset(&mut c)?;
        let rows = c.u16()? as usize;
        if filters_len != 0 {
            return Err(Hdf5Error::Unsupported(format!(
                "fractal heap at {addr} with I/O filters"
            )));
        }
        let pow2 = |v: u64| v.is_power_of_two() && v >= 8;
        if !pow2(start) || !pow2(max_direct) || max_direct < start || width == 0 || width > 65536 {
            return Err(Hdf5Error::Invalid(format!(
                "fractal heap at {addr}: width {width}, blocks {start}..{max_direct}"
            )));
        }
        if !(1..=64).contains(&max_heap_bits) || id_len < 2 {
            return Err(Hdf5Error::Invalid(format!(
                "fractal heap at {addr}: {max_heap_bits}-bit offsets, {id_len}-byte IDs"
            )));
        }
        let offset_size = max_heap_bits.div_ceil(8) as usize;
        let enc = |v: u64| (v.max(1).ilog2() / 8 + 1) as usize;
        let length_size = (max_direct.ilog2().div_ceil(8) as usize).min(enc(max_managed));
        let mut heap = Heap {
            id_len,
            offset_size,
            length_size,
            checksummed: flags & 0x02 != 0,
            blocks: Vec::new(),
        };
        if root != UNDEFINED {
            if rows == 0 {
                self.direct_block(&mut heap, root, start)?;
            } else {
                let geometry = Geometry {
                    width,
                    start,
                    max_direct_rows: (max_direct.ilog2() - start.ilog2() + 2) as usize,
                };
                let mut seen = HashSet::new();
                self.indirect_block(&mut heap, &geometry, root, rows, 0, &mut seen)?;
            }
        }
        Ok(heap)
    }

    fn direct_block(&self, heap: &mut Heap, addr: u64, size: u64) -> Result<()> {
        let mut c = self.at(addr, size, "fractal heap direct block")?;
        if c.bytes(4)? != b"FHDB" {
            return Err(Hdf5Error::Invalid(format!(
                "no fractal heap direct block at {addr}"
            )));
        }
        c.skip(1 + self.so)?; // version, heap header address
        let offset = c.uint(heap.offset_size)?;
        heap.blocks.push((offset, addr, size));
        Ok(())
    }

    fn indirect_block(
        &self,
        heap: &mut Heap,
        g: &Geometry,
        addr: u64,
        rows: usize,
        depth: usize,
        seen: &mut HashSet<u64>,
    ) -> Result<()> {
        if depth > MAX_INDIRECT_DEPTH || rows > 64 || !seen.insert(addr) {
            return Err(Hdf5Error::Invalid(format!(
                "fractal heap indirect block at {addr}: nested too deep, too many rows or revisited"
            )));
        }
        let mut c = self.from(addr, "fractal heap indirect block")?;
        if c.bytes(4)? != b"FHIB" {
            return Err(Hdf5Error::Invalid(format!(
                "no fractal heap indirect block at {addr}"
            )));
        }
        c.skip(1 + self.so + heap.offset_size)?; // version, heap header, block offset
        for row in 0..rows {
            let size = g.row_block_size(row);
            for _ in 0..g.width {
                let child = self.offset(&mut c)?;
                if child == UNDEFINED {
                    continue;
                }
                if row < g.max_direct_rows {
                    self.direct_block(heap, child, size)?;
                } else {
                    let child_rows = (size.ilog2() - (g.start * g.width).ilog2() + 1) as usize;
                    self.indirect_block(heap, g, child, child_rows, depth + 1, seen)?;
                }
            }
        }
        Ok(())
    }

    /// The bytes of the heap object a heap ID names.
    fn heap_object(&self, heap: &Heap, id: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
        let flags = id[0];
        if flags >> 6 != 0 {
            return Err(Hdf5Error::Invalid(format!(
                "{what}: heap ID version {}",
                flags >> 6
            )));
        }
        match (flags >> 4) & 3 {
            0 => {
                let mut c = Cur {
                    pos: 1,
                    ..Cur::over(id, "heap ID")
                };
                let offset = c.uint(heap.offset_size)?;
                let len = c.uint(heap.length_size)?;
                let (start, addr, size) = heap
                    .blocks
                    .iter()
                    .copied()
                    .find(|&(s, _, z)| offset >= s && offset - s < z)
                    .ok_or_else(|| {
                        Hdf5Error::Invalid(format!("{what}: heap offset {offset} in no block"))
                    })?;
                let within = offset - start;
                let header = 5 + self.so as u64 + heap.offset_size as u64;
                let header = header + if heap.checksummed { 4 } else { 0 };
                if within < header || within.saturating_add(len) > size {
                    return Err(Hdf5Error::Invalid(format!(
                        "{what}: heap object at {offset} of {len} bytes outside its block"
                    )));
                }
                let c = self.at(addr + within, len, "fractal heap object")?;
                Ok(&c.data[c.pos..c.end])
            }
            2 => {
                // Tiny: the object is in the ID itself.
                let (len, from) = if heap.id_len <= 18 {
                    ((flags & 0x0f) as usize + 1, 1)
                } else {
                    let hi = (flags & 0x0f) as usize;
                    ((hi << 8 | *id.get(1).unwrap_or(&0) as usize) + 1, 2)
                };
                id.get(from..from + len)
                    .ok_or_else(|| Hdf5Error::Invalid(format!("{what}: tiny heap object too long")))
            }
            _ => Err(Hdf5Error::Unsupported(format!(
                "{what}: a huge heap object (stored outside the heap)"
            ))),
        }
    }

    /// Every record of the version 2 B-tree at `addr`, with the tree's type.
    pub(super) fn btree_records(&self, addr: u64) -> Result<Vec<(u8, &'a [u8])>> {
        let mut c = self.from(addr, "version 2 B-tree header")?;
        if c.bytes(4)? != b"BTHD" {
            return Err(Hdf5Error::Invalid(format!("no version 2 B-tree at {addr}")));
        }
        c.skip(1)?; // version
        let kind = c.u8()?;
        let node_size = c.u32()? as u64;
        let record_size = c.u16()? as u64;
        let depth = c.u16()?;
        c.skip(2)?; // split and merge percentages
        let root = self.offset(&mut c)?;
        let root_records = c.u16()? as u64;
        if depth > MAX_BTREE_DEPTH || record_size == 0 || node_size < 10 + record_size {
            return Err(Hdf5Error::Invalid(format!(
                "version 2 B-tree at {addr}: depth {depth}, nodes of {node_size}, records of {record_size}"
            )));
        }
        let widths = Widths::new(self.so as u64, node_size, record_size, depth);
        let mut out = Vec::new();
        if root == UNDEFINED {
            return Ok(out);
        }
        let mut seen = HashSet::new();
        let mut stack = vec![(root, root_records, depth)];
        while let Some((node, records, level)) = stack.pop() {
            if !seen.insert(node) {
                return Err(Hdf5Error::Invalid(format!(
                    "B-tree node {node} reached twice"
                )));
            }
            let mut c = self.at(node, node_size, "version 2 B-tree node")?;
            let sig = c.bytes(4)?;
            let expected: &[u8] = if level == 0 { b"BTLF" } else { b"BTIN" };
            if sig != expected {
                return Err(Hdf5Error::Invalid(format!(
                    "version 2 B-tree node at {node} is not a {}",
                    String::from_utf8_lossy(expected)
                )));
            }
            c.skip(2)?; // version, type
            for _ in 0..records {
                out.push((kind, c.bytes(record_size as usize)?));
            }
            if level > 0 {
                for _ in 0..=records {
                    let child = self.offset(&mut c)?;
                    let n = c.uint(widths.nrec)?;
                    if level > 1 {
                        c.uint(widths.cum[level as usize - 1])?;
                    }
                    stack.push((child, n, level - 1));
                }
            }
            if out.len() > super::MAX_OBJECTS {
                return Err(Hdf5Error::Limit("too many B-tree records".into()));
            }
        }
        Ok(out)
    }
}

/// The doubling table's shape.
struct Geometry {
    width: u64,
    start: u64,
    max_direct_rows: usize,
}

impl Geometry {
    /// Size of each block in `row`: the starting size for rows 0 and 1, doubling after.
    fn row_block_size(&self, row: usize) -> u64 {
        if row == 0 {
            self.start
        } else {
            self.start.saturating_mul(1u64 << (row - 1).min(62))
        }
    }
}

/// Byte widths of the child record counts in version 2 B-tree internal nodes.
struct Widths {
    /// Width of a child's record count (from the leaves' capacity).
    nrec: usize,
    /// Width of the total record count below a child, by the child's level.
    cum: Vec<usize>,
}

impl Widths {
    fn new(so: u64, node_size: u64, record_size: u64, depth: u16) -> Self {
        let enc = |v: u64| (v.max(1).ilog2() / 8 + 1) as usize;
        let leaf_max = (node_size - 10) / record_size;
        let nrec = enc(leaf_max);
        let mut cum_max = vec![leaf_max];
        let mut cum = vec![0usize];
        for level in 1..=depth as usize {
            let pointer = so + nrec as u64 + if level > 1 { cum[level - 1] as u64 } else { 0 };
            let max = node_size.saturating_sub(10 + pointer) / (record_size + pointer);
            let total = (max + 1)
                .saturating_mul(cum_max[level - 1])
                .saturating_add(max);
            cum_max.push(total);
            cum.push(enc(total));
        }
        Widths { nrec, cum }
    }
}

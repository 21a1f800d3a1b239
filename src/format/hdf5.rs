//! HDF5 (`.h5`, `.hdf5`, Keras `model.weights.h5`), read without the HDF5 library: the
//! superblock (versions 0–3), object headers (versions 1 and 2, with continuation blocks),
//! groups (symbol tables: version 1 B-trees, symbol nodes and local heaps; link messages),
//! attributes (their strings, fixed-length or variable-length in the global heap) and datasets
//! (datatype, dataspace, layout, external raw storage). Everything that makes the library read
//! outside the file is listed: external links, external raw data files and virtual datasets.
//!
//! Groups with many links and objects with many attributes keep them in fractal heaps indexed
//! by version 2 B-trees (`hdf5/dense.rs`). Structures this reader does not follow (filtered heaps,
//! huge heap objects, shared attribute messages) are errors: a file that cannot be read whole is never reported as
//! read. Every structure is bounds-checked; objects, messages, heap objects and the walk's depth
//! are limited, and every address is visited once (hard links may form cycles).
//!
//! Layout reference: the HDF5 File Format Specification, version 3.0
//! (<https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html>).

use std::collections::{HashMap, HashSet};

mod assemble;
mod chunks;
mod dense;
mod filters;

pub use assemble::read_chunked;
pub use chunks::{ChunkIndex, Chunked, MAX_CHUNKS};
pub use filters::{fletcher32, Filter};

/// The signature at the start of the superblock.
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// Most objects (groups, datasets, named datatypes) walked.
pub const MAX_OBJECTS: usize = 1_000_000;
/// Most messages in one object header, continuation blocks included.
pub const MAX_MESSAGES: usize = 1 << 16;
/// Deepest group nesting followed.
pub const MAX_DEPTH: usize = 256;
/// Most bytes of attribute strings kept for one file.
pub const MAX_STRING_BYTES: usize = 256 << 20;
/// Most symbol-table B-tree levels.
const MAX_BTREE_LEVEL: u8 = 64;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Hdf5Error {
    /// A structure runs past the end of the file.
    #[error("{what} at offset {at} runs past the end of the file")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Its file offset.
        at: u64,
    },
    /// A structure is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A valid structure this reader does not follow.
    #[error("{0} (not read by this scan)")]
    Unsupported(String),
    /// A limit was reached.
    #[error("{0}")]
    Limit(String),
}

type Result<T> = std::result::Result<T, Hdf5Error>;

/// A reference to data outside the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// An external link: the library opens `file` and follows `path` in it.
    Link {
        /// The target file as written.
        file: String,
        /// The object path in it.
        path: String,
    },
    /// A dataset whose raw data lives in `file` (external storage).
    RawFile {
        /// The file as written.
        file: String,
    },
    /// A virtual dataset mapping data from `file` (`"."` is the file itself).
    Virtual {
        /// The first source file named (the mapping's other entries are not decoded).
        file: String,
        /// Number of mappings.
        mappings: u64,
    },
}

/// Where an [`External`] was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAt {
    /// The object's path (`/group/dataset`).
    pub path: String,
    /// What it refers to.
    pub external: External,
}

/// An attribute's value, as far as a scan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// A string or an array of strings (fixed-length or variable-length).
    Strings(Vec<String>),
    /// Anything else (numbers, compounds, references).
    Other,
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The object's path.
    pub object: String,
    /// The attribute's name.
    pub name: String,
    /// Its value.
    pub value: AttrValue,
}

/// Element type of a dataset, as far as extraction needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// IEEE float of `size` bytes.
    Float {
        /// Bytes per element.
        size: u32,
        /// Big-endian.
        big_endian: bool,
    },
    /// Integer of `size` bytes.
    Int {
        /// Bytes per element.
        size: u32,
        /// Signed.
        signed: bool,
        /// Big-endian.
        big_endian: bool,
    },
    /// Anything else (strings, compounds, …), `size` bytes each.
    Other {
        /// Bytes per element.
        size: u32,
    },
}

/// Where a dataset's raw data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// In the object header (file offset and length).
    Compact {
        /// File offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// One contiguous run (`None`: never written, all fill value).
    Contiguous {
        /// File offset.
        offset: Option<u64>,
        /// Length.
        len: u64,
    },
    /// Chunks, found through an index that only [`read_chunked`] walks.
    Chunked(Chunked),
    /// A virtual dataset.
    Virtual,
}

/// One dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Its path.
    pub path: String,
    /// Element type.
    pub element: Element,
    /// Dimensions (empty: a scalar).
    pub shape: Vec<u64>,
    /// Maximum dimensions (`u64::MAX`: unlimited); the dimensions when not recorded.
    pub max_shape: Vec<u64>,
    /// Where its data is.
    pub layout: Layout,
    /// Whether a filter pipeline (compression) applies.
    pub filtered: bool,
    /// The filter pipeline, in the order the filters were applied when writing.
    pub filters: Vec<Filter>,
    /// The fill value's bytes when one is defined (empty: the default, zeros).
    pub fill: Option<Vec<u8>>,
    /// Whether its raw data is in external files.
    pub external: bool,
}

/// What a file holds, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Superblock version.
    pub version: u8,
    /// Groups walked (the root included).
    pub groups: usize,
    /// Datasets, in walk order.
    pub datasets: Vec<Dataset>,
    /// Attributes of every object.
    pub attributes: Vec<Attribute>,
    /// Soft links (names within the file; not followed).
    pub soft_links: usize,
    /// References outside the file.
    pub externals: Vec<ExternalAt>,
}

impl Contents {
    /// The string value of attribute `name` on the object at `object`, when it holds exactly one.
    pub fn string_attribute(&self, object: &str, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.object == object && a.name == name)
            .and_then(|a| match &a.value {
                AttrValue::Strings(v) if v.len() == 1 => Some(v[0].as_str()),
                _ => None,
            })
    }
}

/// True when `data` starts with the HDF5 signature.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(SIGNATURE)
}

/// Read the file whose superblock is at offset 0.
pub fn read(data: &[u8]) -> Result<Contents> {
    let mut r = Reader::open(data)?;
    let mut out = Contents {
        version: r.version,
        ..Default::default()
    };
    let root = r.root;
    r.walk(root, "/".into(), 0, &mut out)?;
    Ok(out)
}

/// The undefined address (all bits set).
const UNDEFINED: u64 = u64::MAX;

struct Reader<'a> {
    data: &'a [u8],
    /// Absolute file offset that addresses are relative to.
    base: u64,
    /// Size of offsets (addresses), bytes.
    so: usize,
    /// Size of lengths, bytes.
    sl: usize,
    version: u8,
    root: u64,
    visited: HashSet<u64>,
    objects: usize,
    string_bytes: usize,
    /// Global heap collections read: address → (index → (offset, length)).
    collections: HashMap<u64, HashMap<u16, (u64, u64)>>,
}

/// A bounds-checked little-endian cursor over the file.
struct Cur<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    /// A cursor over all of `data`.
    fn over(data: &'a [u8], what: &'static str) -> Self {
        Cur {
            data,
            pos: 0,
            end: data.len(),
            what,
        }
    }

    fn err(&self) -> Hdf5Error {
        Hdf5Error::Truncated {
            what: self.what,
            at: self.pos as u64,
        }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.end)
            .ok_or_else(|| self.err())?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(self.uint(2)? as u16)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(self.uint(4)? as u32)
    }
    /// An `n`-byte little-endian unsigned integer (n ≤ 8).
    fn uint(&mut self, n: usize) -> Result<u64> {
        let b = self.bytes(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }
    fn left(&self) -> usize {
        self.end - self.pos
    }
    /// A NUL-terminated string (the NUL consumed).
    fn cstr(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..self.end];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err())?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
}

/// One header message.
struct Message<'a> {
    kind: u16,
    flags: u8,
    data: &'a [u8],
    /// File offset of `data`.
    offset: u64,
}

// Header message types read (HDF5 spec IV.A.2).
const MSG_DATASPACE: u16 = 0x0001;
const MSG_FILL_VALUE_OLD: u16 = 0x0004;
const MSG_FILL_VALUE: u16 = 0x0005;
const MSG_LINK_INFO: u16 = 0x0002;
const MSG_DATATYPE: u16 = 0x0003;
const MSG_LINK: u16 = 0x0006;
const MSG_EXTERNAL_FILES: u16 = 0x0007;
const MSG_LAYOUT: u16 = 0x0008;
const MSG_FILTERS: u16 = 0x000B;
const MSG_ATTRIBUTE: u16 = 0x000C;
const MSG_CONTINUATION: u16 = 0x0010;
const MSG_SYMBOL_TABLE: u16 = 0x0011;
const MSG_ATTRIBUTE_INFO: u16 = 0x0015;
/// Message flag: the message is shared (stored elsewhere, referred to here).
const FLAG_SHARED: u8 = 0x02;

impl<'a> Reader<'a> {
    fn open(data: &'a [u8]) -> Result<Self> {
        if !looks_like(data) {
            return Err(Hdf5Error::Invalid("no HDF5 signature at offset 0".into()));
        }
        let mut c = Cur {
            pos: 8, // after the signature
            ..Cur::over(data, "superblock")
        };
        let version = c.u8()?;
        let (so, sl, base, root);
        match version {
            0 | 1 => {
                c.skip(4)?; // free-space, root symbol table, reserved, shared header versions
                so = c.u8()? as usize;
                sl = c.u8()? as usize;
                c.skip(1 + 2 + 2 + 4)?; // reserved, group K values, consistency flags
                if version == 1 {
                    c.skip(4)?; // indexed storage K, reserved
                }
                check_sizes(so, sl)?;
                base = c.uint(so)?;
                c.skip(3 * so)?; // free space, end of file, driver information
                                 // Root group symbol table entry: link name offset, then the header address.
                c.skip(so)?;
                root = c.uint(so)?;
            }
            2 | 3 => {
                so = c.u8()? as usize;
                sl = c.u8()? as usize;
                c.skip(1)?; // consistency flags
                check_sizes(so, sl)?;
                base = c.uint(so)?;
                c.skip(2 * so)?; // superblock extension, end of file
                root = c.uint(so)?;
            }
            v => return Err(Hdf5Error::Unsupported(format!("superblock version {v}"))),
        }
        if base != 0 && base != UNDEFINED && base as usize >= data.len() {
            return Err(Hdf5Error::Invalid(format!(
                "base address {base} is past the end"
            )));
        }
        Ok(Reader {
            data,
            base: if base == UNDEFINED { 0 } else { base },
            so,
            sl,
            version,
            root,
            visited: HashSet::new(),
            objects: 0,
            string_bytes: 0,
            collections: HashMap::new(),
        })
    }

    /// A cursor over `len` bytes at address `addr` (relative to the base address).
    fn at(&self, addr: u64, len: u64, what: &'static str) -> Result<Cur<'a>> {
        let truncated = Hdf5Error::Truncated { what, at: addr };
        if addr == UNDEFINED {
            return Err(Hdf5Error::Invalid(format!(
                "{what} at the undefined address"
            )));
        }
        let start = self.base.checked_add(addr).ok_or(truncated.clone())?;
        let end = start.checked_add(len).ok_or(truncated.clone())?;
        if end > self.data.len() as u64 {
            return Err(truncated);
        }
        Ok(Cur {
            data: self.data,
            pos: start as usize,
            end: end as usize,
            what,
        })
    }

    /// A cursor from `addr` to the end of the file.
    fn from(&self, addr: u64, what: &'static str) -> Result<Cur<'a>> {
        let start = self.base.saturating_add(addr);
        let len = (self.data.len() as u64).saturating_sub(start);
        self.at(addr, len, what)
    }

    /// The header of a version 1 B-tree node of `kind` (0 groups, 1 chunks) at `node`, below a
    /// node of `parent_level`: a cursor at its first key, its level and its entry count.
    fn btree_v1_node(
        &self,
        node: u64,
        kind: u8,
        parent_level: Option<u8>,
    ) -> Result<(Cur<'a>, u8, u16)> {
        let mut c = self.from(node, "B-tree node")?;
        if c.bytes(4)? != b"TREE" {
            return Err(Hdf5Error::Invalid(format!("no B-tree node at {node}")));
        }
        let (found, level) = (c.u8()?, c.u8()?);
        if found != kind || level > MAX_BTREE_LEVEL || parent_level.is_some_and(|p| level >= p) {
            return Err(Hdf5Error::Invalid(format!(
                "B-tree node {node} of type {found}, level {level}"
            )));
        }
        let entries = c.u16()?;
        c.skip(2 * self.so)?; // siblings
        Ok((c, level, entries))
    }

    fn offset(&self, c: &mut Cur<'_>) -> Result<u64> {
        let v = c.uint(self.so)?;
        Ok(if self.so < 8 && v == (1u64 << (8 * self.so)) - 1 {
            UNDEFINED
        } else {
            v
        })
    }

    fn length(&self, c: &mut Cur<'_>) -> Result<u64> {
        c.uint(self.sl)
    }

    /// The messages of the object header at `addr`.
    fn messages(&self, addr: u64) -> Result<Vec<Message<'a>>> {
        let mut c = self.from(addr, "object header")?;
        let mut out = Vec::new();
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        let mut seen_blocks = HashSet::new();
        if c.bytes(4).ok() == Some(&b"OHDR"[..]) {
            let version = c.u8()?;
            if version != 2 {
                return Err(Hdf5Error::Invalid(format!(
                    "object header version {version} at {addr}"
                )));
            }
            let flags = c.u8()?;
            if flags & 0x20 != 0 {
                c.skip(16)?; // access, modification, change, birth times
            }
            if flags & 0x10 != 0 {
                c.skip(4)?; // attribute storage phase change values
            }
            let size = c.uint(1 << (flags & 3))?;
            let start = (c.pos as u64) - self.base;
            self.block_messages(start, size, Some(flags), &mut out, &mut blocks)?;
            while let Some((a, len)) = blocks.pop() {
                if !seen_blocks.insert(a) {
                    return Err(Hdf5Error::Invalid(format!(
                        "object header at {addr}: continuation block {a} is read twice"
                    )));
                }
                let mut b = self.at(a, len, "continuation block")?;
                if b.bytes(4)? != b"OCHK" {
                    return Err(Hdf5Error::Invalid(format!(
                        "continuation block at {a} has no OCHK signature"
                    )));
                }
                // The block ends with a 4-byte checksum.
                let inner = len.checked_sub(8).ok_or_else(|| {
                    Hdf5Error::Invalid(format!("continuation block at {a} is too short"))
                })?;
                self.block_messages(
                    a.saturating_add(4),
                    inner,
                    Some(flags),
                    &mut out,
                    &mut blocks,
                )?;
            }
        } else {
            let mut c = self.at(addr, 16, "object header")?;
            let version = c.u8()?;
            if version != 1 {
                return Err(Hdf5Error::Invalid(format!(
                    "object header version {version} at {addr}"
                )));
            }
            c.skip(1)?;
            let count = c.u16()? as usize;
            c.skip(4)?; // reference count
            let size = c.u32()? as u64;
            blocks.push((addr.saturating_add(16), size));
            let mut first = true;
            while let Some((a, len)) = blocks.pop() {
                if !first && !seen_blocks.insert(a) {
                    return Err(Hdf5Error::Invalid(format!(
                        "object header at {addr}: continuation block {a} is read twice"
                    )));
                }
                first = false;
                self.block_messages(a, len, None, &mut out, &mut blocks)?;
                if out.len() >= count {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn push_message(
        &self,
        out: &mut Vec<Message<'a>>,
        blocks: &mut Vec<(u64, u64)>,
        m: Message<'a>,
    ) -> Result<()> {
        if out.len() >= MAX_MESSAGES {
            return Err(Hdf5Error::Limit(format!(
                "more than {MAX_MESSAGES} messages in one object header"
            )));
        }
        if m.kind == MSG_CONTINUATION {
            let mut c = Cur::over(m.data, "continuation message");
            let a = self.offset(&mut c)?;
            let len = self.length(&mut c)?;
            blocks.push((a, len));
        }
        out.push(m);
        Ok(())
    }

    /// The messages of one header block: version 1 (`v2_flags` `None`: 8-byte prefixes, type and
    /// size as `u16`) or version 2 (a `u8` type, and creation order when the header tracks it).
    fn block_messages(
        &self,
        addr: u64,
        len: u64,
        v2_flags: Option<u8>,
        out: &mut Vec<Message<'a>>,
        blocks: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        let mut c = self.at(addr, len, "object header messages")?;
        let head = match v2_flags {
            None => 8,
            Some(f) if f & 0x04 != 0 => 6,
            Some(_) => 4,
        };
        while c.left() >= head {
            let kind = if v2_flags.is_none() {
                c.u16()?
            } else {
                c.u8()? as u16
            };
            let size = c.u16()? as usize;
            let flags = c.u8()?;
            match head {
                8 => c.skip(3)?, // reserved
                6 => c.skip(2)?, // creation order
                _ => {}
            }
            let offset = c.pos as u64;
            let data = c.bytes(size)?;
            self.push_message(
                out,
                blocks,
                Message {
                    kind,
                    flags,
                    data,
                    offset,
                },
            )?;
        }
        Ok(())
    }

    /// Walk the object at `addr`, named `path`.
    fn walk(&mut self, addr: u64, path: String, depth: usize, out: &mut Contents) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Hdf5Error::Limit(format!(
                "groups nested deeper than {MAX_DEPTH} at {path}"
            )));
        }
        if !self.visited.insert(addr) {
            return Ok(()); // a hard link to an object already walked
        }
        self.objects += 1;
        if self.objects > MAX_OBJECTS {
            return Err(Hdf5Error::Limit(format!("more than {MAX_OBJECTS} objects")));
        }
        let messages = self.messages(addr)?;
        let mut children: Vec<(String, u64)> = Vec::new();
        let mut is_group = false;
        let mut datatype = None;
        let mut shape = None;
        let mut max_shape = None;
        let mut layout = None;
        let mut filters = None;
        let mut fill = None;
        let mut fill_old = None;
        let mut external = false;
        for m in &messages {
            let shared = m.flags & FLAG_SHARED != 0;
            let mut c = Cur::over(m.data, "header message");
            match m.kind {
                MSG_SYMBOL_TABLE => {
                    is_group = true;
                    let btree = self.offset(&mut c)?;
                    let heap = self.offset(&mut c)?;
                    self.symbol_table(btree, heap, &path, &mut children, out)?;
                }
                MSG_LINK_INFO => {
                    is_group = true;
                    // After the flags: a maximum creation index (8 bytes) when tracked.
                    for m in self.dense_index(&mut c, 8, "dense links")? {
                        let mut lc = Cur::over(m, "link message");
                        self.link(&mut lc, &path, &mut children, out)?;
                    }
                }
                MSG_LINK => {
                    is_group = true;
                    self.link(&mut c, &path, &mut children, out)?;
                }
                MSG_ATTRIBUTE_INFO => {
                    // After the flags: a maximum creation index (2 bytes) when tracked.
                    for m in self.dense_index(&mut c, 2, "dense attributes")? {
                        let mut ac = Cur::over(m, "attribute message");
                        let a = self.attribute(&mut ac, &path)?;
                        out.attributes.push(a);
                    }
                }
                MSG_ATTRIBUTE => {
                    if shared {
                        return Err(Hdf5Error::Unsupported(format!(
                            "{path}: a shared attribute message"
                        )));
                    }
                    let a = self.attribute(&mut c, &path)?;
                    out.attributes.push(a);
                }
                MSG_DATATYPE if !shared => datatype = Some(element(&mut c)?),
                MSG_DATASPACE if !shared => {
                    (shape, max_shape) = dataspace_with_max(&mut c, self.sl)?;
                }
                MSG_LAYOUT => layout = Some(self.layout(&mut c, m.offset, &path, out)?),
                MSG_FILTERS if shared => {
                    return Err(Hdf5Error::Unsupported(format!(
                        "{path}: a shared filter pipeline message"
                    )))
                }
                MSG_FILTERS => filters = Some(filters::pipeline(&mut c)?),
                MSG_FILL_VALUE if !shared => fill = chunks::fill_value(&mut c, false)?,
                MSG_FILL_VALUE_OLD if !shared => fill_old = chunks::fill_value(&mut c, true)?,
                MSG_EXTERNAL_FILES => {
                    external = true;
                    self.external_files(&mut c, &path, out)?;
                }
                _ => {}
            }
        }
        if let Some(layout) = layout {
            let shape = shape.unwrap_or_default();
            let filters = filters.unwrap_or_default();
            out.datasets.push(Dataset {
                path: path.clone(),
                element: datatype.unwrap_or(Element::Other { size: 0 }),
                max_shape: max_shape.unwrap_or_else(|| shape.clone()),
                shape,
                layout,
                filtered: !filters.is_empty(),
                filters,
                fill: fill.or(fill_old),
                external,
            });
        }
        if is_group {
            out.groups += 1;
        }
        // In name order, as the library iterates (H5Ovisit by name): an object reached by two
        // names is reported under the one the library would report.
        children.sort();
        for (name, child) in children {
            let child_path = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            self.walk(child, child_path, depth + 1, out)?;
        }
        Ok(())
    }

    /// A version 1 group: its B-tree's symbol nodes, names from the local heap.
    fn symbol_table(
        &mut self,
        btree: u64,
        heap: u64,
        path: &str,
        children: &mut Vec<(String, u64)>,
        out: &mut Contents,
    ) -> Result<()> {
        let names = self.local_heap(heap)?;
        let mut nodes = vec![(btree, None::<u8>)];
        let mut seen = HashSet::new();
        while let Some((node, parent_level)) = nodes.pop() {
            if !seen.insert(node) {
                return Err(Hdf5Error::Invalid(format!(
                    "{path}: B-tree node {node} is reached twice"
                )));
            }
            let (mut c, level, entries) = self
                .btree_v1_node(node, 0, parent_level)
                .map_err(|e| Hdf5Error::Invalid(format!("{path}: {e}")))?;
            for _ in 0..entries {
                self.length(&mut c)?; // key: heap offset of the greatest name below
                let child = self.offset(&mut c)?;
                if level > 0 {
                    nodes.push((child, Some(level)));
                } else {
                    self.symbol_node(child, names, path, children, out)?;
                }
            }
            if self.objects + children.len() > MAX_OBJECTS {
                return Err(Hdf5Error::Limit(format!("more than {MAX_OBJECTS} objects")));
            }
        }
        Ok(())
    }

    fn symbol_node(
        &mut self,
        addr: u64,
        names: &'a [u8],
        path: &str,
        children: &mut Vec<(String, u64)>,
        out: &mut Contents,
    ) -> Result<()> {
        let mut c = self.from(addr, "symbol table node")?;
        if c.bytes(4)? != b"SNOD" {
            return Err(Hdf5Error::Invalid(format!(
                "{path}: no symbol table node at {addr}"
            )));
        }
        c.skip(2)?; // version, reserved
        let count = c.u16()? as usize;
        for _ in 0..count {
            let name_at = self.offset(&mut c)?;
            let header = self.offset(&mut c)?;
            let cache = c.u32()?;
            c.skip(4 + 16)?; // reserved, scratch pad
            let name = heap_string(names, name_at, path)?;
            if cache == 2 {
                out.soft_links += 1; // a soft link: a path inside the file, not followed
            } else {
                children.push((name, header));
            }
        }
        Ok(())
    }

    /// A local heap's data segment.
    fn local_heap(&self, addr: u64) -> Result<&'a [u8]> {
        let mut c = self.from(addr, "local heap")?;
        if c.bytes(4)? != b"HEAP" {
            return Err(Hdf5Error::Invalid(format!("no local heap at {addr}")));
        }
        c.skip(4)?; // version, reserved
        let size = self.length(&mut c)?;
        self.length(&mut c)?; // free list
        let data = self.offset(&mut c)?;
        let d = self.at(data, size, "local heap data")?;
        Ok(&d.data[d.pos..d.end])
    }

    /// A link message (version 1 groups' successor).
    fn link(
        &mut self,
        c: &mut Cur<'_>,
        path: &str,
        children: &mut Vec<(String, u64)>,
        out: &mut Contents,
    ) -> Result<()> {
        let version = c.u8()?;
        if version != 1 {
            return Err(Hdf5Error::Invalid(format!(
                "{path}: link message version {version}"
            )));
        }
        let flags = c.u8()?;
        let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
        if flags & 0x04 != 0 {
            c.skip(8)?; // creation order
        }
        if flags & 0x10 != 0 {
            c.skip(1)?; // character set
        }
        let name_len = c.uint(1 << (flags & 3))? as usize;
        let name = String::from_utf8_lossy(c.bytes(name_len)?).into_owned();
        match kind {
            0 => children.push((name, self.offset(c)?)),
            1 => out.soft_links += 1,
            64 => {
                let len = c.u16()? as usize;
                let value = c.bytes(len)?;
                let mut v = Cur {
                    pos: 1, // version and flags
                    ..Cur::over(value, "external link")
                };
                if value.is_empty() {
                    return Err(Hdf5Error::Invalid(format!(
                        "{path}/{name}: empty external link"
                    )));
                }
                let file = v.cstr()?;
                let target = v.cstr().unwrap_or_default();
                out.externals.push(ExternalAt {
                    path: join(path, &name),
                    external: External::Link { file, path: target },
                });
            }
            k => {
                // User-defined link classes (65–255) need a registered handler to resolve.
                return Err(Hdf5Error::Unsupported(format!(
                    "{}: link of user-defined class {k}",
                    join(path, &name)
                )));
            }
        }
        Ok(())
    }

    fn attribute(&mut self, c: &mut Cur<'_>, path: &str) -> Result<Attribute> {
        let version = c.u8()?;
        let flags = c.u8()?; // reserved in version 1
        let name_len = c.u16()? as usize;
        let type_len = c.u16()? as usize;
        let space_len = c.u16()? as usize;
        if version == 3 {
            c.skip(1)?; // name character set
        }
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        if !(1..=3).contains(&version) {
            return Err(Hdf5Error::Invalid(format!(
                "{path}: attribute message version {version}"
            )));
        }
        let raw_name = c.bytes(pad(name_len))?;
        let name = String::from_utf8_lossy(&raw_name[..name_len.min(raw_name.len())])
            .trim_end_matches('\0')
            .to_string();
        let type_bytes = c.bytes(pad(type_len))?;
        let space_bytes = c.bytes(pad(space_len))?;
        if version >= 2 && flags & 0x03 != 0 {
            // A shared datatype or dataspace: the value is not needed to judge the file unless
            // it is a string, which shared types are not in the files this reads.
            return Ok(Attribute {
                object: path.into(),
                name,
                value: AttrValue::Other,
            });
        }
        let mut t = Cur::over(type_bytes, "attribute datatype");
        let dtype = datatype(&mut t)?;
        let mut s = Cur::over(space_bytes, "attribute dataspace");
        let count = element_count(&dataspace(&mut s, self.sl)?)?;
        let value = match dtype.string {
            Some(StringKind::Fixed) => {
                let size = dtype.size as usize;
                let total = count
                    .checked_mul(size as u64)
                    .filter(|&t| t <= c.left() as u64)
                    .ok_or_else(|| c.err())?;
                self.charge(total as usize)?;
                let raw = c.bytes(total as usize)?;
                let strings = if size == 0 {
                    vec![String::new(); count as usize]
                } else {
                    raw.chunks(size)
                        .map(|s| {
                            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                            String::from_utf8_lossy(&s[..end]).trim_end().to_string()
                        })
                        .collect()
                };
                AttrValue::Strings(strings)
            }
            Some(StringKind::Variable) => {
                let each = 4 + self.so + 4;
                if count.saturating_mul(each as u64) > c.left() as u64 {
                    return Err(c.err());
                }
                let mut strings = Vec::new();
                for _ in 0..count {
                    let len = c.u32()? as u64;
                    let collection = self.offset(c)?;
                    let index = c.u32()?;
                    if len == 0 && collection == UNDEFINED {
                        strings.push(String::new());
                        continue;
                    }
                    let bytes = self.global_heap_object(collection, index)?;
                    let bytes = &bytes[..(len as usize).min(bytes.len())];
                    self.charge(bytes.len())?;
                    strings.push(String::from_utf8_lossy(bytes).into_owned());
                }
                AttrValue::Strings(strings)
            }
            None => AttrValue::Other,
        };
        Ok(Attribute {
            object: path.into(),
            name,
            value,
        })
    }

    fn charge(&mut self, n: usize) -> Result<()> {
        self.string_bytes = self.string_bytes.saturating_add(n);
        if self.string_bytes > MAX_STRING_BYTES {
            return Err(Hdf5Error::Limit(format!(
                "more than {MAX_STRING_BYTES} bytes of attribute strings"
            )));
        }
        Ok(())
    }

    /// Object `index` of the global heap collection at `addr`.
    fn global_heap_object(&mut self, addr: u64, index: u32) -> Result<&'a [u8]> {
        if !self.collections.contains_key(&addr) {
            let objects = self.global_heap(addr)?;
            self.collections.insert(addr, objects);
        }
        let (offset, len) = u16::try_from(index)
            .ok()
            .and_then(|i| self.collections[&addr].get(&i).copied())
            .ok_or_else(|| {
                Hdf5Error::Invalid(format!(
                    "global heap collection at {addr} has no object {index}"
                ))
            })?;
        let c = self.at(offset, len, "global heap object")?;
        Ok(&c.data[c.pos..c.end])
    }

    fn global_heap(&self, addr: u64) -> Result<HashMap<u16, (u64, u64)>> {
        let mut c = self.from(addr, "global heap collection")?;
        if c.bytes(4)? != b"GCOL" {
            return Err(Hdf5Error::Invalid(format!(
                "no global heap collection at {addr}"
            )));
        }
        c.skip(4)?; // version, reserved
        let size = self.length(&mut c)?;
        let header = 8 + self.sl as u64;
        let body = size.checked_sub(header).ok_or_else(|| {
            Hdf5Error::Invalid(format!("global heap collection at {addr} of size {size}"))
        })?;
        let mut c = self.at(addr.saturating_add(header), body, "global heap collection")?;
        let mut objects = HashMap::new();
        while c.left() >= 8 + self.sl {
            let index = c.u16()?;
            c.skip(6)?; // reference count, reserved
            let len = self.length(&mut c)?;
            if index == 0 {
                break; // free space: the rest of the collection
            }
            let offset = c.pos as u64 - self.base;
            let padded = len.checked_add(7).map(|l| l & !7).ok_or_else(|| c.err())?;
            if padded > c.left() as u64 {
                return Err(c.err());
            }
            c.skip(padded as usize)?;
            objects.insert(index, (offset, len));
        }
        Ok(objects)
    }

    fn layout(
        &mut self,
        c: &mut Cur<'_>,
        message_at: u64,
        path: &str,
        out: &mut Contents,
    ) -> Result<Layout> {
        let version = c.u8()?;
        match version {
            1 | 2 => {
                let rank = c.u8()? as usize;
                let class = c.u8()?;
                c.skip(5)?;
                let addr = if class != 0 {
                    Some(self.offset(c)?)
                } else {
                    None
                };
                if class == 2 {
                    let addr = addr.unwrap_or(UNDEFINED);
                    let chunked = chunks::layout(self, c, version, Some((rank, addr)))?;
                    return Ok(Layout::Chunked(chunked));
                }
                c.skip(4 * rank)?;
                match class {
                    0 => {
                        let len = c.u32()? as u64;
                        let offset = message_at + c.pos as u64;
                        c.skip(len as usize)?;
                        Ok(Layout::Compact { offset, len })
                    }
                    1 => Ok(Layout::Contiguous {
                        offset: addr
                            .filter(|&a| a != UNDEFINED)
                            .map(|a| a.saturating_add(self.base)),
                        len: 0,
                    }),
                    k => Err(Hdf5Error::Invalid(format!("{path}: layout class {k}"))),
                }
            }
            3..=5 => {
                let class = c.u8()?;
                match class {
                    0 => {
                        let len = c.u16()? as u64;
                        let offset = message_at + c.pos as u64;
                        c.skip(len as usize)?;
                        Ok(Layout::Compact { offset, len })
                    }
                    1 => {
                        let addr = self.offset(c)?;
                        let len = self.length(c)?;
                        Ok(Layout::Contiguous {
                            offset: (addr != UNDEFINED).then(|| addr.saturating_add(self.base)),
                            len,
                        })
                    }
                    2 => Ok(Layout::Chunked(chunks::layout(self, c, version, None)?)),
                    3 if version >= 4 => {
                        let heap = self.offset(c)?;
                        let index = c.u32()?;
                        let (file, mappings) = self.virtual_source(heap, index, path)?;
                        out.externals.push(ExternalAt {
                            path: path.into(),
                            external: External::Virtual { file, mappings },
                        });
                        Ok(Layout::Virtual)
                    }
                    k => Err(Hdf5Error::Invalid(format!("{path}: layout class {k}"))),
                }
            }
            v => Err(Hdf5Error::Invalid(format!(
                "{path}: layout message version {v}"
            ))),
        }
    }

    /// The first source file of a virtual dataset's mapping list, and the number of mappings.
    fn virtual_source(&mut self, heap: u64, index: u32, path: &str) -> Result<(String, u64)> {
        let block = self.global_heap_object(heap, index)?;
        let mut c = Cur::over(block, "virtual dataset mapping");
        let version = c.u8()?;
        if version > 1 {
            return Err(Hdf5Error::Unsupported(format!(
                "{path}: virtual dataset mapping version {version}"
            )));
        }
        let count = self.length(&mut c)?;
        if count == 0 {
            return Ok((".".into(), 0));
        }
        if version == 1 {
            c.skip(1)?; // flags: whether the names are shared with an earlier entry
        }
        Ok((c.cstr()?, count))
    }

    /// External raw data files (their names are in a local heap).
    fn external_files(&mut self, c: &mut Cur<'_>, path: &str, out: &mut Contents) -> Result<()> {
        c.skip(4)?; // version, reserved
        c.skip(2)?; // allocated slots
        let used = c.u16()?;
        let heap = self.offset(c)?;
        let names = self.local_heap(heap)?;
        for _ in 0..used {
            let name_at = self.length(c)?;
            c.skip(2 * self.sl)?; // offset in the file, size
            out.externals.push(ExternalAt {
                path: path.into(),
                external: External::RawFile {
                    file: heap_string(names, name_at, path)?,
                },
            });
        }
        Ok(())
    }
}

fn check_sizes(so: usize, sl: usize) -> Result<()> {
    for (what, n) in [("offsets", so), ("lengths", sl)] {
        if ![2, 4, 8].contains(&n) {
            return Err(Hdf5Error::Invalid(format!("size of {what} is {n}")));
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path == "/" {
        format!("/{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// The NUL-terminated string at `at` in a local heap's data.
fn heap_string(heap: &[u8], at: u64, path: &str) -> Result<String> {
    let rest = usize::try_from(at)
        .ok()
        .and_then(|a| heap.get(a..))
        .ok_or_else(|| Hdf5Error::Invalid(format!("{path}: name offset {at} outside its heap")))?;
    let n = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Hdf5Error::Invalid(format!("{path}: unterminated name in a local heap")))?;
    Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
}

/// How a datatype holds strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringKind {
    Fixed,
    Variable,
}

/// The parts of a datatype message a scan uses.
struct Datatype {
    class: u8,
    bits: u32,
    size: u32,
    string: Option<StringKind>,
}

fn datatype(c: &mut Cur<'_>) -> Result<Datatype> {
    let b0 = c.u8()?;
    let class = b0 & 0x0f;
    let bits = c.uint(3)? as u32;
    let size = c.u32()?;
    let string = match class {
        3 => Some(StringKind::Fixed),
        9 if bits & 0x0f == 1 => Some(StringKind::Variable),
        _ => None,
    };
    Ok(Datatype {
        class,
        bits,
        size,
        string,
    })
}

fn element(c: &mut Cur<'_>) -> Result<Element> {
    let t = datatype(c)?;
    let big_endian = t.bits & 1 != 0;
    Ok(match t.class {
        0 => Element::Int {
            size: t.size,
            signed: t.bits & 0x08 != 0,
            big_endian,
        },
        1 => Element::Float {
            size: t.size,
            big_endian,
        },
        _ => Element::Other { size: t.size },
    })
}

/// A dataspace's dimensions (empty for a scalar; `None` for the null dataspace).
fn dataspace(c: &mut Cur<'_>, sl: usize) -> Result<Option<Vec<u64>>> {
    Ok(dataspace_with_max(c, sl)?.0)
}

/// A dataspace's dimensions and its maximum dimensions when recorded (`u64::MAX`: unlimited).
/// Dimensions, `None` when absent.
type Dims = Option<Vec<u64>>;

fn dataspace_with_max(c: &mut Cur<'_>, sl: usize) -> Result<(Dims, Dims)> {
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    let flags = c.u8()?; // bit 0: maximum dimensions present
    let null = match version {
        1 => {
            c.skip(5)?;
            false
        }
        2 => c.u8()? == 2,
        v => return Err(Hdf5Error::Invalid(format!("dataspace version {v}"))),
    };
    if rank > 32 {
        return Err(Hdf5Error::Invalid(format!("dataspace of rank {rank}")));
    }
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(c.uint(sl)?);
    }
    let mut max = None;
    if flags & 1 != 0 && !null {
        let mut m = Vec::with_capacity(rank);
        for _ in 0..rank {
            let v = c.uint(sl)?;
            m.push(if sl < 8 && v == (1u64 << (8 * sl)) - 1 {
                u64::MAX
            } else {
                v
            });
        }
        max = Some(m);
    }
    Ok(((!null).then_some(dims), max))
}

fn element_count(dims: &Option<Vec<u64>>) -> Result<u64> {
    match dims {
        None => Ok(0),
        Some(d) => d.iter().try_fold(1u64, |acc, &x| {
            acc.checked_mul(x)
                .ok_or_else(|| Hdf5Error::Invalid("dataspace element count overflows".into()))
        }),
    }
}

impl Dataset {
    /// Number of elements.
    pub fn elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &x| a.checked_mul(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_hdf5() {
        assert!(matches!(read(b"PK\x03\x04"), Err(Hdf5Error::Invalid(_))));
    }

    #[test]
    fn truncated_superblock_is_an_error() {
        let mut d = SIGNATURE.to_vec();
        d.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8]);
        assert!(matches!(read(&d), Err(Hdf5Error::Truncated { .. })));
    }

    #[test]
    fn odd_offset_sizes_are_refused() {
        let mut d = SIGNATURE.to_vec();
        d.extend_from_slice(&[2, 3, 8, 0]);
        d.resize(64, 0);
        assert!(matches!(read(&d), Err(Hdf5Error::Invalid(_))));
    }
}

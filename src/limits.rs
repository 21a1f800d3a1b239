//! Budgets: hard limits that bound time and memory on hostile input.
//!
//! Every limit has a default that a real model never comes near; exceeding one ends that part of
//! the scan with a clear finding (never a panic, never unbounded memory), and the file is then at
//! least suspicious.

/// All budgets of one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Opcodes executed per file, over all its pickle streams.
    pub max_ops: u64,
    /// Symbolic values alive per file.
    pub max_nodes: usize,
    /// Memo entries per pickle stream.
    pub max_memo: usize,
    /// Depth of the MARK stack (unclosed MARKs).
    pub max_marks: usize,
    /// Values on the stack at once.
    pub max_stack: usize,
    /// Pickle streams per file (concatenated pickles, nested object arrays).
    pub max_streams: usize,
    /// Nesting of containers inside containers (zip in zip, pickle in npy in npz).
    pub max_container_depth: usize,
    /// Bytes produced by decompressing one compressed stream or member.
    pub max_decompressed: u64,
    /// Members of one archive.
    pub max_members: usize,
    /// Characters of one rendered call in a report.
    pub max_render: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 200_000_000,
            max_nodes: 8_000_000,
            max_memo: 4_000_000,
            max_marks: 20_000,
            max_stack: 4_000_000,
            max_streams: 10_000,
            max_container_depth: 8,
            max_decompressed: 4 << 30,
            max_members: 100_000,
            max_render: 400,
        }
    }
}

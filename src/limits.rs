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
    /// Bytes produced by decompressing one compressed stream or member, and by all of a file's
    /// streams and members together. Decompressed bytes are held in memory while scanned.
    pub max_decompressed: u64,
    /// Compression ratio allowed above [`Limits::ratio_floor`]: one stream or member may inflate
    /// to at most `max(ratio_floor, max_ratio × compressed size)` bytes (see
    /// [`Limits::inflate_budget`]). Real model data (floats, integers, pickled objects) compresses
    /// 1.1–20×; deflate tops out near 1032× and xz goes far beyond, which only bombs and arrays of
    /// a repeated constant reach.
    pub max_ratio: u64,
    /// Output every stream or member may reach whatever its ratio, so that small, highly
    /// compressible files (an empty model, a config) are never flagged.
    pub ratio_floor: u64,
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
            max_ratio: 100,
            ratio_floor: 64 << 20,
            max_members: 100_000,
            max_render: 400,
        }
    }
}

impl Limits {
    /// Output budget for one stream or member of `compressed` bytes: the ratio cap
    /// (`max(ratio_floor, max_ratio × compressed)`), never above `max_decompressed`. A
    /// decompression bomb thus stops after at most ~100× its own size (64 MiB for small ones)
    /// instead of filling memory up to `max_decompressed`.
    pub fn inflate_budget(&self, compressed: u64) -> u64 {
        self.ratio_floor
            .max(compressed.saturating_mul(self.max_ratio))
            .min(self.max_decompressed)
    }
}

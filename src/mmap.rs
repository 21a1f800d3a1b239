//! Read-only access to a file's bytes: memory-mapped when large, read into memory when small.
//!
//! Scanning a multi-gigabyte checkpoint only needs its headers, its central directory and its
//! pickles; mapping the file lets the scanner skip tensor data without ever reading it from disk.
//! This module holds the only `unsafe` code of the crate.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::path::Path;

/// Files up to this size are read into memory instead of mapped: for small files `read` costs
/// less than setting up a mapping, and it removes the truncation hazard described in
/// [`Input::open`].
pub const READ_THRESHOLD: u64 = 1 << 20;

/// Most bytes read from something that is not a regular file (a pipe, standard input, a
/// device): such input is held in memory, and `/dev/zero` never ends.
pub const MAX_STREAM: u64 = 1 << 30;

/// The bytes of one input file.
pub struct Input {
    backing: Backing,
}

enum Backing {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Input {
    /// Open `path` read-only and give access to all its bytes.
    ///
    /// Regular files larger than [`READ_THRESHOLD`] are memory-mapped; small files and anything
    /// that is not a regular file (pipes, character devices) are read into memory. The file is
    /// never written to.
    ///
    /// Limitation: if another process truncates a mapped file while it is being scanned, touching a
    /// page past the new end raises `SIGBUS` and ends the process (this is how every
    /// mmap-based reader behaves, ripgrep and torch's own `mmap=True` load included). The risk is
    /// limited by (1) reading small files instead of mapping them, (2) touching only the parts of
    /// a large file the scan needs (headers, central directory, pickles), each once, so the window
    /// is short. Scanning files that are being rewritten at the same time is not supported.
    pub fn open(path: &Path) -> io::Result<Input> {
        Self::open_with_file(path).map(|(input, _)| input)
    }

    /// [`Input::open`], also giving the handle the bytes were mapped or read from: ranges read
    /// through it later come from the same file, not from one put at the path since.
    pub fn open_with_file(path: &Path) -> io::Result<(Input, File)> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::other("is a directory"));
        }
        if !meta.is_file() {
            return Ok((Self::read_stream(&file)?, file));
        }
        if meta.len() <= READ_THRESHOLD {
            return Ok((Self::read_all(&file, meta.len())?, file));
        }
        // SAFETY: `Mmap::map` is unsafe because the compiler cannot see that the mapped bytes stay
        // valid and unchanged while borrowed. Soundness here rests on:
        // * the mapping is read-only (PROT_READ) and we never create a mutable view, so nothing in
        //   this process writes to it;
        // * every consumer treats the bytes as untrusted input: all parsing is bounds-checked and
        //   no invariant is derived from a byte being stable between two reads, so a concurrent
        //   writer can at worst change the scan's answer, exactly as if the file had been changed
        //   before the scan (no undefined behaviour follows from reading changed bytes of a
        //   `[u8]`, which has no validity invariant beyond being initialised);
        // * the mapping lives inside `Input` and every borrow of it is tied to `&self`, so it is
        //   never unmapped while a slice of it is alive;
        // * a concurrent truncation raises SIGBUS rather than producing undefined reads; see the
        //   limitation documented above.
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        // The scan jumps over tensor data: no read-ahead around the pages it touches, and no
        // huge mappings (the kernel would otherwise map a whole 2 MiB page-cache folio for one
        // touched byte, which shows as resident memory).
        let _ = map.advise(memmap2::Advice::Random);
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::NoHugePage);
        let input = Input {
            backing: Backing::Mapped(map),
        };
        Ok((input, file))
    }

    /// Wrap bytes already in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Input {
        Input {
            backing: Backing::Owned(bytes),
        }
    }

    fn read_all(mut file: &File, hint: u64) -> io::Result<Input> {
        // One byte more than the size, so that the end is found without a second allocation.
        let mut buf = Vec::with_capacity(hint.min(READ_THRESHOLD) as usize + 1);
        // Through `take`: `File::read_to_end` would `fstat` and `lseek` again to size the
        // buffer, which is most of the cost of opening a small file.
        (&mut file).take(u64::MAX).read_to_end(&mut buf)?;
        Ok(Input::from_vec(buf))
    }

    /// Read a pipe, standard input or a device to its end, at most [`MAX_STREAM`] bytes.
    pub fn read_stream(reader: impl Read) -> io::Result<Input> {
        let mut buf = Vec::new();
        reader.take(MAX_STREAM + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > MAX_STREAM {
            return Err(io::Error::other(format!(
                "not a regular file, and longer than {} MiB: save it to a file to scan it",
                MAX_STREAM >> 20
            )));
        }
        Ok(Input::from_vec(buf))
    }

    /// True when the bytes are memory-mapped.
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }

    /// All the bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Owned(v) => v,
            Backing::Mapped(m) => m,
        }
    }
}

impl Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("len", &self.bytes().len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

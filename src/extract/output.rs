//! Where extraction's outputs go: a temporary file beside the output, renamed into place at the
//! end (never over an existing file without `--force`) and removed on failure or interrupt; the
//! input's SHA-256 computed in another thread while the output is written; and the one driver
//! ([`write_output`]) every output format ([`TensorWriter`]: safetensors, GGUF) is written by.

use super::tensor::Backing;
use super::ExtractError;
use crate::file::hex;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// An output format as written by [`write_output`]: the whole file first, with room left for
/// the input's digest, then the digest put in its room.
pub(crate) trait TensorWriter {
    /// Write the file from the start of `out` (the digest's room holds a placeholder).
    fn write(&mut self, out: &mut File) -> io::Result<()>;
    /// Put `digest` (the input's SHA-256, or a format's own digest text) in its room.
    fn put_digest(&mut self, out: &mut File, digest: &str) -> io::Result<()>;
    /// The file size planned, when known ahead: a file of another size is not put in place.
    fn planned_len(&self) -> Option<u64> {
        None
    }
    /// Whether an error of [`TensorWriter::write`] is about the tensors (the input cannot be
    /// written in this format) rather than about writing.
    fn data_error(&self, _e: &io::Error) -> bool {
        false
    }
}

/// The input's digest, being computed beside the writing.
pub(crate) struct Hasher {
    job: Option<JoinHandle<io::Result<String>>>,
    input: PathBuf,
}

impl Hasher {
    /// No digest (`--no-source-hash`).
    pub(crate) fn none(input: &Path) -> Self {
        Hasher {
            job: None,
            input: input.to_path_buf(),
        }
    }

    /// The digest text `job` computes, in another thread.
    pub(crate) fn spawn(
        input: &Path,
        job: impl FnOnce() -> io::Result<String> + Send + 'static,
    ) -> Self {
        Hasher {
            job: Some(std::thread::spawn(job)),
            input: input.to_path_buf(),
        }
    }

    /// The SHA-256 of the input behind `backing`: read from its file in order, in another
    /// thread, or of the bytes in memory.
    pub(crate) fn of_input(input: &Path, backing: &Backing) -> Self {
        match backing.file_handle() {
            Some(f) => {
                let f = Arc::clone(f);
                Self::spawn(input, move || sha256_of(&f))
            }
            None => {
                let digest = hex(&Sha256::digest(backing.bytes()));
                Self::spawn(input, move || Ok(digest))
            }
        }
    }

    fn join(self) -> Result<Option<String>, ExtractError> {
        let Some(job) = self.job else {
            return Ok(None);
        };
        job.join()
            .map_err(|_| io::Error::other("hashing the input failed"))
            .and_then(|r| r)
            .map(Some)
            .map_err(|source| ExtractError::Read {
                path: self.input,
                source,
            })
    }
}

/// Write `writer`'s file through a temporary file beside `output` while `hasher` computes the
/// digest, put the digest in, check the size, and put the file in place. Any failure removes
/// the temporary file. Returns the file size and the digest.
pub(crate) fn write_output(
    output: &Path,
    force: bool,
    writer: &mut dyn TensorWriter,
    hasher: Hasher,
) -> Result<(u64, Option<String>), ExtractError> {
    let mut out = TempOutput::create(output)?;
    let written = writer.write(&mut out.file);
    // The hashing thread is waited for whatever happened, so it never outlives the output.
    let digest = hasher.join()?;
    written.map_err(|e| {
        if writer.data_error(&e) {
            ExtractError::Format(e.to_string())
        } else {
            out.error(e)
        }
    })?;
    if let Some(d) = &digest {
        writer
            .put_digest(&mut out.file, d)
            .map_err(|e| out.error(e))?;
    }
    let len = out.file.seek(SeekFrom::End(0)).map_err(|e| out.error(e))?;
    if let Some(planned) = writer.planned_len().filter(|&p| p != len) {
        return Err(ExtractError::Format(format!(
            "wrote {len} bytes but planned {planned}"
        )));
    }
    out.finish(force)?;
    Ok((len, digest))
}

/// Bytes read per step when hashing the input. Small on purpose: on the benchmark machine,
/// reading 1.6 GB in 128 KiB steps cost 0.3 s of system time against 0.9–1.0 s in steps of
/// 256 KiB to 8 MiB (benches/GGUF.md).
const PASS_CHUNK: usize = 128 << 10;

/// SHA-256 of a whole file, in hex, read in order with `pread` in [`PASS_CHUNK`] steps.
pub(crate) fn sha256_of(file: &File) -> io::Result<String> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; PASS_CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let n = (PASS_CHUNK as u64).min(len - pos) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hex(&h.finalize()))
}

/// Removes the temporary output unless it was put in place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let mut live = live_temp_files();
            let _ = std::fs::remove_file(&self.path);
            live.retain(|p| p != &self.path);
        }
    }
}

/// Temporary outputs being written, for [`remove_temp_files`]. The lock is held while a file is
/// created, put in place or removed, so a signal handler never races a rename.
static LIVE_TEMP_FILES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn live_temp_files() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE_TEMP_FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remove every temporary output still being written, and keep any more from being put in
/// place. For a signal handler (Ctrl-C, SIGTERM) that then ends the process: the lock is never
/// released, so no extraction can rename its file into place afterwards. (SIGKILL cannot be
/// caught: its temporary file, `.NAME.PID.N.tmp` beside the output, stays.)
pub fn remove_temp_files() {
    let live = live_temp_files();
    for p in live.iter() {
        let _ = std::fs::remove_file(p);
    }
    std::mem::forget(live);
}

/// An output being written: a temporary file beside it, renamed into place by
/// [`TempOutput::finish`] and removed if dropped before.
pub(crate) struct TempOutput {
    pub(crate) file: File,
    temp: TempFile,
    output: PathBuf,
}

impl TempOutput {
    pub(crate) fn create(output: &Path) -> Result<TempOutput, ExtractError> {
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let (file, temp) = create_temp(&dir, &name).map_err(|source| ExtractError::Write {
            path: output.to_path_buf(),
            source,
        })?;
        Ok(TempOutput {
            file,
            temp,
            output: output.to_path_buf(),
        })
    }

    /// A write error, naming the temporary file.
    pub(crate) fn error(&self, source: io::Error) -> ExtractError {
        ExtractError::Write {
            path: self.temp.path.clone(),
            source,
        }
    }

    /// Close the file and move it to the output (see [`put_in_place`]).
    pub(crate) fn finish(self, force: bool) -> Result<(), ExtractError> {
        let TempOutput {
            file,
            mut temp,
            output,
        } = self;
        drop(file);
        let mut live = live_temp_files();
        let placed = put_in_place(&temp.path, &output, force);
        if placed.is_ok() {
            live.retain(|p| p != &temp.path);
            temp.keep = true;
        }
        drop(live);
        placed.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => ExtractError::Exists(output.clone()),
            _ => ExtractError::Write {
                path: output.clone(),
                source: e,
            },
        })
    }
}

fn create_temp(dir: &Path, name: &str) -> io::Result<(File, TempFile)> {
    let pid = std::process::id();
    for n in 0..1000u32 {
        let path = dir.join(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                live_temp_files().push(path.clone());
                return Ok((f, TempFile { path, keep: false }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

/// Move `tmp` to `output`. Without `force`, never replace an existing file: a hard link fails if
/// the target exists (atomic no-clobber); where links are not supported, check then rename.
fn put_in_place(tmp: &Path, output: &Path, force: bool) -> io::Result<()> {
    if force {
        return std::fs::rename(tmp, output);
    }
    match std::fs::hard_link(tmp, output) {
        Ok(()) => std::fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if output.symlink_metadata().is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(tmp, output)
        }
    }
}

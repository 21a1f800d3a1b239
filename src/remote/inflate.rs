//! A compressed body decompressed on a thread of its own, its output read as a body: the
//! streaming planner then reads the decompressed bytes as it reads any other stream (large
//! payloads and joblib's arrays are dropped as they pass), and when it has its verdict it stops
//! reading, which stops the decompression and the download.

use super::http::{HttpError, Meter};
use super::range::{BodyRead, FetchError};
use crate::format::compress::DecompressError;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Mutex;

/// Largest piece of output sent at once.
const PIECE: usize = 1 << 20;
/// Pieces in flight between the decompressor and the reader.
pub const IN_FLIGHT: usize = 4;

/// What the decompressing thread sends.
pub enum Piece {
    /// Output bytes.
    Data(Vec<u8>),
    /// The end of the output, and why it came.
    End(Ended),
}

/// Why the output ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Decompression stopped before the end of the stream (corrupt, or over its budget).
    pub error: Option<DecompressError>,
    /// Reading the compressed body failed (or went past the remote budget).
    pub fetch: Option<FetchError>,
}

/// The decompressor's output, sent to the reader in pieces. A reader that has stopped makes
/// the next write fail, which ends the decompression.
pub struct Pieces(pub SyncSender<Piece>);

impl Write for Pieces {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.chunks(PIECE) {
            self.0
                .send(Piece::Data(piece.to_vec()))
                .map_err(|_| io::Error::other("the reader has stopped"))?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end. At the end of the output, why it ended is left in `ended`; a failed fetch
/// of the compressed body is an error of the read.
pub struct Decoded<'e> {
    rx: Receiver<Piece>,
    piece: Vec<u8>,
    at: usize,
    done: bool,
    ended: &'e Mutex<Option<Ended>>,
}

impl<'e> Decoded<'e> {
    /// The reader of what `rx` receives.
    pub fn new(rx: Receiver<Piece>, ended: &'e Mutex<Option<Ended>>) -> Self {
        Decoded {
            rx,
            piece: Vec::new(),
            at: 0,
            done: false,
            ended,
        }
    }
}

impl BodyRead for Decoded<'_> {
    fn read_some(&mut self, buf: &mut [u8], _: &Meter) -> Result<usize, HttpError> {
        while self.at >= self.piece.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Piece::Data(d)) => {
                    self.piece = d;
                    self.at = 0;
                }
                Ok(Piece::End(e)) => {
                    self.done = true;
                    let failed = match &e.fetch {
                        Some(FetchError::Http(h)) => Some(h.clone()),
                        _ => None,
                    };
                    if let Ok(mut slot) = self.ended.lock() {
                        *slot = Some(e);
                    }
                    if let Some(h) = failed {
                        return Err(h);
                    }
                }
                Err(_) => {
                    self.done = true;
                    return Err(HttpError::Protocol(
                        "decompression stopped without an end".into(),
                    ));
                }
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

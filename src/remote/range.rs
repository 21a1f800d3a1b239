//! A remote file seen through range requests: a sparse in-memory image of the whole file (an
//! anonymous memory map, so pages never written cost no memory) filled only with the ranges
//! fetched, and a fetcher that merges nearby ranges and runs a few requests at a time.
//!
//! Unfetched bytes read as zeros. The planner in [`super`] fetches everything the scanner reads
//! before scanning; zeros are a fail-closed backstop (a zero is no pickle opcode and no zip
//! signature), never a way to make a file look clean.

use super::http::{Body, Client, Fetched, HttpError, Meter, Range};
use crate::format::access::{Missing, RandomAccess};
use crate::format::zip;
use memmap2::MmapMut;
use std::sync::Mutex;

/// Ranges closer than this are fetched as one request (the gap is fetched too).
pub const COALESCE_GAP: u64 = 64 * 1024;
/// Largest single request.
pub const MAX_REQUEST: u64 = 16 * 1024 * 1024;

/// Why a fetch stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Fetching would exceed the byte budget of the file.
    #[error(
        "needs {needed} more bytes but only {left} of the {budget}-byte remote budget are left"
    )]
    Budget {
        /// Bytes the fetch needed.
        needed: u64,
        /// Bytes left in the budget.
        left: u64,
        /// The whole budget.
        budget: u64,
    },
}

enum Store {
    Small(Vec<u8>),
    Mapped(MmapMut),
}

/// The sparse image of a file of known size (or of a body whose size is learnt at its end: see
/// [`Sparse::truncate`]).
pub struct Sparse {
    store: Store,
    /// Size of the image, at most the store's length.
    len: usize,
    /// Fetched ranges, sorted, disjoint, not touching.
    have: Vec<(u64, u64)>,
}

/// What has been fetched reads as it is; the rest is missing.
impl RandomAccess for Sparse {
    fn size(&self) -> u64 {
        Sparse::size(self)
    }

    fn get(&self, start: u64, end: u64) -> Result<&[u8], Missing> {
        let end = end.min(Sparse::size(self));
        let start = start.min(end);
        match self.missing(start, end).first() {
            Some(&(s, e)) => Err(Missing { start: s, end: e }),
            None => Ok(&self.bytes()[start as usize..end as usize]),
        }
    }
}

impl Sparse {
    /// An image of `size` zero bytes.
    pub fn new(size: u64) -> std::io::Result<Sparse> {
        let len = usize::try_from(size).map_err(|_| {
            std::io::Error::other("file too large for this machine's address space")
        })?;
        let store = if len <= 1 << 20 {
            Store::Small(vec![0; len])
        } else {
            // MAP_NORESERVE: a sparse image of a file larger than memory is still only the pages
            // written to it.
            Store::Mapped(
                memmap2::MmapOptions::new()
                    .len(len)
                    .no_reserve_swap()
                    .map_anon()?,
            )
        };
        Ok(Sparse {
            store,
            len,
            have: Vec::new(),
        })
    }

    /// Size of the file.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// The image: fetched bytes in place, zeros elsewhere.
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.store {
            Store::Small(v) => v,
            Store::Mapped(m) => m,
        };
        &all[..self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let all: &mut [u8] = match &mut self.store {
            Store::Small(v) => v,
            Store::Mapped(m) => m,
        };
        &mut all[..self.len]
    }

    /// Shrink the image to its first `size` bytes: a body of unknown length gets an image as
    /// large as its budget, cut to the body's length once its end is read.
    pub fn truncate(&mut self, size: u64) {
        let size = size.min(self.size());
        self.len = size as usize;
        self.have.retain(|&(s, _)| s < size);
        if let Some(last) = self.have.last_mut() {
            last.1 = last.1.min(size);
        }
    }

    /// Bytes fetched in all.
    pub fn fetched(&self) -> u64 {
        self.have.iter().map(|(s, e)| e - s).sum()
    }

    /// Length of the fetched prefix `[0, n)`.
    pub fn prefix(&self) -> u64 {
        match self.have.first() {
            Some(&(0, e)) => e,
            _ => 0,
        }
    }

    /// True when `[start, end)` has been fetched.
    pub fn has(&self, start: u64, end: u64) -> bool {
        let end = end.min(self.size());
        start >= end || self.have.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// The parts of `[start, end)` not fetched yet.
    pub fn missing(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let end = end.min(self.size());
        let mut out = Vec::new();
        let mut at = start;
        for &(s, e) in &self.have {
            if at >= end {
                break;
            }
            if e <= at {
                continue;
            }
            if s > at {
                out.push((at, s.min(end)));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Write fetched bytes at `start`.
    pub fn put(&mut self, start: u64, data: &[u8]) {
        let size = self.size();
        let end = (start + data.len() as u64).min(size);
        if start >= end {
            return;
        }
        let n = (end - start) as usize;
        self.bytes_mut()[start as usize..end as usize].copy_from_slice(&data[..n]);
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }
}

/// Merge ranges closer than `gap`, then split any longer than `max`.
pub fn coalesce(mut ranges: Vec<(u64, u64)>, gap: u64, max: u64) -> Vec<(u64, u64)> {
    ranges.retain(|(s, e)| e > s);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(gap) && e.max(last.1) - last.0 <= max => {
                last.1 = last.1.max(e)
            }
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    for (mut s, e) in merged {
        while e - s > max {
            out.push((s, s + max));
            s += max;
        }
        out.push((s, e));
    }
    out
}

/// Where the bytes of a remote file come from: range requests, or one body read front to back.
pub trait Source {
    /// The sparse image.
    fn image(&self) -> &Sparse;
    /// Make sure every part of `ranges` is in the image.
    fn ensure(&mut self, ranges: &[(u64, u64)]) -> Result<(), FetchError>;
    /// Bytes this file cost so far.
    fn transferred(&self) -> u64;
    /// Byte budget of the file.
    fn budget(&self) -> u64;
    /// Size of the file, when known (a body without `Content-Length` learns it at its end).
    fn length(&self) -> Option<u64> {
        Some(self.image().size())
    }
    /// The size of the file, reading a body of unknown length to its end (keeping only its
    /// tail) to learn it.
    fn learn_length(&mut self) -> Result<u64, FetchError> {
        Ok(self.image().size())
    }
}

impl Source for RemoteFile<'_> {
    fn image(&self) -> &Sparse {
        &self.sparse
    }
    fn ensure(&mut self, ranges: &[(u64, u64)]) -> Result<(), FetchError> {
        RemoteFile::ensure(self, ranges)
    }
    fn transferred(&self) -> u64 {
        self.meter.bytes()
    }
    fn budget(&self) -> u64 {
        self.budget
    }
}

/// An image that can fetch nothing more: asking for bytes it lacks is an error. Checks that a
/// plan's needs are all in an image read earlier.
pub struct Frozen<'s>(pub &'s Sparse);

impl Source for Frozen<'_> {
    fn image(&self) -> &Sparse {
        self.0
    }
    fn ensure(&mut self, ranges: &[(u64, u64)]) -> Result<(), FetchError> {
        match ranges.iter().find(|&&(s, e)| !self.0.has(s, e)) {
            None => Ok(()),
            Some((s, e)) => Err(HttpError::Protocol(format!(
                "bytes {s}..{e} are needed but were not kept from the stream"
            ))
            .into()),
        }
    }
    fn transferred(&self) -> u64 {
        self.0.fetched()
    }
    fn budget(&self) -> u64 {
        u64::MAX
    }
}

/// Bytes at the end of a body always kept: where a zip's end record can lie (its 22 bytes and
/// a comment of up to 65,535), which decides how content that starts with no magic is read.
pub const BODY_TAIL: u64 = 22 + 0xFFFF;

/// What a [`BodyStream`] reads: a response body, or another stream of bytes (a decompressor's
/// output).
pub trait BodyRead {
    /// Read some bytes into `buf` (0 at the end), counting what came over the network in
    /// `meter`.
    fn read_some(&mut self, buf: &mut [u8], meter: &Meter) -> Result<usize, HttpError>;
}

impl BodyRead for Body {
    fn read_some(&mut self, buf: &mut [u8], meter: &Meter) -> Result<usize, HttpError> {
        Body::read_some(self, buf, meter)
    }
}

/// A body from a server without range support, read front to back: the parts asked for are
/// kept in the image, the bytes between them are read and dropped (so the image holds only
/// what the scanner reads, never the whole file), and reading stops when nothing more is asked.
/// The last [`BODY_TAIL`] bytes are kept whenever they pass.
///
/// A body without `Content-Length` gets an image as large as the budget (a memory map: only the
/// pages written cost memory), cut to the body's length at its end; its last bytes are kept in
/// a rolling window until then. A body that goes on past the budget is a
/// [`FetchError::Budget`], never a shorter file.
pub struct BodyStream<'c, B = Body> {
    body: B,
    meter: &'c Meter,
    /// The sparse image.
    pub sparse: Sparse,
    /// Bytes of the body read so far.
    pos: u64,
    /// Length of the body, when given or once its end has been read.
    length: Option<u64>,
    /// Bytes from here on are kept whatever was asked (a body of known length).
    tail_from: u64,
    /// The last bytes read (a body of unknown length): its tail once the end is found.
    recent: Vec<u8>,
    /// The body was found to go on past the budget.
    over: bool,
    budget: u64,
    buf: Vec<u8>,
}

impl<'c, B: BodyRead> BodyStream<'c, B> {
    /// The body of a file of `length` bytes (unknown: `None`), none of it read yet.
    pub fn new(
        body: B,
        length: Option<u64>,
        meter: &'c Meter,
        budget: u64,
    ) -> std::io::Result<Self> {
        Ok(BodyStream {
            body,
            meter,
            sparse: Sparse::new(length.unwrap_or(budget))?,
            pos: 0,
            length,
            tail_from: length.map_or(u64::MAX, |l| l.saturating_sub(BODY_TAIL)),
            recent: Vec::new(),
            over: false,
            budget,
            buf: vec![0; 256 * 1024],
        })
    }

    /// Length of the body: given by the server, or known once its end has been read.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// What counts the bytes of the body.
    pub fn meter(&self) -> &'c Meter {
        self.meter
    }

    /// Read on to the end of a zip member whose data start at `data` and whose size only its
    /// data descriptor gives (flag bit 3, what `torch.save` writes): the first place where a
    /// descriptor recording exactly the bytes since `data` is followed by a local header or the
    /// central directory. Bytes before `keep_until` are kept, the rest of the member dropped,
    /// and everything from the place found on is kept. `None` when the body ends first.
    pub fn skip_described_member(
        &mut self,
        data: u64,
        keep_until: u64,
    ) -> Result<Option<u64>, FetchError> {
        // Read bytes of the member not searched yet (the first search covers what is kept).
        let mut window: Vec<u8> = Vec::new();
        let mut w0 = data;
        if self.pos > data {
            window.extend_from_slice(&self.sparse.bytes()[data as usize..self.pos as usize]);
        }
        loop {
            if let Some(i) = zip::described_member_end(&window, w0, data) {
                let c = w0 + i as u64;
                self.sparse.put(c, &window[i..]);
                return Ok(Some(c));
            }
            // Keep the last bytes: a descriptor and a signature may straddle two reads.
            let cut = window.len().saturating_sub(zip::DESCRIPTOR_BACK);
            w0 += cut as u64;
            window.drain(..cut);
            let size = self.sparse.size();
            if self.pos >= size {
                self.check_end()?;
                return Ok(None);
            }
            let start = self.pos;
            let n = self.read_chunk(size)?;
            if n == 0 {
                return Ok(None);
            }
            if start < keep_until {
                let end = (keep_until.min(self.pos) - start) as usize;
                self.sparse.put(start, &self.buf[..end]);
            }
            window.extend_from_slice(&self.buf[..n]);
        }
    }

    /// Read the next bytes of the body, up to `limit`, into the buffer: how many. At the end of
    /// a body of unknown length, 0 (its length is then known); at an early end of a body of
    /// known length, an error.
    fn read_chunk(&mut self, limit: u64) -> Result<usize, FetchError> {
        let want = limit.saturating_sub(self.pos).min(self.buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.body.read_some(&mut self.buf[..want], self.meter)?;
        if n == 0 {
            if self.length.is_none() {
                self.found_end();
                return Ok(0);
            }
            return Err(HttpError::Protocol(format!(
                "the body ended after {} of {} bytes",
                self.pos,
                self.sparse.size()
            ))
            .into());
        }
        let start = self.pos;
        self.pos += n as u64;
        self.keep_tail(start);
        Ok(n)
    }

    /// The end of a body of unknown length was read: its length is known, and its last bytes
    /// are kept.
    fn found_end(&mut self) {
        self.length = Some(self.pos);
        self.sparse.truncate(self.pos);
        let from = self.pos - self.recent.len() as u64;
        self.sparse.put(from, &self.recent);
        self.recent = Vec::new();
    }

    /// With the image of a body of unknown length read to its end: whether the body ends there
    /// (its length is then known) or goes on past the budget (an error).
    fn check_end(&mut self) -> Result<(), FetchError> {
        if self.over {
            return Err(self.over_budget());
        }
        if self.length.is_some() || self.pos < self.sparse.size() {
            return Ok(());
        }
        let mut one = [0u8; 1];
        if self.body.read_some(&mut one, self.meter)? == 0 {
            self.found_end();
            return Ok(());
        }
        self.over = true;
        Err(self.over_budget())
    }

    fn over_budget(&self) -> FetchError {
        FetchError::Budget {
            needed: 1,
            left: 0,
            budget: self.budget,
        }
    }

    /// Read the body up to `end`, keeping the bytes from `keep` on.
    fn read_to(&mut self, keep: u64, end: u64) -> Result<(), FetchError> {
        while self.pos < end.min(self.sparse.size()) {
            let start = self.pos;
            let n = self.read_chunk(end)?;
            if n == 0 {
                break;
            }
            if self.pos > keep {
                let from = keep.max(start);
                self.sparse.put(from, &self.buf[(from - start) as usize..n]);
            }
        }
        Ok(())
    }

    /// Keep the part of the last read (`start..pos`, in the buffer) that lies in the tail.
    fn keep_tail(&mut self, start: u64) {
        let n = (self.pos - start) as usize;
        if self.length.is_none() {
            // The end is not known yet: keep a rolling window of the last bytes.
            self.recent.extend_from_slice(&self.buf[..n]);
            let tail = BODY_TAIL as usize;
            if self.recent.len() > 2 * tail {
                self.recent.drain(..self.recent.len() - tail);
            }
            return;
        }
        if self.pos > self.tail_from {
            let from = self.tail_from.max(start);
            self.sparse.put(from, &self.buf[(from - start) as usize..n]);
        }
    }

    /// Read the rest of the body, keeping only its tail (within the budget).
    pub fn read_to_end(&mut self) -> Result<(), FetchError> {
        let size = self.sparse.size();
        if self.length.is_some() {
            return self.ensure(&[(self.tail_from, size)]);
        }
        self.read_to(u64::MAX, size)?;
        self.check_end()
    }

    /// The body from its start as a reader: the bytes read so far (kept in the image), then
    /// the rest of the body, read on without being kept (but for its tail), within the budget.
    pub fn rest(&mut self) -> Rest<'_, 'c, B> {
        Rest {
            st: self,
            at: 0,
            error: None,
        }
    }
}

/// [`BodyStream::rest`]: a reader of the whole body. Why it stopped early is kept in `error`.
pub struct Rest<'s, 'c, B = Body> {
    st: &'s mut BodyStream<'c, B>,
    at: u64,
    /// The fetch error that ended the reading, if one did.
    pub error: Option<FetchError>,
}

impl<B> Rest<'_, '_, B> {
    fn fail(&mut self, e: FetchError) -> std::io::Error {
        let io = std::io::Error::other(e.to_string());
        self.error = Some(e);
        io
    }
}

impl<B: BodyRead> std::io::Read for Rest<'_, '_, B> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let st = &mut *self.st;
        if self.at < st.pos {
            // Bytes read before: they must have been kept.
            let end = st.pos.min(self.at + out.len() as u64);
            if !st.sparse.has(self.at, end) {
                let e = HttpError::Protocol(format!(
                    "bytes {}..{end} are needed but were not kept from the stream",
                    self.at
                ));
                return Err(self.fail(e.into()));
            }
            let n = (end - self.at) as usize;
            out[..n].copy_from_slice(&st.sparse.bytes()[self.at as usize..end as usize]);
            self.at = end;
            return Ok(n);
        }
        let size = st.sparse.size();
        let cap = size.min(st.budget);
        if st.pos >= cap {
            let end = if st.pos < size {
                // A known length past the budget.
                Err(st.over_budget())
            } else {
                st.check_end()
            };
            return match end {
                Ok(()) => Ok(0),
                Err(e) => Err(self.fail(e)),
            };
        }
        let limit = cap.min(st.pos + out.len() as u64);
        match st.read_chunk(limit) {
            Ok(n) => {
                out[..n].copy_from_slice(&st.buf[..n]);
                self.at = st.pos;
                Ok(n)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl<B: BodyRead> Source for BodyStream<'_, B> {
    fn image(&self) -> &Sparse {
        &self.sparse
    }

    fn ensure(&mut self, ranges: &[(u64, u64)]) -> Result<(), FetchError> {
        let size = self.sparse.size();
        let reach = ranges.iter().map(|r| r.1).max().unwrap_or(0).min(size);
        let mut ranges: Vec<(u64, u64)> = ranges
            .iter()
            .map(|&(s, e)| (s.min(size), e.min(size)))
            .filter(|(s, e)| s < e)
            .collect();
        ranges.sort_unstable();
        let end = ranges.last().map_or(0, |r| r.1);
        if end > self.pos && end > self.budget {
            return Err(FetchError::Budget {
                needed: end - self.pos,
                left: self.budget.saturating_sub(self.pos),
                budget: self.budget,
            });
        }
        for (s, e) in ranges {
            if !self.sparse.missing(s, e.min(self.pos)).is_empty() {
                // A forward-only body cannot go back for bytes it has dropped.
                return Err(HttpError::Protocol(format!(
                    "bytes {s}..{e} were asked for after the body had passed them"
                ))
                .into());
            }
            if e > self.pos {
                self.read_to(s, e)?;
            }
        }
        if self.length.is_none() && reach > 0 && reach >= size {
            // Asked up to the end of an image of unknown length: where does the body end?
            self.read_to(u64::MAX, size)?;
            self.check_end()?;
        }
        Ok(())
    }

    fn transferred(&self) -> u64 {
        self.meter.bytes()
    }

    fn budget(&self) -> u64 {
        self.budget
    }

    fn length(&self) -> Option<u64> {
        self.length
    }

    fn learn_length(&mut self) -> Result<u64, FetchError> {
        if self.length.is_none() {
            self.read_to_end()?;
        }
        Ok(self.sparse.size())
    }
}

/// A remote file being fetched piecemeal.
pub struct RemoteFile<'c> {
    client: &'c Client,
    url: String,
    /// What this file cost.
    pub meter: &'c Meter,
    /// The sparse image.
    pub sparse: Sparse,
    /// Byte budget of the file.
    pub budget: u64,
    /// Requests run at once.
    pub parallel: usize,
    /// Batches of requests that had to wait for the previous one (round trips).
    pub rounds: u32,
    /// Bytes kept from the file read as one body instead ([`RemoteFile::body`]).
    pub streamed: u64,
}

impl<'c> RemoteFile<'c> {
    /// A file of known size whose first bytes were already fetched (they count in `meter`).
    pub fn new(
        client: &'c Client,
        url: &str,
        sparse: Sparse,
        meter: &'c Meter,
        budget: u64,
        parallel: usize,
    ) -> Self {
        RemoteFile {
            client,
            url: url.to_string(),
            meter,
            sparse,
            budget,
            parallel: parallel.max(1),
            rounds: 1,
            streamed: 0,
        }
    }

    /// The whole file as one body read front to back (a plain GET: one round trip), within
    /// what is left of the budget: for content that is read once, in order, all of it.
    pub fn body(&mut self) -> Result<BodyStream<'c>, FetchError> {
        self.rounds += 1;
        fetch_body(
            self.client,
            &self.url,
            self.meter,
            Some(self.size()),
            self.left(),
        )
    }

    /// Size of the file.
    pub fn size(&self) -> u64 {
        self.sparse.size()
    }

    /// Bytes of budget left.
    pub fn left(&self) -> u64 {
        self.budget.saturating_sub(self.meter.bytes())
    }

    /// Fetch every part of `ranges` not fetched yet, in one round of parallel requests.
    pub fn ensure(&mut self, ranges: &[(u64, u64)]) -> Result<(), FetchError> {
        let size = self.size();
        let mut want = Vec::new();
        for &(s, e) in ranges {
            want.extend(self.sparse.missing(s.min(size), e.min(size)));
        }
        if want.is_empty() {
            return Ok(());
        }
        // Gaps are only worth filling when the budget allows it.
        let mut plan = coalesce(want.clone(), COALESCE_GAP, MAX_REQUEST);
        let mut needed: u64 = plan.iter().map(|(s, e)| e - s).sum();
        if needed > self.left() {
            plan = coalesce(want, 0, MAX_REQUEST);
            needed = plan.iter().map(|(s, e)| e - s).sum();
        }
        if needed > self.left() {
            return Err(FetchError::Budget {
                needed,
                left: self.left(),
                budget: self.budget,
            });
        }
        self.rounds += 1;
        let results: Mutex<Vec<(u64, Vec<u8>)>> = Mutex::new(Vec::new());
        let error: Mutex<Option<FetchError>> = Mutex::new(None);
        let next = Mutex::new(plan.into_iter());
        let workers = self.parallel;
        let (client, url, meter) = (self.client, self.url.as_str(), self.meter);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if error.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    let Some((s, e)) = next.lock().ok().and_then(|mut it| it.next()) else {
                        return;
                    };
                    match fetch_span(client, url, s, e, size, meter) {
                        Ok(data) => {
                            if let Ok(mut r) = results.lock() {
                                r.push((s, data));
                            }
                        }
                        Err(err) => {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(err);
                            }
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = error.into_inner().ok().flatten() {
            return Err(e);
        }
        for (s, data) in results.into_inner().unwrap_or_default() {
            self.sparse.put(s, &data);
        }
        Ok(())
    }
}

/// The file at `url` as one body read front to back (a plain GET), with `budget` bytes to
/// spend; a file whose size is known (`size`) must still have it.
pub fn fetch_body<'c>(
    client: &Client,
    url: &str,
    meter: &'c Meter,
    size: Option<u64>,
    budget: u64,
) -> Result<BodyStream<'c>, FetchError> {
    match client.fetch(url, None, meter)? {
        Fetched::Whole { length, body } => {
            if let (Some(size), Some(l)) = (size, length) {
                if l != size {
                    return Err(HttpError::Protocol(format!(
                        "{url} changed size while being scanned ({size} then {l} bytes)"
                    ))
                    .into());
                }
            }
            BodyStream::new(body, size.or(length), meter, budget).map_err(|e| {
                HttpError::Protocol(format!("cannot hold the image of {url}: {e}")).into()
            })
        }
        Fetched::Partial { .. } => Err(HttpError::Protocol(format!(
            "{url} answered a request without a range with a part"
        ))
        .into()),
        Fetched::Empty => Err(HttpError::Protocol(format!("{url} became empty")).into()),
    }
}

/// Fetch `[s, e)` of a file of `size` bytes; anything but exactly those bytes is an error.
fn fetch_span(
    client: &Client,
    url: &str,
    s: u64,
    e: u64,
    size: u64,
    meter: &Meter,
) -> Result<Vec<u8>, FetchError> {
    match client.fetch(url, Some(Range::Span(s, e)), meter)? {
        Fetched::Partial { start, data, total } => {
            if total != size {
                return Err(HttpError::Protocol(format!(
                    "{url} changed size while being scanned ({size} then {total} bytes)"
                ))
                .into());
            }
            debug_assert_eq!(start, s);
            Ok(data)
        }
        Fetched::Whole { .. } => {
            Err(HttpError::Protocol(format!("{url} stopped honouring range requests")).into())
        }
        Fetched::Empty => Err(HttpError::Protocol(format!("{url} became empty")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_tracks_ranges() {
        let mut s = Sparse::new(100).unwrap();
        s.put(10, &[1; 10]);
        s.put(30, &[2; 10]);
        assert_eq!(s.missing(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        s.put(20, &[3; 10]);
        assert!(s.has(10, 40));
        assert_eq!(s.prefix(), 0);
        s.put(0, &[4; 10]);
        assert_eq!(s.prefix(), 40);
        assert_eq!(s.fetched(), 40);
        assert_eq!(s.missing(95, 200), vec![(95, 100)]);
    }

    #[test]
    fn coalescing() {
        assert_eq!(
            coalesce(vec![(0, 10), (15, 20), (100, 110)], 5, 1000),
            vec![(0, 20), (100, 110)]
        );
        assert_eq!(
            coalesce(vec![(0, 25)], 0, 10),
            vec![(0, 10), (10, 20), (20, 25)]
        );
    }
}

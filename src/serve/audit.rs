//! The append-only audit log: one JSON line per decision.
//!
//! One writer thread owns the file (opened with `O_APPEND`, never truncated); request handlers
//! send it whole lines, so concurrent lines never interleave. The writer takes every line that
//! is queued, writes each with a single `write`, calls `fdatasync` once for the batch (group
//! commit), and only then acknowledges: a handler answers its client after its line is on disk.
//! If writing fails, the handler answers 500 instead of the verdict (the gate fails closed).

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::SystemTime;
use tokio::sync::oneshot;

/// When the writer calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// After every batch of lines, before acknowledging them (default).
    #[default]
    Batch,
    /// Never (the operating system writes back when it likes; faster, loses lines on a crash).
    Never,
}

/// One finding, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedFinding {
    /// Rule id.
    pub rule: String,
    /// The global, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
}

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339 UTC time of the decision.
    pub time: String,
    /// Client address.
    pub client: String,
    /// The upload's name.
    pub name: String,
    /// Lower-case hex SHA-256 of the upload.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// The verdict.
    pub verdict: String,
    /// The findings (rule and global).
    pub findings: Vec<LoggedFinding>,
    /// The policy mode.
    pub policy: String,
    /// `RuleSet::fingerprint()` of the rules in force.
    pub rules: String,
    /// Milliseconds from the start of the request to the decision.
    pub duration_ms: f64,
}

type Job = (String, oneshot::Sender<Result<(), String>>);

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
}

impl AuditLog {
    /// Open (create or append to) the log and start its writer thread.
    pub fn open(path: &Path, fsync: Fsync) -> std::io::Result<AuditLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer(file, rx, fsync))?;
        Ok(AuditLog { tx })
    }

    /// Append one entry; resolves when it is written (and synced, under [`Fsync::Batch`]).
    pub async fn append(&self, entry: &Entry) -> Result<(), String> {
        let mut line = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        line.push('\n');
        let (ack, done) = oneshot::channel();
        self.tx
            .send((line, ack))
            .map_err(|_| "audit log writer stopped".to_string())?;
        done.await
            .map_err(|_| "audit log writer stopped".to_string())?
    }
}

fn writer(mut file: File, rx: mpsc::Receiver<Job>, fsync: Fsync) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 1024 {
                break;
            }
        }
        let mut result = Ok(());
        for (line, _) in &batch {
            if let Err(e) = file.write_all(line.as_bytes()) {
                result = Err(format!("audit log write failed: {e}"));
                break;
            }
        }
        if result.is_ok() && fsync == Fsync::Batch {
            if let Err(e) = file.sync_data() {
                result = Err(format!("audit log sync failed: {e}"));
            }
        }
        for (_, ack) in batch {
            let _ = ack.send(result.clone());
        }
    }
}

/// RFC 3339 UTC time with milliseconds, e.g. `2024-05-01T12:34:56.789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_714_566_896), "2024-05-01T12:34:56.000Z");
    }
}

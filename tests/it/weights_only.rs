//! The weights-only answer the scan works out while it reads a file (`Scanner::weights_only`:
//! torch's restricted unpickler replayed over the bytes the scan has just read, the zip record
//! torch reads found by the scan's own parse of the archive) is the answer of the replay over
//! the file by itself (`weights_only::check_with`, which parses and inflates on its own).

use crate::common::Asm;
use picklescan_rs::internals::container::scan_file;
use picklescan_rs::internals::container::weights_only::{self, TorchContainer};
use picklescan_rs::rules::RuleSet;
use picklescan_rs::{Limits, Scanner};
use std::path::Path;

fn scanner() -> Scanner {
    let mut s = Scanner::new(RuleSet::builtin(), Limits::default());
    s.weights_only = true;
    s
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn same_answer(scanner: &Scanner, data: &[u8], name: &str) -> weights_only::WeightsOnly {
    let during = scan_file(scanner, data, Some(name), None)
        .weights_only
        .expect("the scanner was asked for the weights-only answer");
    let alone = weights_only::check_with(data, &scanner.limits);
    assert_eq!(during, alone, "{name}");
    during
}

#[test]
fn the_scan_gives_the_answer_of_the_replay_alone_on_every_corpus_file() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut all = Vec::new();
    files(&corpus, &mut all);
    let scanner = scanner();
    let mut by_container = std::collections::BTreeMap::<TorchContainer, usize>::new();
    for p in &all {
        if p.extension()
            .is_some_and(|e| e == "json" || e == "py" || e == "md")
        {
            continue;
        }
        let data = std::fs::read(p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        let wo = same_answer(&scanner, &data, name);
        *by_container.entry(wo.container).or_default() += 1;
    }
    // Every way torch.load reads a file is among them.
    use TorchContainer::*;
    for c in [Zip, Torchscript, Legacy, Pickle, Tar] {
        assert!(
            by_container.get(&c).copied().unwrap_or(0) > 0,
            "{by_container:?}"
        );
    }
    assert!(by_container[&Zip] >= 50, "{by_container:?}");
}

#[test]
fn bytes_the_scan_skips_are_still_read_as_torch_reads_them() {
    // A joblib dump: after each NumpyArrayWrapper the scan steps over the array's raw bytes;
    // torch's unpickler, which knows nothing of joblib, reads them as opcodes (here after
    // refusing the protocol 4 FRAME, looking for globals up to a STOP).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/benign/joblib_arrays.joblib");
    let data = std::fs::read(path).unwrap();
    let scanner = scanner();
    assert_eq!(
        scan_file(&scanner, &data, Some("joblib_arrays.joblib"), None)
            .scanned
            .format,
        picklescan_rs::Format::Joblib
    );
    let wo = same_answer(&scanner, &data, "joblib_arrays.joblib");
    assert!(!wo.loads, "{wo:?}");
    assert_eq!(wo.errors[0].offset, Some(2), "{wo:?}");
}

#[test]
fn a_stream_the_machine_gives_up_on_is_still_replayed_to_its_end() {
    // More values than the machine's budget: it stops early; torch's unpickler reads on to a
    // blocked global at the end.
    let mut a = Asm::new().proto(2).op(b'(');
    for _ in 0..2000 {
        a = a.op(b'N');
    }
    let p = a
        .op(b'l')
        .op(b'0')
        .global("posix", "system")
        .op(b'0')
        .op(b'N')
        .stop()
        .build();
    let mut scanner = scanner();
    scanner.limits.max_nodes = 100;
    let wo = same_answer(&scanner, &p, "model.pt");
    assert!(wo.blocked.iter().any(|g| g == "posix.system"), "{wo:?}");
}

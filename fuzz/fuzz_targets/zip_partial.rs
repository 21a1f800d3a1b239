//! Zip archives scanned from part of their bytes, as the remote scan reads them: the first 64
//! bytes, the last 64 KiB and the central directory are at hand (run with a large -max_len:
//! smaller archives are at hand whole), the scan says what else it needs, that is
//! added, and it runs again. It must never panic, must end within the rounds the remote scan
//! allows for any archive it is given, and once nothing is missing it must give the findings of
//! the scan of the whole file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::container;
use picklescan_rs::remote::{plan, range::Sparse};
use picklescan_rs::{Limits, Scanner};
use std::sync::OnceLock;

static SCANNER: OnceLock<Scanner> = OnceLock::new();

fn scanner() -> &'static Scanner {
    SCANNER.get_or_init(|| {
        let base = Scanner::default();
        let limits = Limits {
            max_decompressed: 1 << 20,
            ratio_floor: 1 << 20,
            ..base.limits.clone()
        };
        Scanner::new(base.rules, limits)
    })
}

fn fetch(image: &mut Sparse, data: &[u8], start: u64, end: u64) {
    let end = end.min(data.len() as u64);
    if start < end {
        image.put(start, &data[start as usize..end as usize]);
    }
}

fuzz_target!(|data: &[u8]| {
    // What the remote scan reads this way: a zip by its first bytes.
    use picklescan_rs::internals::format::detect::{detect, Kind};
    if detect(&data[..data.len().min(64)], None) != Kind::Zip {
        return;
    }
    let size = data.len() as u64;
    let mut image = Sparse::new(size).unwrap();
    fetch(&mut image, data, 0, 64);
    // The tail the remote scan always fetches: every place an end record may be.
    fetch(&mut image, data, size.saturating_sub(22 + 0xFFFF + 98), size);
    // The directory, as the remote scan fetches it before scanning.
    let Ok(Some((lo, hi))) = plan::directory(&image) else {
        return;
    };
    if lo > hi || hi > size {
        return;
    }
    fetch(&mut image, data, lo, hi);
    let scanner = scanner();
    for _ in 0..16 {
        let scan = container::scan_image(scanner, image.bytes(), &image, None);
        if scan.missing.is_empty() {
            let whole = container::scan(scanner, data, None);
            let rules = |s: &container::Scanned| {
                let mut r: Vec<(String, Option<String>)> = s
                    .findings
                    .iter()
                    .map(|f| (f.rule.clone(), f.member.clone()))
                    .collect();
                r.sort();
                r
            };
            assert_eq!(rules(&scan.scanned), rules(&whole));
            return;
        }
        // Every round asks for bytes not at hand yet.
        let before = image.fetched();
        for m in &scan.missing {
            assert!(m.start < m.end && m.end <= size, "{m:?}");
            fetch(&mut image, data, m.start, m.end);
        }
        assert!(image.fetched() > before, "{:?}", scan.missing);
    }
    panic!("still missing bytes after 16 rounds");
});

//! Any bytes through detection and every container scanner, with torch's restricted unpickler
//! replayed during the scan (`weights_only`) and its answer compared with the replay run alone. Decompression gets a 1 MiB floor
//! (instead of 64 MiB): the budget paths are reached as they are with the default, and a small
//! input expanding to the default floor (a 7z bomb holds a 64 MiB folder in memory, within its
//! budget) does not cost the fuzzer its memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::container;
use picklescan_rs::{Limits, Scanner};
use std::sync::OnceLock;

// Parsing the built-in rules costs more than most inputs: do it once.
static SCANNER: OnceLock<Scanner> = OnceLock::new();

fn scanner() -> &'static Scanner {
    SCANNER.get_or_init(|| {
        let base = Scanner::default();
        let limits = Limits {
            max_decompressed: 1 << 20,
            ratio_floor: 1 << 20,
            ..base.limits.clone()
        };
        let mut scanner = Scanner::new(base.rules, limits);
        scanner.weights_only = true;
        scanner
    })
}

fuzz_target!(|data: &[u8]| {
    let scanner = scanner();
    let scan = container::scan_file(scanner, data, None, None);
    let alone = container::weights_only::check_with(data, &scanner.limits);
    assert_eq!(scan.weights_only, Some(alone));
});

//! Any bytes through detection and every container scanner. Decompression gets a 1 MiB floor
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
        Scanner::new(base.rules, limits)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = container::scan(scanner(), data, None);
});

//! Any bytes through detection and every container scanner.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::{container, Scanner};

fuzz_target!(|data: &[u8]| {
    let scanner = Scanner::default();
    let _ = container::scan(&scanner, data, None);
});

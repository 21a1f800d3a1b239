//! Any bytes through detection and every container scanner.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::{container, Scanner};
use std::sync::OnceLock;

// Parsing the built-in rules costs more than most inputs: do it once.
static SCANNER: OnceLock<Scanner> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let _ = container::scan(SCANNER.get_or_init(Scanner::default), data, None);
});

//! Any bytes as pickle streams through the decoder, the symbolic machine and the judge.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::pickle::vm::NoHooks;
use picklescan_rs::Scanner;
use std::sync::OnceLock;

// Parsing the built-in rules costs more than most inputs: do it once.
static SCANNER: OnceLock<Scanner> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let _ = SCANNER
        .get_or_init(Scanner::default)
        .scan_pickles(data, &mut NoHooks);
});

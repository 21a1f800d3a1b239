//! Any bytes as a joblib pickle: inline array skipping and nested object arrays.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::joblib::JoblibHooks;
use picklescan_rs::Scanner;
use std::sync::OnceLock;

// Parsing the built-in rules costs more than most inputs: do it once.
static SCANNER: OnceLock<Scanner> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut hooks = JoblibHooks::new(data);
    let _ = SCANNER
        .get_or_init(Scanner::default)
        .scan_pickles(data, &mut hooks);
});

//! Any bytes as pickle streams through the decoder, the symbolic machine and the judge.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::pickle::vm::NoHooks;
use picklescan_rs::Scanner;

fuzz_target!(|data: &[u8]| {
    let _ = Scanner::default().scan_pickles(data, &mut NoHooks);
});

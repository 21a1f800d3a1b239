//! Any bytes as a numpy `.npy` header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::npy;

fuzz_target!(|data: &[u8]| {
    let _ = npy::parse_header(data);
});

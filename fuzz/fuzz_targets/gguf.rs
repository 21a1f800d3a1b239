//! Any bytes through the GGUF validator.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::gguf;

fuzz_target!(|data: &[u8]| {
    let _ = gguf::validate(data);
});

//! Any bytes through the safetensors validator.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::container::safetensors;

fuzz_target!(|data: &[u8]| {
    let _ = safetensors::validate(data);
});

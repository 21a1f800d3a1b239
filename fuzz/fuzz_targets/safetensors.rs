//! Any bytes through the safetensors reader: a header it accepts covers the data section exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::safetensors;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = safetensors::read(data) {
        let spans: u64 = h.tensors.iter().map(|t| t.end - t.begin).sum();
        assert_eq!(h.data_start + spans, data.len() as u64);
    }
});

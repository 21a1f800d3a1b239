//! Any bytes as a joblib pickle: inline array skipping and nested object arrays.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::container::joblib::JoblibHooks;
use picklescan_rs::Scanner;

fuzz_target!(|data: &[u8]| {
    let mut hooks = JoblibHooks::new(data);
    let _ = Scanner::default().scan_pickles(data, &mut hooks);
});

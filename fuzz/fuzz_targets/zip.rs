//! Any bytes through the lenient zip reader: parse, then read every member.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::zip::Archive;

fuzz_target!(|data: &[u8]| {
    if let Ok(archive) = Archive::parse(data, 10_000) {
        let mut notes = Vec::new();
        for e in &archive.entries {
            let _ = archive.head(e, 64, &mut notes);
            let _ = archive.read(e, 1 << 20, &mut notes);
        }
    }
});

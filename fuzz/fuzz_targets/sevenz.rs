//! Any bytes through the 7z reader and its decoders: as a whole archive, and as the next header
//! of an archive whose signature header (CRCs included) is made valid around them, so that the
//! header parser and the coders are reached without the fuzzer having to find two CRCs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::sevenz;

/// Budget for headers and folders: small, so that an execution stays cheap.
const BUDGET: u64 = 1 << 20;

fn read_all(data: &[u8]) {
    if let Ok(a) = sevenz::read(data, BUDGET) {
        for f in &a.folders {
            let _ = sevenz::decode_folder(data, &a, f, BUDGET);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    read_all(data);
    // The input is both the packed streams (from offset 32) and the next header (its end): the
    // first byte says where the header starts.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * rest.len() / 256) as u64;
    let size = rest.len() as u64 - at;
    let mut start = Vec::with_capacity(20);
    start.extend_from_slice(&at.to_le_bytes());
    start.extend_from_slice(&size.to_le_bytes());
    start.extend_from_slice(&crc32fast::hash(&rest[at as usize..]).to_le_bytes());
    let mut archive = sevenz::SIGNATURE.to_vec();
    archive.extend_from_slice(&[0, 4]);
    archive.extend_from_slice(&crc32fast::hash(&start).to_le_bytes());
    archive.extend_from_slice(&start);
    archive.extend_from_slice(rest);
    read_all(&archive);
});

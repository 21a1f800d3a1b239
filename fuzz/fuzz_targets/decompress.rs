//! Any bytes through every decompressor joblib uses, under a small budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::container::compress::{decompress, Codec};

fuzz_target!(|data: &[u8]| {
    for codec in [Codec::Zlib, Codec::Gzip, Codec::Bz2, Codec::Lzma, Codec::Xz, Codec::Lz4, Codec::ZFile] {
        let _ = decompress(codec, data, 1 << 20);
    }
});

//! Any bytes through one of the decompressors (joblib's, and the Zstandard of wrapped files), under a small budget. The first byte
//! picks the decoder, so each input exercises one codec and the fuzzer learns per codec.
//! The 64 KiB budget is enough to reach the over-budget path from a 2 KB input (LZ matches
//! expand fast) without spending each execution writing a megabyte byte by byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::compress::{decompress, Codec};

const CODECS: [Codec; 8] = [
    Codec::Zlib,
    Codec::Gzip,
    Codec::Bz2,
    Codec::Lzma,
    Codec::Xz,
    Codec::Lz4,
    Codec::Zstd,
    Codec::ZFile,
];

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, rest)) = data.split_first() {
        let codec = CODECS[pick as usize % CODECS.len()];
        let _ = decompress(codec, rest, 1 << 16);
    }
});

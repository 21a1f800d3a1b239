//! Any bytes through the HDF5 reader (superblock, object headers, symbol tables, fractal heaps,
//! version 2 B-trees, global heaps), with and without the signature in front.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::internals::format::hdf5;

fuzz_target!(|data: &[u8]| {
    let _ = hdf5::read(data);
    let mut signed = hdf5::SIGNATURE.to_vec();
    signed.extend_from_slice(data);
    let _ = hdf5::read(&signed);
});

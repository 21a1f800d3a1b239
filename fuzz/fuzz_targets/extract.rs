//! Any bytes through extraction: the tensors are found as `--extract` finds them, then written
//! as safetensors data and as GGUF (converted to a type the first byte picks) into memory.
//! Decompression and what the tensors write get a 64 KiB floor (instead of 64 MiB) so an input
//! expanding to a megabyte costs little.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::extract::{safetensors, to_gguf, write_in_order, ExtractOptions, Source};
use picklescan_rs::quant::GgmlType;
use picklescan_rs::{Limits, Scanner};
use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::OnceLock;

// Parsing the built-in rules costs more than most inputs: do it once.
static SCANNER: OnceLock<Scanner> = OnceLock::new();

fn scanner() -> &'static Scanner {
    SCANNER.get_or_init(|| {
        let base = Scanner::default();
        let limits = Limits {
            max_decompressed: 1 << 16,
            ratio_floor: 1 << 16,
            ..base.limits.clone()
        };
        Scanner::new(base.rules, limits)
    })
}

/// Counts what is written, keeps nothing; the count is the position written to next.
struct Count(u64);

impl Seek for Count {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Start(n) => self.0 = n,
            _ => return Err(io::Error::other("only absolute seeks are counted")),
        }
        Ok(self.0)
    }
}

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let quant = GgmlType::ALL
        .get(pick as usize % (GgmlType::ALL.len() + 1))
        .copied();
    let opts = ExtractOptions {
        skip_unsupported: true,
        quant,
        ..ExtractOptions::default()
    };
    let source = Source::from_bytes("input", rest.to_vec());
    let Ok(extraction) = source.collect(scanner(), &opts) else {
        return;
    };
    // safetensors: every tensor's bytes in file order after the header, by the real writer.
    let plan = safetensors::layout(&extraction.tensors, &BTreeMap::new());
    let mut out = Count(0);
    write_in_order(&plan, &extraction.tensors, &mut out, &Default::default())
        .expect("tensors found are written");
    assert_eq!(
        out.0,
        plan.file_len(),
        "safetensors data differs from its plan"
    );
    // GGUF, converted or as stored.
    let (planned, _, _) = to_gguf::plan(&extraction.tensors, quant);
    let _ = to_gguf::write_gguf(
        &extraction,
        &planned,
        Vec::new(),
        &mut Count(0),
        &Default::default(),
    );
});

//! Any bytes through extraction: the tensors are found as `--extract` finds them, then written
//! as safetensors data and as GGUF (converted to a type the first byte picks) into memory.
//! Decompression and what the tensors write get a 64 KiB floor (instead of 64 MiB) so an input
//! expanding to a megabyte costs little.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::extract::{safetensors, to_gguf, ExtractOptions, Source, CHUNK};
use picklescan_rs::quant::GgmlType;
use picklescan_rs::{Limits, Scanner};
use std::collections::BTreeMap;
use std::io::{self, Write};
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

/// Counts what is written, keeps nothing.
struct Count(u64);

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
    let quant = GgmlType::ALL.get(pick as usize % (GgmlType::ALL.len() + 1)).copied();
    let opts = ExtractOptions {
        skip_unsupported: true,
        quant,
        ..ExtractOptions::default()
    };
    let source = Source::from_bytes("input", rest.to_vec());
    let Ok(extraction) = source.collect(scanner(), &opts) else {
        return;
    };
    // safetensors: the header, then every tensor's bytes in file order.
    let plan = safetensors::Plan::new(&extraction.tensors, &BTreeMap::new());
    let mut out = Count(plan.head.len() as u64);
    for &i in &plan.order {
        let t = &extraction.tensors[i];
        let _ = t.source.for_each_chunk(CHUNK, &mut |b| out.write_all(b));
    }
    assert_eq!(out.0, plan.file_len(), "safetensors data differs from its plan");
    // GGUF, converted or as stored.
    let (planned, _, _) = to_gguf::plan(&extraction.tensors, quant);
    let _ = to_gguf::write_gguf(&extraction, &planned, Vec::new(), &mut Count(0));
});

//! Bit-exactness of the quantizers against reference vectors made by
//! `scripts/gen_quant_refs.py` (gguf-py and ggml's C reference), plus round-trip and policy
//! checks. No Python is needed to run these tests.

use std::path::PathBuf;

use picklescan_rs::quant::{
    self, bf16_to_f32, choose_type, dequantize, f16_to_f32, f32_to_bf16, f32_to_f16, quantize,
    quantize_row, GgmlType, QuantError,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quant")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn read_f32(name: &str) -> Vec<f32> {
    std::fs::read(fixture_dir().join(name))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[test]
fn block_types_bit_exact() {
    let m = manifest();
    let mut checked = 0;
    for set in m["sets"].as_array().unwrap() {
        let input = read_f32(set["input"].as_str().unwrap());
        let row_len = set["row_len"].as_u64().unwrap() as usize;
        for out in set["outputs"].as_array().unwrap() {
            let ty: GgmlType = out["type"].as_str().unwrap().parse().unwrap();
            let expected =
                std::fs::read(fixture_dir().join(out["file"].as_str().unwrap())).unwrap();
            let got = quantize(ty, &input, row_len).unwrap();
            assert_eq!(got.len(), expected.len(), "{ty} size");
            if let Some(i) = first_diff(&got, &expected) {
                let block = i / ty.type_size();
                panic!(
                    "{ty} on set {}: first difference at byte {i} (block {block}, byte {} of the block): got {:#04x}, expected {:#04x}",
                    set["name"],
                    i % ty.type_size(),
                    got[i],
                    expected[i]
                );
            }
            // Single-threaded row API gives the same bytes.
            let mut serial = Vec::new();
            for row in input.chunks(row_len) {
                quantize_row(ty, row, &mut serial).unwrap();
            }
            assert_eq!(serial, expected, "{ty} quantize_row");
            // Dequantization is bit-exact with ggml's dequantize_row_*.
            let deq = dequantize(ty, &expected).unwrap();
            let mut h = Sha256::new();
            for v in &deq {
                h.update(v.to_le_bytes());
            }
            let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                digest,
                out["dequant_sha256"].as_str().unwrap(),
                "{ty} dequantization differs from ggml on set {}",
                set["name"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

#[test]
fn float_conversions_bit_exact() {
    let m = manifest();
    let f = &m["floats"];
    let vals = read_f32(f["input"].as_str().unwrap());
    for (ty, conv) in [
        (GgmlType::F16, f32_to_f16 as fn(f32) -> u16),
        (GgmlType::BF16, f32_to_bf16 as fn(f32) -> u16),
    ] {
        let expected =
            std::fs::read(fixture_dir().join(f[ty.name()]["file"].as_str().unwrap())).unwrap();
        let got = quantize(ty, &vals, vals.len()).unwrap();
        if let Some(i) = first_diff(&got, &expected) {
            let v = vals[i / 2];
            panic!(
                "{ty}: value {v:e} ({:#010x}) converts differently",
                v.to_bits()
            );
        }
        for (v, e) in vals.iter().zip(expected.chunks_exact(2)) {
            assert_eq!(conv(*v), u16::from_le_bytes([e[0], e[1]]));
        }
    }
}

#[test]
fn f32_passthrough_keeps_bits() {
    let vals = [
        1.5f32,
        f32::NAN,
        f32::from_bits(0x7f80_0001),
        -0.0,
        f32::INFINITY,
    ];
    let bytes = quantize(GgmlType::F32, &vals, vals.len()).unwrap();
    let back = dequantize(GgmlType::F32, &bytes).unwrap();
    for (a, b) in vals.iter().zip(&back) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

#[test]
fn half_round_trips() {
    for h in (0..=u16::MAX).step_by(7) {
        let f = f16_to_f32(h);
        if !f.is_nan() {
            assert_eq!(f32_to_f16(f), h);
        }
        let b = bf16_to_f32(h);
        if !b.is_nan() {
            assert_eq!(f32_to_bf16(b), h);
        }
    }
}

/// Relative RMS error of a quantize/dequantize round trip on N(0,1) data.
fn rel_rms(ty: GgmlType, data: &[f32]) -> f64 {
    let q = quantize(ty, data, 256).unwrap();
    let d = dequantize(ty, &q).unwrap();
    let (mut num, mut den) = (0f64, 0f64);
    for (a, b) in data.iter().zip(&d) {
        num += ((a - b) as f64).powi(2);
        den += (*a as f64).powi(2);
    }
    (num / den).sqrt()
}

fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    // xorshift + Box-Muller: deterministic, no extra dependency.
    let mut s = seed;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next(), next());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

#[test]
fn round_trip_error_bounds() {
    let data = gaussian(256 * 64, 7);
    // Upper bounds a little above the errors ggml's reference reaches on Gaussian data.
    let bounds = [
        (GgmlType::F16, 1e-3),
        (GgmlType::BF16, 5e-3),
        (GgmlType::Q8_0, 0.01),
        (GgmlType::Q6_K, 0.03),
        (GgmlType::Q5_0, 0.06),
        (GgmlType::Q5_1, 0.06),
        (GgmlType::Q5_K, 0.06),
        (GgmlType::Q4_0, 0.12),
        (GgmlType::Q4_1, 0.12),
        (GgmlType::Q4_K, 0.1),
        (GgmlType::Q3_K, 0.25),
        (GgmlType::Q2_K, 0.45),
    ];
    for (ty, bound) in bounds {
        let e = rel_rms(ty, &data);
        assert!(e < bound, "{ty}: relative RMS error {e} >= {bound}");
    }
}

#[test]
fn parallel_output_is_deterministic() {
    let data = gaussian(256 * 1024, 3);
    for ty in [GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q6_K] {
        let a = quantize(ty, &data, 4096).unwrap();
        let mut b = Vec::new();
        quantize_row(ty, &data, &mut b).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn type_table_and_names() {
    let expect = [
        ("f32", 0, 1, 4),
        ("F16", 1, 1, 2),
        ("q4_0", 2, 32, 18),
        ("Q4_1", 3, 32, 20),
        ("q5_0", 6, 32, 22),
        ("q5_1", 7, 32, 24),
        ("Q8_0", 8, 32, 34),
        ("q2_k", 10, 256, 84),
        ("Q3_K", 11, 256, 110),
        ("q4_K", 12, 256, 144),
        ("Q5_k", 13, 256, 176),
        ("q6_k", 14, 256, 210),
        ("bf16", 30, 1, 2),
    ];
    for (name, id, bs, ts) in expect {
        let ty: GgmlType = name.parse().unwrap();
        assert_eq!(
            (ty.id(), ty.block_size(), ty.type_size()),
            (id, bs, ts),
            "{name}"
        );
        assert_eq!(GgmlType::from_id(id), Some(ty));
        assert!(ty.name().eq_ignore_ascii_case(name));
    }
    assert!(matches!(
        "q4_k_m".parse::<GgmlType>(),
        Err(QuantError::UnknownType(_))
    ));
    assert_eq!(GgmlType::from_id(9), None);
    assert_eq!(GgmlType::Q8_0.file_type(), 7);
    assert_eq!(GgmlType::BF16.file_type(), 32);
    assert_eq!(GgmlType::Q4_K.nbytes(&[3, 512]).unwrap(), 3 * 2 * 144);
    assert_eq!(GgmlType::F16.nbytes(&[]).unwrap(), 2);
}

#[test]
fn errors_are_reported() {
    assert!(matches!(
        quantize(GgmlType::Q4_0, &[0.0; 48], 48),
        Err(QuantError::RowLength { .. })
    ));
    assert!(matches!(
        quantize(GgmlType::Q4_0, &[0.0; 96], 64),
        Err(QuantError::PartialRow { .. })
    ));
    let mut x = vec![0.5f32; 64];
    x[40] = f32::NAN;
    match quantize(GgmlType::Q8_0, &x, 64) {
        Err(QuantError::NonFinite { index, .. }) => assert_eq!(index, 40),
        other => panic!("{other:?}"),
    }
    assert!(quantize(GgmlType::F16, &x, 64).is_ok());
    // With bad values in several parallel chunks, the first one is reported.
    let mut big = vec![1.0f32; 1 << 20];
    big[900_000] = f32::NEG_INFINITY;
    big[70_001] = f32::INFINITY;
    for _ in 0..5 {
        match quantize(GgmlType::Q4_K, &big, 4096) {
            Err(QuantError::NonFinite { index, .. }) => assert_eq!(index, 70_001),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        dequantize(GgmlType::Q4_K, &[0u8; 100]),
        Err(QuantError::PartialBlock { .. })
    ));
    assert_eq!(quantize(GgmlType::Q4_0, &[], 0).unwrap(), Vec::<u8>::new());
}

#[test]
fn choose_type_policy() {
    use GgmlType::*;
    assert_eq!(choose_type(Q4_K, &[4096, 4096]), (Q4_K, None));
    let (t, note) = choose_type(Q4_K, &[4096]);
    assert_eq!(t, F32);
    assert!(note.unwrap().contains("1-D"));
    assert_eq!(choose_type(Q8_0, &[]).0, F32);
    assert_eq!(choose_type(F16, &[7]).0, F32);
    assert_eq!(choose_type(BF16, &[]).0, F32);
    assert_eq!(choose_type(F32, &[7]), (F32, None));
    assert_eq!(choose_type(F16, &[3, 7]), (F16, None));
    assert_eq!(choose_type(BF16, &[3, 7]), (BF16, None));
    // K-quant fallbacks when 256 does not divide the row.
    assert_eq!(choose_type(Q2_K, &[10, 96]).0, Q4_0);
    assert_eq!(choose_type(Q3_K, &[10, 96]).0, Q4_0);
    assert_eq!(choose_type(Q4_K, &[10, 96]).0, Q5_0);
    assert_eq!(choose_type(Q5_K, &[10, 96]).0, Q5_1);
    let (t, note) = choose_type(Q6_K, &[10, 96]);
    assert_eq!(t, Q8_0);
    assert!(note.unwrap().contains("96"));
    // Nothing with blocks fits: F16.
    assert_eq!(choose_type(Q6_K, &[10, 100]).0, F16);
    assert_eq!(choose_type(Q4_0, &[10, 100]).0, F16);
    assert_eq!(choose_type(Q4_0, &[2, 10, 64]), (Q4_0, None));
    // The chosen type always fits the row.
    for ty in GgmlType::ALL {
        for row in [1usize, 31, 32, 96, 255, 256, 288, 512] {
            let (t, _) = choose_type(ty, &[4, row]);
            assert_eq!(row % t.block_size(), 0, "{ty} row {row} -> {t}");
            assert!(t.nbytes(&[4, row]).is_ok());
        }
    }
    let _ = quant::QK_K;
}

/// Same data as `example_values` in scripts/gen_quant_refs.py (exact in f32).
fn example_values(n: usize) -> Vec<f32> {
    (0..n as i64)
        .map(|i| ((i * 37) % 101 - 50) as f32 / 16.0)
        .collect()
}

#[test]
fn gguf_writer_matches_gguf_py() {
    use picklescan_rs::gguf::{Array, GgufWriter, Value};
    let expected = std::fs::read(fixture_dir().join("example.gguf")).unwrap();

    let mut w = GgufWriter::new(Vec::new());
    let kvs: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("example.u8", 200u8.into()),
        ("example.i8", (-100i8).into()),
        ("example.u16", 60000u16.into()),
        ("example.i16", (-30000i16).into()),
        ("example.u32", 4_000_000_000u32.into()),
        ("example.i32", (-2_000_000_000i32).into()),
        ("example.f32", 1.5f32.into()),
        ("example.bool", true.into()),
        ("example.string", "h\u{e9}llo, world".into()),
        ("example.u64", 18_000_000_000_000_000_000u64.into()),
        ("example.i64", (-9_000_000_000_000_000_000i64).into()),
        ("example.f64", (-2.25e300f64).into()),
        ("example.arr.u8", vec![1u8, 2, 255].into()),
        ("example.arr.i8", vec![-1i8, 2, -128].into()),
        ("example.arr.u16", vec![1u16, 65535].into()),
        ("example.arr.i16", vec![-2i16, 300].into()),
        ("example.arr.u32", vec![7u32, 8, 9].into()),
        ("example.arr.i32", vec![-7i32, 8].into()),
        ("example.arr.f32", vec![0.5f32, -1.25].into()),
        ("example.arr.bool", vec![true, false, true].into()),
        ("example.arr.string", vec!["a", "", "\u{fc}\u{df}"].into()),
        (
            "example.arr.u64",
            Value::Array(Array::U64(vec![1, u64::MAX])),
        ),
        ("example.arr.i64", vec![i64::MIN, 5].into()),
        ("example.arr.f64", vec![3.0f64, -0.125].into()),
        ("general.alignment", 64u32.into()),
        ("general.quantization_version", 2u32.into()),
    ];
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    let tensors: Vec<(&str, Vec<usize>, GgmlType)> = vec![
        ("t.f32", vec![3, 5], GgmlType::F32),
        ("t.f16", vec![2, 4, 8], GgmlType::F16),
        ("t.bf16", vec![2, 16], GgmlType::BF16),
        ("t.q8_0", vec![4, 64], GgmlType::Q8_0),
        ("t.vec", vec![7], GgmlType::F32),
        ("t.4d", vec![2, 1, 3, 4], GgmlType::F32),
    ];
    for (name, shape, ty) in &tensors {
        w.add_tensor_info(*name, shape, *ty).unwrap();
    }
    w.write_header().unwrap();
    for (_, shape, ty) in &tensors {
        let n: usize = shape.iter().product();
        let data = quantize(*ty, &example_values(n), shape[shape.len() - 1]).unwrap();
        // Stream in two chunks to exercise partial writes.
        let (a, b) = data.split_at(data.len() / 2);
        w.write_tensor_data(a).unwrap();
        w.write_tensor_data(b).unwrap();
    }
    let got = w.finish().unwrap();
    assert_eq!(got.len(), expected.len());
    if let Some(i) = first_diff(&got, &expected) {
        panic!("GGUF differs from gguf-py's at byte {i}");
    }
}

/// Blocks so small that ggml's `1.0f/d` overflows: every scaled value is ±inf or NaN, and
/// ggml (x86-64) stores 0 for each. Expected bytes from ggml's C `quantize_row_*_ref`.
#[test]
fn tiny_blocks_match_ggml() {
    let mut x: Vec<f32> = (0..32).map(|i| ((i % 7) as f32 - 3.0) * 1e-40).collect();
    x[3] = -0.0;
    let expected: [(GgmlType, &[u8]); 5] = [
        (GgmlType::Q8_0, &[0; 34]),
        (GgmlType::Q4_0, &[0; 18]),
        (
            GgmlType::Q4_1,
            &[0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (GgmlType::Q5_0, &[0; 22]),
        (
            GgmlType::Q5_1,
            &[
                0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
    ];
    for (ty, want) in expected {
        assert_eq!(quantize(ty, &x, 32).unwrap(), want, "{ty}");
    }
}

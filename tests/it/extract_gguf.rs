//! Extraction to GGUF end to end, without Python: safetensors inputs written here, converted with
//! and without a requested type, then read back with the crate's own GGUF validation and a small
//! reader, and compared with the crate's quantizers (bit-exact) and dequantizers.

use picklescan_rs::extract::{self, ExtractError, ExtractOptions, OutputFormat};
use picklescan_rs::internals::format::gguf::validate;
use picklescan_rs::quant::{self, GgmlType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `(name, dtype, shape, bytes)` written as a safetensors file.
fn write_safetensors(path: &Path, tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let b = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [b, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

#[derive(Debug)]
pub(crate) struct GgufTensor {
    pub(crate) dims: Vec<u64>,
    pub(crate) ty: u32,
    pub(crate) data: Vec<u8>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Kv {
    Str(String),
    U32(u32),
}

/// A minimal GGUF reader for the files written here (string and u32 metadata).
pub(crate) fn read_gguf(
    path: &Path,
) -> (
    BTreeMap<String, Kv>,
    BTreeMap<String, GgufTensor>,
    Vec<String>,
) {
    let b = std::fs::read(path).unwrap();
    validate(&b).expect("ggml's rules accept the file");
    let mut i = 4usize;
    let u32_at = |i: &mut usize| {
        let v = u32::from_le_bytes(b[*i..*i + 4].try_into().unwrap());
        *i += 4;
        v
    };
    let u64_at = |i: &mut usize| {
        let v = u64::from_le_bytes(b[*i..*i + 8].try_into().unwrap());
        *i += 8;
        v
    };
    let str_at = |i: &mut usize| {
        let n = u64_at(i) as usize;
        let s = String::from_utf8(b[*i..*i + n].to_vec()).unwrap();
        *i += n;
        s
    };
    assert_eq!(u32_at(&mut i), 3);
    let n_t = u64_at(&mut i);
    let n_kv = u64_at(&mut i);
    let mut kvs = BTreeMap::new();
    for _ in 0..n_kv {
        let k = str_at(&mut i);
        let v = match u32_at(&mut i) {
            4 => Kv::U32(u32_at(&mut i)),
            8 => Kv::Str(str_at(&mut i)),
            t => panic!("unexpected metadata type {t}"),
        };
        kvs.insert(k, v);
    }
    let mut infos = Vec::new();
    for _ in 0..n_t {
        let name = str_at(&mut i);
        let n_dims = u32_at(&mut i);
        let dims: Vec<u64> = (0..n_dims).map(|_| u64_at(&mut i)).collect();
        let ty = u32_at(&mut i);
        let off = u64_at(&mut i);
        infos.push((name, dims, ty, off));
    }
    let start = i.div_ceil(32) * 32;
    let mut tensors = BTreeMap::new();
    let mut order = Vec::new();
    for (name, dims, ty, off) in infos {
        let t = GgmlType::from_id(ty).unwrap();
        let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
        let n = t.nbytes(&shape).unwrap();
        let s = start + off as usize;
        order.push(name.clone());
        tensors.insert(
            name,
            GgufTensor {
                dims,
                ty,
                data: b[s..s + n].to_vec(),
            },
        );
    }
    (kvs, tensors, order)
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 4.0
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Case {
    dir: tempfile::TempDir,
    input: PathBuf,
    w: Vec<f32>,
    h: Vec<f32>,
    b: Vec<f32>,
    bias: Vec<f32>,
}

/// A safetensors model: f32 [64, 256] (several batches' worth of blocks), f16 [8, 64],
/// bf16 [4, 32], f32 [64] (1-D), i32 [3, 4], f32 [5, 48] (rows fit no block), and with `bool`
/// a BOOL tensor GGUF cannot hold.
fn model(with_bool: bool) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.safetensors");
    let w = values(64 * 256, 1);
    let h: Vec<f32> = values(8 * 64, 2)
        .iter()
        .map(|&v| quant::f16_to_f32(quant::f32_to_f16(v)))
        .collect();
    let b: Vec<f32> = values(4 * 32, 3)
        .iter()
        .map(|&v| quant::bf16_to_f32(quant::f32_to_bf16(v)))
        .collect();
    let bias = values(64, 4);
    let odd = values(5 * 48, 5);
    let ints: Vec<u8> = (0..12i32).flat_map(|i| (i - 6).to_le_bytes()).collect();
    let mut tensors = vec![
        ("w", "F32", vec![64, 256], f32_bytes(&w)),
        (
            "h",
            "F16",
            vec![8, 64],
            h.iter()
                .flat_map(|&v| quant::f32_to_f16(v).to_le_bytes())
                .collect(),
        ),
        (
            "b",
            "BF16",
            vec![4, 32],
            b.iter()
                .flat_map(|&v| quant::f32_to_bf16(v).to_le_bytes())
                .collect(),
        ),
        ("bias", "F32", vec![64], f32_bytes(&bias)),
        ("ids", "I32", vec![3, 4], ints),
        ("odd", "F32", vec![5, 48], f32_bytes(&odd)),
    ];
    if with_bool {
        tensors.push(("mask", "BOOL", vec![2], vec![0, 1]));
    }
    write_safetensors(&input, &tensors);
    Case {
        dir,
        input,
        w,
        h,
        b,
        bias,
    }
}

fn opts(quant: Option<GgmlType>) -> ExtractOptions {
    ExtractOptions {
        to: OutputFormat::Gguf,
        quant,
        ..Default::default()
    }
}

fn run(input: &Path, o: &ExtractOptions) -> Result<extract::Written, ExtractError> {
    extract::extract(&crate::common::default_engine(), input, o).result
}

#[test]
fn as_is_keeps_types_and_bytes() {
    let c = model(false);
    let w = run(&c.input, &opts(None)).unwrap();
    assert_eq!(w.output, c.dir.path().join("model.gguf"));
    let (kvs, t, order) = read_gguf(&w.output);
    assert_eq!(order, ["w", "h", "b", "bias", "ids", "odd"]);
    assert_eq!(kvs["general.architecture"], Kv::Str("unknown".into()));
    assert_eq!(kvs["general.name"], Kv::Str("model".into()));
    assert_eq!(kvs["general.file_type"], Kv::U32(0));
    assert_eq!(kvs["general.alignment"], Kv::U32(32));
    assert!(!kvs.contains_key("general.quantization_version"));
    assert_eq!(kvs["picklescan.scan_verdict"], Kv::Str("clean".into()));
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(std::fs::read(&c.input).unwrap());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(kvs["picklescan.source_sha256"], Kv::Str(digest));
    assert_eq!(t["w"].dims, [256, 64]);
    assert_eq!(t["w"].ty, GgmlType::F32.id());
    assert_eq!(t["w"].data, f32_bytes(&c.w));
    assert_eq!(t["h"].ty, GgmlType::F16.id());
    assert_eq!(t["b"].ty, GgmlType::BF16.id());
    assert_eq!(t["ids"].ty, GgmlType::I32.id());
    assert_eq!(t["ids"].dims, [4, 3]);
    assert_eq!(
        quant::dequantize(GgmlType::I32, &t["ids"].data).unwrap()[0],
        -6.0
    );
    assert_eq!(t["bias"].dims, [64]);
}

#[test]
fn q8_0_and_q4_0_are_the_reference_bytes() {
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let c = model(false);
        let w = run(&c.input, &opts(Some(ty))).unwrap();
        let (kvs, t, _) = read_gguf(&w.output);
        assert_eq!(kvs["general.file_type"], Kv::U32(ty.file_type()));
        assert_eq!(kvs["general.quantization_version"], Kv::U32(2));
        assert_eq!(t["w"].ty, ty.id());
        assert_eq!(t["w"].data, quant::quantize(ty, &c.w, 256).unwrap());
        assert_eq!(t["h"].data, quant::quantize(ty, &c.h, 64).unwrap());
        assert_eq!(t["b"].data, quant::quantize(ty, &c.b, 32).unwrap());
        // 1-D stays F32, rows of 48 fall back to F16, integers stay as they are.
        assert_eq!(t["bias"].ty, GgmlType::F32.id());
        assert_eq!(t["bias"].data, f32_bytes(&c.bias));
        assert_eq!(t["odd"].ty, GgmlType::F16.id());
        assert_eq!(t["ids"].ty, GgmlType::I32.id());
        assert!(
            w.notes.iter().any(|n| n.starts_with("odd:")),
            "{:?}",
            w.notes
        );
    }
}

#[test]
fn k_quants_dequantize_close() {
    let c = model(false);
    let w = run(&c.input, &opts(Some(GgmlType::Q4_K))).unwrap();
    let (_, t, _) = read_gguf(&w.output);
    assert_eq!(t["w"].ty, GgmlType::Q4_K.id());
    assert_eq!(
        t["w"].data,
        quant::quantize(GgmlType::Q4_K, &c.w, 256).unwrap()
    );
    let back = quant::dequantize(GgmlType::Q4_K, &t["w"].data).unwrap();
    let err = back
        .iter()
        .zip(&c.w)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 0.3, "Q4_K max error {err} (values in [-2, 2])");
    // Rows of 64 and 32 do not fit 256: Q4_K falls back to Q5_0.
    assert_eq!(t["h"].ty, GgmlType::Q5_0.id());
    assert_eq!(t["b"].ty, GgmlType::Q5_0.id());
}

#[test]
fn unsupported_dtypes_are_refused_or_skipped() {
    let c = model(true);
    match run(&c.input, &opts(None)) {
        Err(ExtractError::UnsupportedGguf(list)) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].name, "mask");
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.dir.path().join("model.gguf").exists());
    let w = run(
        &c.input,
        &ExtractOptions {
            skip_unsupported: true,
            ..opts(None)
        },
    )
    .unwrap();
    assert_eq!(w.skipped.len(), 1);
    let (_, t, _) = read_gguf(&w.output);
    assert!(!t.contains_key("mask"));
}

#[test]
fn no_overwrite_and_nothing_left_on_failure() {
    let c = model(false);
    run(&c.input, &opts(None)).unwrap();
    assert!(matches!(
        run(&c.input, &opts(None)),
        Err(ExtractError::Exists(_))
    ));
    run(
        &c.input,
        &ExtractOptions {
            force: true,
            ..opts(Some(GgmlType::Q8_0))
        },
    )
    .unwrap();

    // A NaN cannot be quantized: the extraction fails and leaves no file behind.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nan.safetensors");
    let mut v = values(2 * 32, 9);
    v[40] = f32::NAN;
    write_safetensors(&input, &[("w", "F32", vec![2, 32], f32_bytes(&v))]);
    let err = run(&input, &opts(Some(GgmlType::Q4_0))).unwrap_err();
    assert!(err.to_string().contains("'w'"), "{err}");
    assert!(err.to_string().contains("index 40"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // As F32, the NaN is kept.
    let w = run(&input, &opts(None)).unwrap();
    let (_, t, _) = read_gguf(&w.output);
    assert_eq!(t["w"].data, f32_bytes(&v));
}

#[test]
fn torch_checkpoint_to_gguf() {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/benign/torch_state_dict.pt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sd.gguf");
    let w = run(
        &input,
        &ExtractOptions {
            output: Some(out.clone()),
            skip_unsupported: true,
            arch: Some("llama".into()),
            ..opts(Some(GgmlType::Q8_0))
        },
    )
    .unwrap();
    let (kvs, t, _) = read_gguf(&out);
    assert_eq!(kvs["general.architecture"], Kv::Str("llama".into()));
    assert_eq!(t.len(), w.tensors.len());
    assert_eq!(
        kvs["picklescan.source_format"],
        Kv::Str(w.format.to_string())
    );
}

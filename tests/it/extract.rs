//! Extraction end to end: corpus fixtures against the tensors torch/numpy/joblib loaded when the
//! corpus was generated (`corpus/expected/<stem>.npz`, read here with the crate's own zip and npy
//! readers), output file semantics (temporary file + rename, no overwrite, nothing left behind on
//! failure), `--strict`, `--select`, duplicate names, and malicious files (nothing runs; what is
//! not a tensor is listed as dropped).

use picklescan_rs::extract::{self, ExtractError, ExtractOptions, Outcome};
use picklescan_rs::internals::format::npy;
use picklescan_rs::internals::format::zip::Archive;
use picklescan_rs::report::Gate;
use picklescan_rs::Format;
use picklescan_rs::Verdict;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// A safetensors file: header entries and the data section.
struct St {
    entries: BTreeMap<String, (String, Vec<u64>, Vec<u8>)>,
    metadata: BTreeMap<String, String>,
    order: Vec<String>,
}

fn read_safetensors(path: &Path) -> St {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header length is a multiple of 8");
    let header = &b[8..8 + n];
    let json: serde_json::Map<String, Value> = serde_json::from_slice(header).unwrap();
    let data = &b[8 + n..];
    let mut entries = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let mut spans = Vec::new();
    for (k, v) in &json {
        if k == "__metadata__" {
            for (mk, mv) in v.as_object().unwrap() {
                metadata.insert(mk.clone(), mv.as_str().unwrap().to_string());
            }
            continue;
        }
        let dtype = v["dtype"].as_str().unwrap().to_string();
        let shape: Vec<u64> = v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let o = v["data_offsets"].as_array().unwrap();
        let (s, e) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
        entries.insert(
            k.clone(),
            (dtype, shape, data[s as usize..e as usize].to_vec()),
        );
        spans.push((s, e, k.clone()));
    }
    spans.sort();
    let mut end = 0u64;
    for (s, e, k) in &spans {
        assert_eq!(*s, end, "{k}: tensors are back to back");
        end = *e;
    }
    assert_eq!(end as usize, data.len(), "no trailing bytes");
    let order = spans.into_iter().map(|(_, _, k)| k).collect();
    St {
        entries,
        metadata,
        order,
    }
}

/// `corpus/expected/<stem>`: name → (dtype, shape, C-contiguous little-endian bytes).
fn expected(stem: &str) -> BTreeMap<String, (String, Vec<u64>, Vec<u8>)> {
    let dir = corpus().join("expected");
    let meta: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.json"))).unwrap()).unwrap();
    let npz = std::fs::read(dir.join(format!("{stem}.npz"))).unwrap();
    let archive = Archive::parse(&npz, 10_000).unwrap();
    let mut out = BTreeMap::new();
    for e in &archive.entries {
        let mut notes = Vec::new();
        let bytes = archive.read(e, 1 << 30, &mut notes).unwrap();
        let h = npy::parse_header(&bytes).unwrap();
        assert!(!h.fortran_order, "expected arrays are C order");
        let name = e.name.strip_suffix(".npy").unwrap().to_string();
        let m = &meta[&name];
        let shape: Vec<u64> = m["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(shape, h.shape);
        out.insert(
            name,
            (
                m["dtype"].as_str().unwrap().to_string(),
                shape,
                bytes[h.data_start..].to_vec(),
            ),
        );
    }
    out
}

fn run(input: &Path, opts: &ExtractOptions) -> Outcome {
    extract::extract(&crate::common::default_engine(), input, opts)
}

fn opts_to(out: &Path) -> ExtractOptions {
    ExtractOptions {
        output: Some(out.to_path_buf()),
        ..Default::default()
    }
}

/// Files in a folder (to check that nothing is left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn benign_fixtures_match_what_the_real_loaders_returned() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(corpus().join("manifest.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let stem = Path::new(path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap();
        if !path.starts_with("benign/")
            || !corpus()
                .join("expected")
                .join(format!("{stem}.npz"))
                .exists()
        {
            continue;
        }
        let out = tmp.path().join(format!("{stem}.safetensors"));
        let o = run(
            &corpus().join(path),
            &ExtractOptions {
                output: Some(out.clone()),
                skip_unsupported: true,
                ..Default::default()
            },
        );
        let written = o.result.unwrap_or_else(|e| panic!("{path}: {e}"));
        let got = read_safetensors(&out);
        let want = expected(stem);
        for (name, (dtype, shape, bytes)) in &want {
            if dtype == "C64" || dtype == "C128" {
                assert!(
                    !got.entries.contains_key(name),
                    "{path}: {name} is complex, not written"
                );
                assert!(
                    written.skipped.iter().any(|s| &s.name == name),
                    "{path}: {name} reported as skipped"
                );
                continue;
            }
            let (gd, gs, gb) = got
                .entries
                .get(name)
                .unwrap_or_else(|| panic!("{path}: no tensor {name}"));
            assert_eq!((gd, gs), (dtype, shape), "{path}: {name}");
            assert!(gb == bytes, "{path}: {name}: values differ");
        }
        let extra: Vec<&String> = got
            .entries
            .keys()
            .filter(|k| !want.contains_key(*k))
            .collect();
        assert!(extra.is_empty(), "{path}: unexpected tensors {extra:?}");
        assert_eq!(got.metadata["format"], "pt");
        assert_eq!(got.metadata["source_sha256"], written.source_sha256);
        assert_eq!(got.metadata["source_sha256"].len(), 64);
        assert_eq!(
            got.metadata["scan_verdict"],
            o.scan.unwrap().verdict.as_str()
        );
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} fixtures with expected tensors"
    );
}

#[test]
fn joblib_dump_without_alignment_extracts_what_joblib_loads() {
    // joblib.dump to a stream that cannot tell(): numpy_array_alignment_bytes is None and no
    // padding-length byte precedes the arrays. The scan and the extraction step over the same
    // bytes, and the arrays are those joblib.load returned (corpus/expected).
    let path = corpus().join("benign/joblib_arrays_unseekable.joblib");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let o = run(&path, &opts_to(&out));
    let scan = o.scan.unwrap();
    assert_eq!(scan.verdict, Verdict::Clean, "{:?}", scan.findings);
    o.result.unwrap();
    let got = read_safetensors(&out);
    let want = expected("joblib_arrays_unseekable");
    assert_eq!(want.len(), 6);
    assert_eq!(got.entries, want);
}

#[test]
fn tensors_are_ordered_like_the_reference_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    run(&corpus().join("benign/torch_state_dict.pt"), &opts_to(&out))
        .result
        .unwrap();
    let st = read_safetensors(&out);
    // Widest dtype first, then by name.
    assert_eq!(
        st.order,
        [
            "int64",
            "empty",
            "fp32",
            "offset_slice",
            "scalar",
            "shared_full",
            "shared_rows",
            "transposed",
            "bf16",
            "fp16",
            "bool"
        ]
    );
    // The transposed view of the shared 3x4 storage is written contiguous.
    let (_, shape, t) = &st.entries["transposed"];
    let (_, _, full) = &st.entries["shared_full"];
    assert_eq!(shape, &[4, 3]);
    let f = |b: &[u8], i: usize| f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
    for r in 0..4 {
        for c in 0..3 {
            assert_eq!(f(t, r * 3 + c), f(full, c * 4 + r));
        }
    }
}

#[test]
fn existing_output_is_kept_without_force_and_replaced_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    std::fs::write(&out, b"keep me").unwrap();
    let input = corpus().join("benign/array_f32.npy");
    let o = run(&input, &opts_to(&out));
    assert!(
        matches!(o.result, Err(ExtractError::Exists(_))),
        "{:?}",
        o.result
    );
    assert_eq!(o.gate(), Gate::Error);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let o = run(
        &input,
        &ExtractOptions {
            force: true,
            ..opts_to(&out)
        },
    );
    o.result.unwrap();
    assert!(read_safetensors(&out).entries.contains_key("array"));
    assert_eq!(listing(tmp.path()), ["o.safetensors"]);
}

#[test]
fn default_output_is_beside_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("model.pth");
    std::fs::copy(corpus().join("benign/torch_state_dict.pt"), &input).unwrap();
    let o = run(&input, &ExtractOptions::default());
    assert_eq!(
        o.result.unwrap().output,
        tmp.path().join("model.safetensors")
    );
    assert_eq!(listing(tmp.path()), ["model.pth", "model.safetensors"]);
}

#[test]
fn a_failure_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    // A complex64 array: refused without --skip-unsupported, naming the tensor.
    let o = run(
        &corpus().join("benign/numpy_arrays_proto4.pkl"),
        &opts_to(&out),
    );
    match &o.result {
        Err(ExtractError::Unsupported(list)) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].name, "c64");
            assert!(list[0].what.contains("complex64"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.gate(), Gate::Error);
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    // Not a model at all.
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, b"\x80\x02}q\x00(X\x01\x00\x00").unwrap();
    let o = run(&junk, &opts_to(&out));
    assert!(o.result.is_err());
    assert_eq!(listing(tmp.path()), ["junk.bin"]);
}

#[test]
fn a_view_repeating_its_storage_is_not_written_out() {
    // 4 bytes of storage, viewed as 2^40 floats with stride 0: scanning it is clean, writing it
    // would take 4 TiB.
    let input = corpus().join("malformed/torch_expanded_view.pt");
    let tmp = tempfile::tempdir().unwrap();
    for to in [
        extract::OutputFormat::Safetensors,
        extract::OutputFormat::Gguf,
    ] {
        let out = tmp.path().join(format!("o.{}", to.extension()));
        let o = run(
            &input,
            &ExtractOptions {
                to,
                ..opts_to(&out)
            },
        );
        assert_eq!(o.scan.as_ref().unwrap().verdict, Verdict::Clean);
        match &o.result {
            Err(ExtractError::Format(m)) => {
                assert!(m.contains("4398046511104 bytes"), "{m}");
                assert!(m.contains("more than 100×"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    }
}

#[test]
fn an_archive_with_two_records_torch_could_read_as_data_pkl_is_refused() {
    // `model/data.pkl` twice: torch's zip reader finds one of them by a binary search, so
    // which pickle it loads is not to be guessed; nothing is written.
    let input = corpus().join("containers/torch_zip_duplicate_benign_first.pt");
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&input, &opts_to(&tmp.path().join("o.safetensors")));
    match &o.result {
        Err(ExtractError::Format(m)) => {
            assert!(m.contains("several model/data.pkl records"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn strict_refuses_a_file_that_is_not_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let o = run(
        &corpus().join("containers/torch_zip_evil_in_state_dict.pt"),
        &ExtractOptions {
            strict: true,
            ..opts_to(&out)
        },
    );
    assert!(
        matches!(o.result, Err(ExtractError::NotClean { .. })),
        "{:?}",
        o.result
    );
    let verdict = o.scan.as_ref().unwrap().verdict.as_str();
    assert_eq!(
        o.gate(),
        if verdict == "dangerous" {
            Gate::Dangerous
        } else {
            Gate::Suspicious
        }
    );
    assert!(listing(tmp.path()).is_empty());
    // A clean file passes --strict.
    let o = run(
        &corpus().join("benign/array_f32.npy"),
        &ExtractOptions {
            strict: true,
            ..opts_to(&out)
        },
    );
    assert_eq!(o.scan.as_ref().unwrap().verdict.as_str(), "clean");
    o.result.unwrap();
}

#[test]
fn malicious_objects_are_dropped_and_listed_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, tensor) in [
        ("containers/torch_zip_evil_in_state_dict.pt", None),
        ("containers/joblib_evil_after_array.joblib", Some("a")),
    ] {
        let out = tmp.path().join("o.safetensors");
        let o = run(
            &corpus().join(fixture),
            &ExtractOptions {
                force: true,
                ..opts_to(&out)
            },
        );
        assert_ne!(
            o.scan.as_ref().unwrap().verdict.as_str(),
            "clean",
            "{fixture}"
        );
        let w = o.result.unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let dropped: Vec<String> = w
            .dropped
            .iter()
            .map(|d| format!("{}: {}", d.name, d.what))
            .collect();
        assert!(
            dropped
                .iter()
                .any(|d| d.contains("system") && d.contains("never created")),
            "{fixture}: {dropped:?}"
        );
        assert!(!w.tensors.is_empty(), "{fixture}");
        if let Some(t) = tensor {
            assert!(w.tensors.iter().any(|(n, _, _)| n == t), "{fixture}");
        }
    }
}

/// A protocol-3 pickle built by hand: numpy arrays by `_reconstruct` + BUILD.
struct Pkl(Vec<u8>);

impl Pkl {
    fn new() -> Self {
        Pkl(vec![0x80, 3])
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn s(&mut self, t: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(t.len() as u32).to_le_bytes());
        self.raw(t.as_bytes())
    }
    /// A uint8 array with these values.
    fn u8_array(&mut self, values: &[u8]) -> &mut Self {
        self.raw(
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01K",
        )
        .raw(&[values.len() as u8])
        .raw(b"\x85cnumpy\ndtype\n")
        .s("u1")
        .raw(b"\x89\x88\x87R(K\x03")
        .s("|")
        .raw(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89C")
        .raw(&[values.len() as u8])
        .raw(values)
        .raw(b"tb")
    }
}

fn extract_bytes(name: &str, pickle: &[u8], opts: ExtractOptions) -> (tempfile::TempDir, Outcome) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join(name);
    std::fs::write(&input, pickle).unwrap();
    let o = run(
        &input,
        &ExtractOptions {
            output: Some(tmp.path().join("o.safetensors")),
            ..opts
        },
    );
    (tmp, o)
}

#[test]
fn a_call_beside_the_tensors_is_never_made() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("marker");
    let mut p = Pkl::new();
    p.raw(b"}(").s("w").u8_array(&[1, 2, 3]);
    p.s("evil")
        .raw(b"cposix\nsystem\n")
        .s(&format!("touch {}", marker.display()))
        .raw(b"\x85R");
    p.s("epoch").raw(b"K\x07u.");
    let (dir, o) = extract_bytes("m.pkl", &p.0, ExtractOptions::default());
    let w = o.result.unwrap();
    assert_eq!(w.tensors, [("w".to_string(), extract::DType::U8, vec![3])]);
    assert!(w
        .dropped
        .iter()
        .any(|d| d.name == "evil" && d.what.contains("posix.system")));
    assert!(w
        .dropped
        .iter()
        .any(|d| d.name == "epoch" && d.what == "int"));
    assert!(!marker.exists());
    let st = read_safetensors(&dir.path().join("o.safetensors"));
    assert_eq!(st.entries["w"].2, [1, 2, 3]);
}

#[test]
fn duplicate_names_are_an_error_naming_them() {
    let mut p = Pkl::new();
    p.raw(b"}(").s("a.b").u8_array(&[1]);
    p.s("a").raw(b"}").s("b").u8_array(&[2]).raw(b"s");
    p.s("c").u8_array(&[3]).raw(b"u.");
    let (dir, o) = extract_bytes("d.pkl", &p.0, ExtractOptions::default());
    match o.result {
        Err(ExtractError::Duplicates(names)) => assert_eq!(names, ["a.b"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(listing(dir.path()), ["d.pkl"]);
}

#[test]
fn select_takes_one_sub_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let input = corpus().join("benign/lightning_checkpoint.ckpt");
    let o = run(
        &input,
        &ExtractOptions {
            select: Some("state_dict".into()),
            ..opts_to(&out)
        },
    );
    let names: Vec<String> = o.result.unwrap().tensors.into_iter().map(|t| t.0).collect();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
    let o = run(
        &input,
        &ExtractOptions {
            select: Some("nope".into()),
            force: true,
            ..opts_to(&out)
        },
    );
    match o.result {
        Err(ExtractError::Select { available, .. }) => {
            assert!(
                available.contains(&"state_dict".to_string()),
                "{available:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[cfg(all(feature = "cli", feature = "remote", feature = "serve"))] // runs the binary
fn cli_extracts_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let bin = env!("CARGO_BIN_EXE_picklescan-rs");
    let input = corpus().join("benign/checkpoint_namespace.pth");
    let r = std::process::Command::new(bin)
        .args(["--extract"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(stdout.contains("extracted 2 tensors"), "{stdout}");
    assert!(stdout.contains("argparse.Namespace"), "{stdout}");
    // Again: the output exists.
    let r = std::process::Command::new(bin)
        .arg("--extract")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--force"));
}

#[test]
fn the_source_digest_can_be_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let input = corpus().join("benign/torch_state_dict_legacy.pt");
    let w = run(&input, &opts_to(&out)).result.unwrap();
    let with = read_safetensors(&out);
    assert_eq!(with.metadata["source_sha256"], w.source_sha256);
    let o = run(
        &input,
        &ExtractOptions {
            no_source_hash: true,
            force: true,
            ..opts_to(&out)
        },
    );
    assert_eq!(o.result.unwrap().source_sha256, "");
    let without = read_safetensors(&out);
    assert!(!without.metadata.contains_key("source_sha256"));
    assert_eq!(without.entries, with.entries);
}

#[test]
fn onnx_initializers_are_extracted_and_escaping_external_data_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = corpus().join("formats/onnx");
    for model in ["mlp.onnx", "external_ok/model.onnx"] {
        let out = dir.path().join("out.safetensors");
        let o = ExtractOptions {
            force: true,
            ..opts_to(&out)
        };
        let r = run(&onnx.join(model), &o);
        let w = r.result.expect(model);
        assert_eq!(w.format, Format::Onnx);
        let st = read_safetensors(&out);
        // Both models hold a 4×8 weight and its 8 biases (corpus/gen/formats.py); the interop
        // check compares the values with onnx's own reader.
        assert_eq!(st.entries.len(), 2, "{model}: {:?}", st.order);
        assert!(st.entries.values().all(|t| t.0 == "F32"), "{model}");
    }
    for attack in [
        "absolute_path/model.onnx",
        "cve_2022_25882_traversal/model.onnx",
    ] {
        let out = dir.path().join("refused.safetensors");
        let r = run(&onnx.join(attack), &opts_to(&out));
        let e = r.result.expect_err(attack).to_string();
        assert!(e.contains("not a file inside the model's folder"), "{e}");
        assert!(!out.exists());
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn legacy_ggml_float_tensors_are_extracted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    let w = run(
        &corpus().join("formats/ggml/llama_ggml.bin"),
        &opts_to(&out),
    )
    .result
    .expect("F32/F16 file");
    assert_eq!(w.format.to_string(), "ggml");
    assert_eq!(w.tensors.len(), 5);
}

/// Every tensor of `corpus/formats/ggml-quant/` against what gguf-py decoded when
/// `corpus/gen/ggml_quant.py` wrote it: safetensors holds the decoded values, GGUF the blocks
/// byte for byte with their type; blocks of a layout that changed since are listed, not misread.
#[test]
fn legacy_ggml_blocks_are_decoded_for_safetensors_and_copied_into_gguf() {
    use picklescan_rs::extract::OutputFormat;
    let dir = tempfile::tempdir().unwrap();
    let formats = corpus().join("formats");
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(formats.join("ggml-quant-contents.json")).unwrap())
            .unwrap();
    assert_eq!(expected.len(), 3);
    let mut blocks_seen = BTreeMap::new();
    for (file, tensors) in &expected {
        let input = formats.join("ggml-quant").join(file);
        let st = dir.path().join(format!("{file}.safetensors"));
        let gg = dir.path().join(format!("{file}.gguf"));
        let tensors = tensors.as_array().unwrap();
        let refused: Vec<&str> = tensors
            .iter()
            .filter(|t| !t["extracted"].as_bool().unwrap())
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        if !refused.is_empty() {
            let e = run(&input, &opts_to(&st)).result.expect_err(file);
            let ExtractError::Unsupported(list) = e else {
                panic!("{file}: {e}")
            };
            let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(names, refused, "{file}");
            assert!(list[0].what.contains("layout changed"), "{}", list[0].what);
        }
        let skip = |out: &Path, to| ExtractOptions {
            skip_unsupported: true,
            to,
            ..opts_to(out)
        };
        run(&input, &skip(&st, OutputFormat::Safetensors))
            .result
            .expect(file);
        run(&input, &skip(&gg, OutputFormat::Gguf))
            .result
            .expect(file);
        let st = read_safetensors(&st);
        let (_, gguf, _) = crate::extract_gguf::read_gguf(&gg);
        let kept = tensors.iter().filter(|t| t["extracted"].as_bool().unwrap());
        assert_eq!(st.entries.len(), kept.clone().count(), "{file}");
        assert_eq!(gguf.len(), kept.clone().count(), "{file}");
        for t in kept {
            let name = t["name"].as_str().unwrap();
            let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
            let (dtype, st_shape, bytes) = &st.entries[name];
            assert_eq!(dtype, t["safetensors"]["dtype"].as_str().unwrap(), "{name}");
            assert_eq!(st_shape, &shape, "{name}");
            assert_eq!(
                sha256_hex(bytes),
                t["safetensors"]["sha256"].as_str().unwrap(),
                "{file}: {name} decoded"
            );
            let g = &gguf[name];
            let ty = picklescan_rs::quant::GgmlType::from_id(g.ty).unwrap();
            assert_eq!(ty.name(), t["type"].as_str().unwrap(), "{name}");
            let dims: Vec<u64> = shape.iter().rev().copied().collect();
            assert_eq!(g.dims, dims, "{name}");
            assert_eq!(
                sha256_hex(&g.data),
                t["gguf_sha256"].as_str().unwrap(),
                "{file}: {name} blocks"
            );
            blocks_seen.insert(ty.name(), ());
        }
    }
    // Every block type a legacy file can hold went through both paths.
    assert_eq!(blocks_seen.len(), 12, "{blocks_seen:?}");
}

#[test]
fn hdf5_datasets_extract_in_native_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data.safetensors");
    let input = corpus().join("formats/hdf5/data_libver_earliest.h5");
    let opts = ExtractOptions {
        skip_unsupported: true,
        ..opts_to(&out)
    };
    run(&input, &opts).result.expect("extracted");
    let st = read_safetensors(&out);
    // h5py wrote these big-endian (`>f4`, `>i2`): the output is little-endian.
    let f4: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    assert_eq!(
        st.entries["big_endian_f4"],
        ("F32".to_string(), vec![2, 3], f4)
    );
    let i2: Vec<u8> = (-3i16..3).flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(
        st.entries["big_endian_i2"],
        ("I16".to_string(), vec![6], i2)
    );
    // Nested groups keep their paths; chunked datasets (gzip, shuffle + fletcher32) are read.
    assert!(st.entries.contains_key("group_0/d0"), "{:?}", st.order);
    for chunked in ["group_0/d1", "group_0/d3"] {
        assert_eq!(st.entries[chunked].1, vec![16, 8], "{chunked}");
    }
}

#[test]
fn hdf5_reading_outside_itself_is_not_extracted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    let input = corpus().join("formats/hdf5/external_storage_beside.h5");
    let r = run(&input, &opts_to(&out)).result;
    assert!(r.is_err(), "{r:?}");
    assert!(!out.exists());
}

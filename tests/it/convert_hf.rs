//! A Hugging Face model folder converted to GGUF, compared with what llama.cpp's own tools made
//! of the same folder (`corpus/hf-folders/`, written by `corpus/gen/hf_folders.py` with
//! transformers, `convert_hf_to_gguf.py` and `llama-quantize`): every metadata key and value
//! (apart from this tool's `picklescan.*` provenance keys) and every tensor's name, shape, type
//! and bytes must be equal.

use picklescan_rs::extract::hf::{convert_folder, target};
use picklescan_rs::extract::ExtractOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/hf-folders")
}

/// A GGUF file's metadata (raw value bytes with their type) and tensors (dims, type, data).
struct Gguf {
    kv: BTreeMap<String, (u32, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
    /// Skip one value of type `t`.
    fn skip_value(&mut self, t: u32) {
        match t {
            0 | 1 | 7 => self.i += 1,
            2 | 3 => self.i += 2,
            4..=6 => self.i += 4,
            10..=12 => self.i += 8,
            8 => {
                let n = self.u64() as usize;
                self.i += n;
            }
            9 => {
                let et = self.u32();
                let n = self.u64();
                for _ in 0..n {
                    self.skip_value(et);
                }
            }
            other => panic!("unknown GGUF value type {other}"),
        }
    }
}

fn read(path: &Path) -> Gguf {
    let b = std::fs::read(path).unwrap();
    picklescan_rs::internals::format::gguf::validate(&b).expect("ggml's rules accept the file");
    let mut c = Cursor { b: &b, i: 4 };
    assert_eq!(c.u32(), 3, "GGUF version");
    let (n_tensors, n_kv) = (c.u64(), c.u64());
    let mut kv = BTreeMap::new();
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let key = c.string();
        let t = c.u32();
        let start = c.i;
        c.skip_value(t);
        let raw = b[start..c.i].to_vec();
        if key == "general.alignment" {
            alignment = u32::from_le_bytes(raw[..4].try_into().unwrap()) as u64;
        }
        kv.insert(key, (t, raw));
    }
    let mut infos = Vec::new();
    for _ in 0..n_tensors {
        let name = c.string();
        let nd = c.u32();
        let dims: Vec<u64> = (0..nd).map(|_| c.u64()).collect();
        let ty = c.u32();
        let off = c.u64();
        infos.push((name, dims, ty, off));
    }
    let data_start = (c.i as u64).div_ceil(alignment) * alignment;
    let mut offsets: Vec<u64> = infos.iter().map(|t| t.3).collect();
    offsets.sort();
    let tensors = infos
        .into_iter()
        .map(|(name, dims, ty, off)| {
            let next = offsets
                .iter()
                .copied()
                .find(|&o| o > off)
                .unwrap_or(b.len() as u64 - data_start);
            let data = b[(data_start + off) as usize..(data_start + next) as usize].to_vec();
            (name, dims, ty, data)
        })
        .collect();
    Gguf { kv, tensors }
}

/// Convert the folder with `quant` and compare with the reference file.
fn agrees(folder: &str, quant: &str, reference: &str) {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("ours.gguf");
    let opts = ExtractOptions {
        output: Some(output.clone()),
        ..ExtractOptions::default()
    };
    let outcome = convert_folder(
        &crate::common::default_engine(),
        &corpus().join(folder),
        &opts,
        target(Some(quant)).unwrap(),
    );
    assert!(
        outcome.scans.iter().all(|s| s.verdict.as_str() == "clean"),
        "{:#?}",
        outcome.scans
    );
    outcome.result.expect("converted");
    let ours = read(&output);
    let theirs = read(&corpus().join("reference").join(reference));
    let ours_kv: BTreeMap<_, _> = ours
        .kv
        .iter()
        .filter(|(k, _)| !k.starts_with("picklescan."))
        .collect();
    let theirs_kv: BTreeMap<_, _> = theirs.kv.iter().collect();
    let keys: Vec<_> = ours_kv.keys().chain(theirs_kv.keys()).collect();
    for k in keys {
        assert_eq!(
            ours_kv.get(k),
            theirs_kv.get(k),
            "{reference}: metadata {k}"
        );
    }
    assert!(ours.kv.contains_key("picklescan.source_sha256"));
    let names = |g: &Gguf| g.tensors.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "{reference}: tensor order");
    for (a, b) in ours.tensors.iter().zip(&theirs.tensors) {
        assert_eq!(
            (&a.1, a.2),
            (&b.1, b.2),
            "{reference}: {} dims and type",
            a.0
        );
        assert!(a.3 == b.3, "{reference}: {} bytes differ", a.0);
    }
}

#[test]
fn f16_agrees_with_convert_hf_to_gguf() {
    agrees("tiny-llama-spm", "f16", "tiny-llama-spm.F16.gguf");
}

#[test]
fn q4_k_m_agrees_with_llama_quantize() {
    agrees("tiny-llama-spm", "q4_k_m", "tiny-llama-spm.Q4_K_M.gguf");
}

#[test]
fn gemma2_phi3_and_gpt2_agree_with_llama_cpp() {
    for folder in ["tiny-gemma2-spm", "tiny-phi3-longrope-spm", "tiny-gpt2-bpe"] {
        agrees(folder, "f16", &format!("{folder}.F16.gguf"));
        agrees(folder, "q4_k_m", &format!("{folder}.Q4_K_M.gguf"));
    }
}

/// A copy of the fixture folder to modify.
fn copy_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(corpus().join("tiny-llama-spm")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn convert(dir: &Path) -> picklescan_rs::extract::hf::FolderOutcome {
    let opts = ExtractOptions {
        output: Some(dir.join("out.gguf")),
        ..ExtractOptions::default()
    };
    convert_folder(
        &crate::common::default_engine(),
        dir,
        &opts,
        target(None).unwrap(),
    )
}

#[test]
fn a_chat_template_that_escapes_the_sandbox_is_not_copied() {
    let dir = copy_folder();
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    )
    .unwrap();
    let cfg = dir.path().join("tokenizer_config.json");
    let mut tc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    tc.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&cfg, serde_json::to_vec(&tc).unwrap()).unwrap();
    let outcome = convert(dir.path());
    let err = outcome.result.expect_err("refused").to_string();
    assert!(err.contains("tokenizer.chat_template"), "{err}");
    assert!(!dir.path().join("out.gguf").exists());
    assert!(
        outcome
            .scans
            .iter()
            .any(|s| s.verdict.as_str() == "dangerous"),
        "the scan reports the template too"
    );
}

#[test]
fn other_architectures_are_refused_with_the_supported_list() {
    let dir = copy_folder();
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("LlamaForCausalLM", "GPTNeoXForCausalLM");
    std::fs::write(&cfg, text).unwrap();
    let err = convert(dir.path()).result.expect_err("refused").to_string();
    assert!(
        err.contains("GPTNeoXForCausalLM") && err.contains("LlamaForCausalLM"),
        "{err}"
    );
}

#[test]
fn a_malicious_pickle_shard_is_reported_and_nothing_from_it_runs() {
    let dir = copy_folder();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    // A pickle that would run a command when unpickled, named as a shard.
    std::fs::write(
        dir.path().join("pytorch_model.bin"),
        b"cposix\nsystem\n(S'touch /tmp/pwned'\ntR.",
    )
    .unwrap();
    let outcome = convert(dir.path());
    assert!(outcome
        .scans
        .iter()
        .any(|s| s.path.ends_with("pytorch_model.bin") && s.verdict.as_str() == "dangerous"));
    // Nothing was run, so there are no weights to convert: the checkpoint is incomplete.
    let err = outcome.result.expect_err("refused").to_string();
    assert!(err.contains("incomplete checkpoint"), "{err}");
    assert!(!dir.path().join("out.gguf").exists());
}

#[test]
fn quant_names_are_checked() {
    assert!(target(Some("q4_k_m")).is_ok());
    assert!(target(Some("q8_0")).is_ok());
    let e = target(Some("q4_0")).unwrap_err();
    assert!(e.contains("q4_k_m"), "{e}");
}

#[test]
fn counts_in_config_json_are_bounded_before_any_work() {
    for (key, value) in [
        ("vocab_size", "1000000000000"),
        ("num_hidden_layers", "1000000000"),
        ("head_dim", "1000000000000"),
    ] {
        let dir = copy_folder();
        let cfg = dir.path().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        c[key] = serde_json::from_str(value).unwrap();
        std::fs::write(&cfg, serde_json::to_vec(&c).unwrap()).unwrap();
        let started = std::time::Instant::now();
        let err = convert(dir.path()).result.expect_err(key).to_string();
        assert!(started.elapsed().as_secs() < 10, "{key}");
        assert!(!dir.path().join("out.gguf").exists(), "{key}: {err}");
    }
}

//! Any bytes through the readers of `format/`: ONNX (and its protobuf wire reader, initializers
//! included), TensorFlow SavedModel files, Python marshal code objects, 7z archives (headers and folders), PMML, legacy GGML, skops schemas, SentencePiece models, Hugging Face configs and
//! the model-id heuristics of folder conversion.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picklescan_rs::extract::hf::naming::Naming;
use picklescan_rs::internals::format::{ggml, hf, marshal, onnx, pmml, savedmodel, sentencepiece, sevenz, skops};

fuzz_target!(|data: &[u8]| {
    let _ = onnx::looks_like(data);
    let _ = onnx::read(data);
    let _ = onnx::initializers(data);
    let _ = sentencepiece::read(data);
    let _ = pmml::looks_like(data);
    let _ = pmml::read(data);
    let _ = ggml::read(data);
    let _ = skops::read(data);
    let _ = marshal::read_code(data);
    if let Ok(a) = sevenz::read(data, 1 << 22) {
        for f in &a.folders {
            let _ = sevenz::decode_folder(data, &a, f, 1 << 22);
        }
    }
    let _ = savedmodel::looks_like(data);
    let _ = savedmodel::read(data);
    let _ = savedmodel::looks_like_keras_metadata(data);
    let _ = savedmodel::keras_metadata(data);
    let _ = savedmodel::looks_like_fingerprint(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = hf::auto_map(&v);
        let _ = picklescan_rs::internals::format::template::from_json(&v);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hf::risky_python(text);
        let _ = pmml::parse_doctype(text);
        let _ = Naming::derive(Some(text), text, data.len() as u64);
    }
});

//! The tokenizer of a Hugging Face model folder as llama.cpp's converter writes it
//! (`convert_hf_to_gguf.py` `_set_vocab_sentencepiece` / `_set_vocab_gpt2`, gguf-py
//! `SpecialVocab`): the token list, scores and types, merges, special token ids, the
//! add-BOS/EOS flags and the chat templates.
//!
//! Two tokenizers are read: SentencePiece (`tokenizer.model`) and byte-level BPE
//! (`tokenizer.json`). llama.cpp names a BPE pre-tokenizer by hashing what the Python tokenizer
//! makes of a test text; here the name is read off the pre-tokenizer the file declares (its
//! split regex and byte-level step), and an unknown one is refused rather than guessed.

use super::{json_file, HfError};
use crate::format::gguf::{Array, Value};
use crate::format::sentencepiece::{self, PieceType};
use serde_json::{Map, Value as Json};
use std::path::Path;

/// llama.cpp token types (`llama_token_type`).
mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// Largest vocabulary converted (published ones reach about 260 K tokens); `config.json`'s
/// `vocab_size` is checked against it before any token list is built.
pub const MAX_VOCAB: usize = 4 << 20;

/// Largest tokenizer file read.
const MAX_TOKENIZER_FILE: u64 = 256 << 20;

/// The llama-3 pre-tokenizer's split regex (`llama-bpe` in llama.cpp).
const LLAMA3_SPLIT: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/// Qwen 2's: digits one by one (`qwen2` in llama.cpp).
const QWEN2_SPLIT: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// The tokenizer metadata, ready for the GGUF header.
pub struct Vocab {
    /// Key-value pairs (`tokenizer.ggml.*`, `tokenizer.chat_template*`).
    pub kvs: Vec<(String, Value)>,
    /// The chat templates copied, `(key, text)`, for the caller to judge before writing.
    pub templates: Vec<(String, String)>,
}

/// How the converter builds a SentencePiece vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpmStyle {
    /// `_set_vocab_sentencepiece` (Llama, Mistral, Gemma).
    Standard,
    /// `Phi3MiniModel.set_vocab`: added tokens from `tokenizer.json` too, their text kept as
    /// written, no space-prefix key; a `GPT2Tokenizer` class (Phi-4) reads the BPE instead.
    Phi3,
}

/// Read the folder's tokenizer. `vocab_size` is `config.json`'s, when it has one.
pub fn read(dir: &Path, vocab_size: Option<usize>, style: SpmStyle) -> Result<Vocab, HfError> {
    let config = json_file(&dir.join("tokenizer_config.json"), MAX_TOKENIZER_FILE)?;
    let mut kvs = Vec::new();
    if let Some(b) = config
        .as_ref()
        .and_then(|c| c.get("add_prefix_space"))
        .and_then(Json::as_bool)
        .filter(|_| style == SpmStyle::Standard)
    {
        kvs.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(b)));
    }
    let tokenizer_json = json_file(&dir.join("tokenizer.json"), MAX_TOKENIZER_FILE)?;
    let spm = dir.join("tokenizer.model");
    let gpt2_class = style == SpmStyle::Phi3
        && config
            .as_ref()
            .and_then(|c| c.get("tokenizer_class"))
            .and_then(Json::as_str)
            == Some("GPT2Tokenizer");
    if style == SpmStyle::Phi3 && !gpt2_class && !spm.is_file() {
        return Err(HfError::Unsupported(
            "Phi 3 is converted from its SentencePiece tokenizer.model, which the folder lacks"
                .into(),
        ));
    }
    let (n_vocab, load_merges) = if spm.is_file() && !gpt2_class {
        let overlay = (style == SpmStyle::Phi3)
            .then_some(tokenizer_json.as_ref())
            .flatten();
        let n = sentencepiece_vocab(
            &spm,
            dir,
            config.as_ref(),
            vocab_size,
            style,
            overlay,
            &mut kvs,
        )?;
        (Some(n), false)
    } else if let Some(tj) = &tokenizer_json {
        bpe_vocab(tj, config.as_ref(), vocab_size, &mut kvs)?;
        (None, true)
    } else {
        return Err(HfError::Unsupported(
            "no tokenizer: the folder has neither tokenizer.model (SentencePiece) nor \
             tokenizer.json (BPE)"
                .into(),
        ));
    };
    let mut special = Special::new(n_vocab);
    let templates = special.load(dir, tokenizer_json.as_ref(), config, load_merges)?;
    special.write(&mut kvs);
    for (k, t) in &templates {
        kvs.push((k.clone(), Value::String(t.clone())));
    }
    if !special.template_names.is_empty() {
        kvs.push((
            "tokenizer.chat_templates".into(),
            Value::Array(Array::String(special.template_names.clone())),
        ));
    }
    Ok(Vocab { kvs, templates })
}

/// What `GemmaModel.set_vocab` / `Gemma2Model.set_vocab` add after the SentencePiece
/// vocabulary: no space prefix, and for Gemma (1) CodeGemma's end-of-turn token 107 unless the
/// tokenizer named one (its `prefix`/`suffix`/`middle`/`fsep` ids have no GGUF key and are
/// dropped by gguf-py too).
pub fn gemma_extras(kvs: &mut Vec<(String, Value)>, eot: bool) {
    set_kv(kvs, "tokenizer.ggml.add_space_prefix", Value::Bool(false));
    if eot && !kvs.iter().any(|(k, _)| k == "tokenizer.ggml.eot_token_id") {
        kvs.push(("tokenizer.ggml.eot_token_id".into(), Value::U32(107)));
    }
}

/// Set `key` as GGUFWriter does: a key written twice keeps its place and takes the new value.
fn set_kv(kvs: &mut Vec<(String, Value)>, key: &str, v: Value) {
    match kvs.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = v,
        None => kvs.push((key.into(), v)),
    }
}

fn hf_err(path: &Path, what: impl std::fmt::Display) -> HfError {
    HfError::Invalid(format!("{}: {what}", path.display()))
}

/// `_create_vocab_sentencepiece`: the model's pieces, padded or cut to `vocab_size`, then
/// `added_tokens.json` and `added_tokens_decoder` laid over them. Returns the token count.
fn sentencepiece_vocab(
    path: &Path,
    dir: &Path,
    config: Option<&Json>,
    vocab_size: Option<usize>,
    style: SpmStyle,
    tokenizer_json: Option<&Json>,
    kvs: &mut Vec<(String, Value)>,
) -> Result<usize, HfError> {
    let data = super::read_limited(path, MAX_TOKENIZER_FILE)?;
    let pieces = sentencepiece::read(&data).map_err(|e| hf_err(path, e))?;
    let n = vocab_size.unwrap_or(pieces.len());
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![token_type::UNUSED; n];
    for (id, p) in pieces.iter().enumerate().take(n) {
        tokens[id].clone_from(&p.piece);
        scores[id] = p.score;
        types[id] = match p.kind {
            PieceType::Unknown => token_type::UNKNOWN,
            PieceType::Control => token_type::CONTROL,
            PieceType::Unused => token_type::UNUSED,
            PieceType::Byte => token_type::BYTE,
            PieceType::Normal | PieceType::UserDefined => token_type::NORMAL,
        };
    }
    if let Some(Json::Object(added)) =
        json_file(&dir.join("added_tokens.json"), MAX_TOKENIZER_FILE)?
    {
        for (text, id) in &added {
            if let Some(id) = id.as_u64().map(|i| i as usize).filter(|&i| i < n) {
                tokens[id].clone_from(text);
                scores[id] = -1000.0;
                types[id] = token_type::USER_DEFINED;
            }
        }
    }
    if style == SpmStyle::Phi3 {
        // `added_tokens_decoder`, then `tokenizer.json`'s `added_tokens`: each token as written,
        // user-defined, control when special.
        let decoder = config
            .and_then(|c| c.get("added_tokens_decoder"))
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
            .map(|(id, d)| (id.parse::<usize>().ok(), d));
        let added = tokenizer_json
            .and_then(|t| t.get("added_tokens"))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|d| (d.get("id").and_then(Json::as_u64).map(|i| i as usize), d));
        for (id, data) in decoder.chain(added) {
            let Some(id) = id.filter(|&i| i < n) else {
                continue;
            };
            let Some(content) = data.get("content").and_then(Json::as_str) else {
                continue;
            };
            tokens[id] = content.to_string();
            scores[id] = -1000.0;
            types[id] = if data.get("special").and_then(Json::as_bool) == Some(true) {
                token_type::CONTROL
            } else {
                token_type::USER_DEFINED
            };
        }
    } else if let Some(Json::Object(decoder)) = config.and_then(|c| c.get("added_tokens_decoder")) {
        for (id, data) in decoder {
            let Some(id) = id.parse::<usize>().ok().filter(|&i| i < n) else {
                continue;
            };
            let Some(content) = data.get("content").and_then(Json::as_str) else {
                continue;
            };
            let special = data.get("special").and_then(Json::as_bool) == Some(true);
            if special || looks_special(content) {
                types[id] = token_type::CONTROL;
                tokens[id] = content.to_string();
            } else {
                types[id] = token_type::USER_DEFINED;
                tokens[id] = content.replace('\u{2581}', " ");
            }
            scores[id] = -1000.0;
        }
    }
    kvs.push(("tokenizer.ggml.model".into(), "llama".into()));
    kvs.push(("tokenizer.ggml.pre".into(), "default".into()));
    kvs.push((
        "tokenizer.ggml.tokens".into(),
        Value::Array(Array::String(tokens)),
    ));
    kvs.push((
        "tokenizer.ggml.scores".into(),
        Value::Array(Array::F32(scores)),
    ));
    kvs.push((
        "tokenizer.ggml.token_type".into(),
        Value::Array(Array::I32(types)),
    ));
    Ok(n)
}

/// `TextModel.does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// `get_vocab_base` for a `tokenizer.json` byte-level BPE: the vocabulary with the added tokens,
/// padded to `vocab_size`.
fn bpe_vocab(
    tj: &Json,
    config: Option<&Json>,
    vocab_size: Option<usize>,
    kvs: &mut Vec<(String, Value)>,
) -> Result<(), HfError> {
    let model = tj.get("model").unwrap_or(&Json::Null);
    if model.get("type").and_then(Json::as_str) != Some("BPE") {
        return Err(HfError::Unsupported(
            "tokenizer.json is not a BPE tokenizer (only byte-level BPE and SentencePiece are \
             converted)"
                .into(),
        ));
    }
    let pre = pre_tokenizer_name(tj)?;
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| HfError::Invalid("tokenizer.json: model.vocab is not an object".into()))?;
    let mut by_id: std::collections::BTreeMap<usize, (String, Option<bool>)> = Default::default();
    for (text, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| HfError::Invalid(format!("tokenizer.json: bad id for {text:?}")))?;
        by_id.insert(id as usize, (text.clone(), None));
    }
    // Added tokens: (special) as recorded by the tokenizer, overriding the model's entry.
    let decoder = config
        .and_then(|c| c.get("added_tokens_decoder"))
        .and_then(Json::as_object);
    for a in tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(content)) = (
            a.get("id").and_then(Json::as_u64),
            a.get("content").and_then(Json::as_str),
        ) else {
            continue;
        };
        let mut special = a.get("special").and_then(Json::as_bool).unwrap_or(false);
        if let Some(d) = decoder.and_then(|d| d.get(&id.to_string())) {
            special = d.get("special").and_then(Json::as_bool).unwrap_or(special);
        }
        by_id.insert(id as usize, (content.to_string(), Some(special)));
    }
    let largest = by_id.keys().next_back().copied().unwrap_or(0);
    let n = vocab_size.unwrap_or(by_id.len());
    if largest >= n {
        return Err(HfError::Invalid(format!(
            "tokenizer.json has token id {largest}, beyond the vocabulary size {n}"
        )));
    }
    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for i in 0..n {
        match by_id.get(&i) {
            None => {
                tokens.push(format!("[PAD{i}]"));
                types.push(token_type::UNUSED);
            }
            Some((t, None)) => {
                tokens.push(t.clone());
                types.push(token_type::NORMAL);
            }
            Some((t, Some(special))) => {
                if *special || looks_special(t) {
                    tokens.push(t.clone());
                    types.push(token_type::CONTROL);
                } else {
                    tokens.push(t.replace('\u{2581}', " "));
                    types.push(token_type::USER_DEFINED);
                }
            }
        }
    }
    kvs.push(("tokenizer.ggml.model".into(), "gpt2".into()));
    kvs.push(("tokenizer.ggml.pre".into(), pre.into()));
    kvs.push((
        "tokenizer.ggml.tokens".into(),
        Value::Array(Array::String(tokens)),
    ));
    kvs.push((
        "tokenizer.ggml.token_type".into(),
        Value::Array(Array::I32(types)),
    ));
    Ok(())
}

/// llama.cpp's name for the pre-tokenizer `tokenizer.json` declares.
fn pre_tokenizer_name(tj: &Json) -> Result<&'static str, HfError> {
    let pre = tj.get("pre_tokenizer").unwrap_or(&Json::Null);
    let steps: Vec<&Json> = match pre.get("type").and_then(Json::as_str) {
        Some("Sequence") => pre
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(_) => vec![pre],
        None => Vec::new(),
    };
    fn kind(s: &Json) -> &str {
        s.get("type").and_then(Json::as_str).unwrap_or("")
    }
    fn split_regex(s: &Json) -> Option<&str> {
        s.get("pattern")
            .and_then(|p| p.get("Regex"))
            .and_then(Json::as_str)
    }
    match steps.as_slice() {
        [split, byte_level]
            if kind(split) == "Split"
                && kind(byte_level) == "ByteLevel"
                && byte_level.get("use_regex").and_then(Json::as_bool) == Some(false) =>
        {
            match split_regex(split) {
                Some(LLAMA3_SPLIT) => Ok("llama-bpe"),
                Some(QWEN2_SPLIT) => Ok("qwen2"),
                _ => Err(unknown_pre()),
            }
        }
        [byte_level]
            if kind(byte_level) == "ByteLevel"
                && byte_level.get("use_regex").and_then(Json::as_bool) != Some(false) =>
        {
            Ok("gpt-2")
        }
        _ => Err(unknown_pre()),
    }
}

fn unknown_pre() -> HfError {
    HfError::Unsupported(
        "tokenizer.json's pre-tokenizer is not one llama.cpp's converter is known to name here \
         (llama-3's or Qwen 2's split + byte-level, or GPT-2's byte-level)"
            .into(),
    )
}

/// gguf-py `SpecialVocab`: merges, special token ids, add-token flags and chat templates.
struct Special {
    n_vocab: Option<usize>,
    types: Vec<&'static str>,
    ids: Vec<(&'static str, u32)>,
    add: Vec<(&'static str, bool)>,
    merges: Vec<String>,
    template_names: Vec<String>,
}

impl Special {
    fn new(n_vocab: Option<usize>) -> Special {
        Special {
            n_vocab,
            types: vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"],
            ids: Vec::new(),
            add: Vec::new(),
            merges: Vec::new(),
            template_names: Vec::new(),
        }
    }

    fn set_id(&mut self, typ: &'static str, id: Option<&Json>) {
        let Some(id) = id.and_then(Json::as_u64) else {
            return;
        };
        if self.n_vocab.is_some_and(|n| id as usize >= n) || self.ids.iter().any(|(t, _)| *t == typ)
        {
            return;
        }
        self.ids.push((typ, id as u32));
    }

    fn set_add_default(&mut self, typ: &'static str, v: bool) {
        if !self.add.iter().any(|(t, _)| *t == typ) {
            self.add.push((typ, v));
        }
    }

    fn set_add(&mut self, typ: &'static str, v: bool) {
        self.add.retain(|(t, _)| *t != typ);
        self.add.push((typ, v));
    }

    /// `_load`: `tokenizer.json` and `tokenizer_config.json`, then `config.json`. Returns the
    /// chat templates, `(key, text)`.
    fn load(
        &mut self,
        dir: &Path,
        tj: Option<&Json>,
        config: Option<Json>,
        load_merges: bool,
    ) -> Result<Vec<(String, String)>, HfError> {
        let mut config = config;
        let mut added: &[Json] = &[];
        if let Some(tj) = tj {
            if load_merges {
                self.merges = merges(tj)?;
            }
            added = tj
                .get("added_tokens")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            self.post_processor(tj, config.as_mut());
        }
        let mut templates = Vec::new();
        if let Some(Json::Object(tc)) = &config {
            templates = chat_templates(dir, tc, &mut self.template_names)?;
            let types = self.types.clone();
            for typ in types {
                if let Some(b) = tc.get(&format!("add_{typ}_token")).and_then(Json::as_bool) {
                    self.set_add_default(typ, b);
                }
                let content = match tc.get(&format!("{typ}_token")) {
                    Some(Json::String(s)) => s.as_str(),
                    Some(Json::Object(o)) => match o.get("content") {
                        Some(Json::String(s)) => s.as_str(),
                        _ => continue,
                    },
                    _ => continue,
                };
                let id = added
                    .iter()
                    .find(|a| a.get("content").and_then(Json::as_str) == Some(content))
                    .and_then(|a| a.get("id"));
                self.set_id(typ, id);
            }
        }
        if let Some(Json::Object(c)) = json_file(&dir.join("config.json"), 64 << 20)? {
            let types = self.types.clone();
            for typ in types {
                let key = format!("{typ}_token_id");
                let id = c
                    .get(&key)
                    .filter(|v| !v.is_null())
                    .or_else(|| c.get("text_config").and_then(|t| t.get(&key)));
                self.set_id(typ, id);
            }
        }
        Ok(templates)
    }

    /// The part of `_try_load_from_tokenizer_json` that reads the post-processor: which special
    /// tokens the tokenizer adds.
    fn post_processor(&mut self, tj: &Json, mut config: Option<&mut Json>) {
        let get = |c: &Option<&mut Json>, k: &str| -> Option<String> {
            c.as_ref()
                .and_then(|c| c.get(k))
                .and_then(token_content)
                .filter(|s| !s.is_empty())
        };
        let has_config = config
            .as_ref()
            .is_some_and(|c| c.as_object().is_some_and(|o| !o.is_empty()));
        let set = |c: &mut Option<&mut Json>, k: &str, v: &str| {
            if let Some(Json::Object(o)) = c.as_deref_mut() {
                o.insert(k.to_string(), Json::String(v.to_string()));
            }
        };
        let mut bos = get(&config, "bos_token");
        let mut cls = get(&config, "cls_token");
        let mut eos = get(&config, "eos_token");
        let sep = get(&config, "sep_token");
        if bos.is_none() && cls.is_some() && has_config {
            bos.clone_from(&cls);
            set(&mut config, "bos_token", bos.as_deref().unwrap_or_default());
        }
        if eos.is_none() && sep.is_some() && has_config {
            eos.clone_from(&sep);
            set(&mut config, "eos_token", eos.as_deref().unwrap_or_default());
        }
        let Some(pp) = tj.get("post_processor").filter(|p| !p.is_null()) else {
            return;
        };
        let procs: Vec<&Json> = match pp.get("processors").and_then(Json::as_array) {
            Some(a) => a.iter().collect(),
            None => vec![pp],
        };
        for p in procs {
            match p.get("type").and_then(Json::as_str) {
                Some("ByteLevel") => {
                    self.set_add_default("bos", false);
                    self.set_add_default("eos", false);
                }
                Some("RobertaProcessing") => {
                    self.set_add("bos", true);
                    self.set_add("eos", true);
                    self.set_add("sep", true);
                }
                Some("TemplateProcessing") => {
                    self.template_processing(
                        p,
                        &mut bos,
                        &mut cls,
                        &mut eos,
                        sep.as_deref(),
                        has_config,
                        &mut config,
                    );
                }
                _ => {}
            }
        }
    }

    /// `TemplateProcessing`: the single-sequence template's first and last special tokens say
    /// whether BOS and EOS are added; the pair template's middle, whether SEP is.
    #[allow(clippy::too_many_arguments)]
    fn template_processing(
        &mut self,
        p: &Json,
        bos: &mut Option<String>,
        cls: &mut Option<String>,
        eos: &mut Option<String>,
        sep: Option<&str>,
        has_config: bool,
        config: &mut Option<&mut Json>,
    ) {
        let special_id = |e: &Json| {
            e.get("SpecialToken")
                .and_then(|s| s.get("id"))
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let set = |c: &mut Option<&mut Json>, k: &str, v: &str| {
            if let Some(Json::Object(o)) = c.as_deref_mut() {
                o.insert(k.to_string(), Json::String(v.to_string()));
            }
        };
        let single: Vec<&Json> = p
            .get("single")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut pair: Vec<&Json> = p
            .get("pair")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut first = None;
        let mut last = None;
        if single.len() > 1 {
            first = special_id(single[0]);
            if let Some(f) = &first {
                if !has_config {
                    *bos = Some(f.clone());
                } else if Some(f) != bos.as_ref() && Some(f) != cls.as_ref() {
                    if bos.is_none() {
                        *bos = Some(f.clone());
                        set(config, "bos_token", f);
                    }
                    if cls.is_none() {
                        *cls = Some(f.clone());
                        set(config, "cls_token", f);
                    }
                }
                let v = Some(f) == bos.as_ref() || Some(f) == cls.as_ref();
                self.set_add("bos", v);
            }
            last = special_id(single[single.len() - 1]);
            if let Some(l) = &last {
                if !has_config {
                    *eos = Some(l.clone());
                } else if Some(l) != eos.as_ref() {
                    let old = eos.clone().unwrap_or_default();
                    if !self.types.contains(&"eot") {
                        self.types.push("eot");
                        set(config, "eot_token", &old);
                    } else if !self.types.contains(&"eom") {
                        self.types.push("eom");
                        set(config, "eom_token", &old);
                    }
                    *eos = Some(l.clone());
                    set(config, "eos_token", l);
                }
                let v = Some(l) == eos.as_ref();
                self.set_add("eos", v);
            }
        }
        if pair.is_empty() {
            return;
        }
        let start = usize::from(first.is_some() && special_id(pair[0]) == first);
        let stop = usize::from(last.is_some() && special_id(pair[pair.len() - 1]) == last);
        if start + stop > pair.len() {
            return;
        }
        pair = pair[start..pair.len() - stop].to_vec();
        if pair.is_empty() {
            return;
        }
        let seq = |e: &Json| {
            e.get("Sequence")
                .and_then(|s| s.get("id"))
                .and_then(Json::as_str)
                .map(str::to_string)
        };
        let (a, b) = (seq(pair[0]), seq(pair[pair.len() - 1]));
        if a.as_deref() != Some("A") || b.as_deref() != Some("B") || pair.len() < 2 {
            return;
        }
        let middle = &pair[1..pair.len() - 1];
        if middle.is_empty() {
            return;
        }
        let is_sep = |e: &Option<String>| {
            e.as_deref()
                .is_some_and(|e| Some(e) == sep || Some(e) == eos.as_deref())
        };
        let mut add_sep = false;
        let e0 = special_id(middle[0]);
        if is_sep(&e0) && last.is_none() {
            add_sep = true;
        }
        if middle.len() == 2 && is_sep(&special_id(middle[1])) {
            add_sep = true;
        }
        self.set_add("sep", add_sep);
        if add_sep && sep.is_none() && has_config {
            let e = eos.clone().unwrap_or_default();
            set(config, "sep_token", &e);
        }
    }

    fn write(&self, kvs: &mut Vec<(String, Value)>) {
        if !self.merges.is_empty() {
            kvs.push((
                "tokenizer.ggml.merges".into(),
                Value::Array(Array::String(self.merges.clone())),
            ));
        }
        for (typ, id) in &self.ids {
            let key = match *typ {
                "bos" => "bos_token_id",
                "eos" => "eos_token_id",
                "unk" => "unknown_token_id",
                "sep" => "seperator_token_id",
                "pad" => "padding_token_id",
                "mask" => "mask_token_id",
                "eot" => "eot_token_id",
                "eom" => "eom_token_id",
                _ => continue,
            };
            kvs.push((format!("tokenizer.ggml.{key}"), Value::U32(*id)));
        }
        for (typ, v) in &self.add {
            if matches!(*typ, "bos" | "eos" | "sep") {
                kvs.push((format!("tokenizer.ggml.add_{typ}_token"), Value::Bool(*v)));
            }
        }
    }
}

fn token_content(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// `model.merges`: strings, or pairs joined by a space (a space inside a part written as
/// `Ġ`, U+0120, as gguf-py does).
fn merges(tj: &Json) -> Result<Vec<String>, HfError> {
    let Some(list) = tj
        .get("model")
        .and_then(|m| m.get("merges"))
        .and_then(Json::as_array)
    else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(pair) if pair.len() == 2 => {
                let part = |p: &Json| {
                    p.as_str()
                        .map(|s| s.replace(' ', "\u{0120}"))
                        .ok_or_else(|| HfError::Invalid("tokenizer.json: bad merge".into()))
                };
                Ok(format!("{} {}", part(&pair[0])?, part(&pair[1])?))
            }
            _ => Err(HfError::Invalid(
                "tokenizer.json: unknown merges format".into(),
            )),
        })
        .collect()
}

/// The chat templates `SpecialVocab` copies: `tokenizer_config.json`'s `chat_template` (a
/// string, or a list of `{name, template}`), else `chat_template.jinja` (with
/// `additional_chat_templates/*.jinja`) or `chat_template.json`. Returns `(key, text)` pairs.
fn chat_templates(
    dir: &Path,
    tc: &Map<String, Json>,
    names: &mut Vec<String>,
) -> Result<Vec<(String, String)>, HfError> {
    let alt = || -> Result<Option<Json>, HfError> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let text = String::from_utf8(super::read_limited(&jinja, MAX_TOKENIZER_FILE)?)
                .map_err(|_| hf_err(&jinja, "not UTF-8"))?;
            let extra = dir.join("additional_chat_templates");
            let mut more: Vec<std::path::PathBuf> = std::fs::read_dir(&extra)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
                .collect();
            if more.is_empty() {
                return Ok(Some(Json::String(text)));
            }
            more.sort();
            let mut list = vec![serde_json::json!({"name": "default", "template": text})];
            for p in more {
                let t = String::from_utf8(super::read_limited(&p, MAX_TOKENIZER_FILE)?)
                    .map_err(|_| hf_err(&p, "not UTF-8"))?;
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                list.push(serde_json::json!({"name": stem, "template": t}));
            }
            return Ok(Some(Json::Array(list)));
        }
        let json = dir.join("chat_template.json");
        Ok(json_file(&json, MAX_TOKENIZER_FILE)?.and_then(|j| j.get("chat_template").cloned()))
    };
    let value = match tc.get("chat_template") {
        Some(v) => Some(v.clone()),
        None => alt()?,
    };
    let mut out = Vec::new();
    match value {
        Some(Json::String(s)) => out.push(("tokenizer.chat_template".to_string(), s)),
        Some(Json::Array(list)) => {
            let mut default = None;
            for choice in &list {
                let name: String = choice
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let Some(t) = choice.get("template").and_then(Json::as_str) else {
                    continue;
                };
                if name.is_empty() {
                    continue;
                }
                if name == "default" {
                    default = Some(t.to_string());
                } else {
                    out.push((format!("tokenizer.chat_template.{name}"), t.to_string()));
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            if let Some(d) = default {
                out.push(("tokenizer.chat_template".to_string(), d));
            }
        }
        _ => {}
    }
    Ok(out)
}

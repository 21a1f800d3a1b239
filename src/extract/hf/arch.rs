//! The architectures converted, as llama.cpp's converter writes them (`conversion/llama.py`
//! `LlamaModel`, `conversion/qwen.py` `Qwen2Model`, `TextModel.set_gguf_parameters`, gguf-py
//! `tensor_mapping.py`):
//!
//! * `llama`: Llama 1–3, TinyLlama, Mistral and other `LlamaForCausalLM` checkpoints: the query
//!   and key projections' rows regrouped for llama.cpp's rotary embedding (`LlamaModel.permute`;
//!   keys by the key/value head count), `vocab_size` and `rope.dimension_count` written, and
//!   Llama 3's frequency factors (`rope_type: llama3`) as the generated `rope_freqs.weight`;
//! * `qwen2`: Qwen 1.5, Qwen 2 and Qwen 2.5 (`Qwen2ForCausalLM`): the same tensor names (with
//!   the attention biases), no regrouping;
//! * `qwen3`: Qwen 3 (`Qwen3ForCausalLM`): `qwen2` with the query and key norms. Qwen 3
//!   rerankers (scored by a classification head the converter builds) are refused;
//! * `gemma` and `gemma2` (`GemmaForCausalLM`, `Gemma2ForCausalLM`, `conversion/gemma.py`): every
//!   RMS norm weight stored plus one (Gemma's norm multiplies by `1 + w`; the sum taken in the
//!   checkpoint's own dtype, as torch does), no output matrix (tied to the embeddings), a
//!   hyper-parameter set of their own (no rope keys), Gemma 2's extra norms around attention and
//!   feed-forward, its logit soft-capping and sliding window;
//! * `phi3` (`phi3.rs`);
//! * `gpt2` (`GPT2LMHeadModel`, `conversion/gpt2.py`): learned positions, layer norms with
//!   biases, fused query/key/value; the `Conv1D` weights (`c_attn`, `c_proj`, `c_fc`), stored
//!   input-major, transposed.
//!
//! Tensor names: `model.layers.N.self_attn.q_proj.weight` → `blk.N.attn_q.weight`, …; the
//! hyper-parameters under `ARCH.*`.

use super::{Config, HfError, Json};
use crate::extract::tensor::{Backing, ByteSource};
use crate::extract::{DType, Tensor};
use crate::format::gguf::Value;

/// An architecture converted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// llama.cpp's `llama`.
    Llama,
    /// llama.cpp's `qwen2`.
    Qwen2,
    /// llama.cpp's `qwen3`: `qwen2` with normalised queries and keys.
    Qwen3,
    /// llama.cpp's `gemma`.
    Gemma,
    /// llama.cpp's `gemma2`.
    Gemma2,
    /// llama.cpp's `gpt2`.
    Gpt2,
    /// llama.cpp's `phi3`.
    Phi3,
}

/// `architectures` entries of `config.json` converted, and what they convert as.
pub const HF_ARCHITECTURES: &[(&str, Arch)] = &[
    ("LlamaForCausalLM", Arch::Llama),
    ("LLaMAForCausalLM", Arch::Llama),
    ("MistralForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Qwen2),
    ("Qwen3ForCausalLM", Arch::Qwen3),
    ("GemmaForCausalLM", Arch::Gemma),
    ("Gemma2ForCausalLM", Arch::Gemma2),
    ("GPT2LMHeadModel", Arch::Gpt2),
    ("Phi3ForCausalLM", Arch::Phi3),
];

impl Arch {
    /// The architecture of a `config.json` `architectures[0]`.
    pub fn of(hf: &str) -> Option<Arch> {
        HF_ARCHITECTURES
            .iter()
            .find(|(n, _)| *n == hf)
            .map(|(_, a)| *a)
    }

    /// llama.cpp's name (`general.architecture`, the prefix of the hyper-parameters).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma => "gemma",
            Arch::Gemma2 => "gemma2",
            Arch::Gpt2 => "gpt2",
            Arch::Phi3 => "phi3",
        }
    }

    /// Whether llama.cpp counts a model of this shape as a 70B (`llm_type`), which raises some
    /// tensors of the quantization mixes.
    pub fn is_70b(self, block_count: u64, heads: Heads) -> bool {
        block_count == 80
            && match self {
                Arch::Llama => heads.n_head != heads.n_head_kv,
                Arch::Qwen2 => true,
                Arch::Qwen3 | Arch::Gemma | Arch::Gemma2 | Arch::Gpt2 | Arch::Phi3 => false,
            }
    }

    /// Whether this is a Gemma (norm weights stored plus one, own hyper-parameters).
    pub fn is_gemma(self) -> bool {
        matches!(self, Arch::Gemma | Arch::Gemma2)
    }
}

/// The GGUF name of a checkpoint tensor, `None` when llama.cpp has no place for it.
pub fn gguf_name(arch: Arch, hf: &str) -> Option<String> {
    let (base, suffix) = match hf.rsplit_once('.') {
        Some((b, s @ ("weight" | "bias"))) => (b, s),
        _ => (hf, ""),
    };
    let join = |n: String| {
        if suffix.is_empty() {
            n
        } else {
            format!("{n}.{suffix}")
        }
    };
    if arch == Arch::Gpt2 {
        return gpt2_name(base).map(join);
    }
    let fixed = match base {
        "model.embed_tokens" => Some("token_embd"),
        "model.norm" => Some("output_norm"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(join(f.to_string()));
    }
    let rest = base.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Gemma 2 norms both sides of attention and of the feed-forward block (tensor_mapping.py:
    // its arch lists ATTN_POST_NORM, FFN_PRE_NORM and FFN_POST_NORM, not FFN_NORM).
    let gemma2 = match (arch, part) {
        (Arch::Gemma2, "post_attention_layernorm") => Some("post_attention_norm"),
        (Arch::Gemma2, "pre_feedforward_layernorm") => Some("ffn_norm"),
        (Arch::Gemma2, "post_feedforward_layernorm") => Some("post_ffw_norm"),
        _ => None,
    };
    if let Some(short) = gemma2.or(if arch == Arch::Phi3 {
        super::phi3::block_name(part)
    } else {
        None
    }) {
        return Some(join(format!("blk.{layer}.{short}")));
    }
    let short = match part {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        _ => return None,
    };
    Some(join(format!("blk.{layer}.{short}")))
}

/// GPT-2's names (`transformer.` prefixed, as transformers saves them, or not, as the original
/// checkpoint has them) without their `.weight`/`.bias`.
fn gpt2_name(base: &str) -> Option<String> {
    let base = base.strip_prefix("transformer.").unwrap_or(base);
    let fixed = match base {
        "wte" => Some("token_embd"),
        "wpe" => Some("position_embd"),
        "ln_f" => Some("output_norm"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let (layer, part) = base.strip_prefix("h.")?.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let short = match part {
        "ln_1" => "attn_norm",
        "attn.c_attn" => "attn_qkv",
        "attn.c_proj" => "attn_output",
        "ln_2" => "ffn_norm",
        "mlp.c_fc" => "ffn_up",
        "mlp.c_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{short}"))
}

/// The tensors llama.cpp cannot load a model of `arch` without that are not among `names`.
pub fn missing<'a>(
    arch: Arch,
    names: impl Iterator<Item = &'a str>,
    block_count: u64,
) -> Vec<String> {
    let have: std::collections::HashSet<&str> = names.collect();
    let mut need = vec![
        "token_embd.weight".to_string(),
        "output_norm.weight".to_string(),
    ];
    if matches!(arch, Arch::Gpt2 | Arch::Phi3) {
        if arch == Arch::Gpt2 {
            need.push("position_embd.weight".into());
        }
        // Both keep attention's query/key/value and Phi 3 its gate/up projections fused.
        for i in 0..block_count {
            for t in super::phi3::BLOCK_TENSORS {
                need.push(format!("blk.{i}.{t}.weight"));
            }
        }
        need.retain(|n| !have.contains(n.as_str()));
        return need;
    }
    for i in 0..block_count {
        for t in [
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            need.push(format!("blk.{i}.{t}.weight"));
        }
        if arch == Arch::Gemma2 {
            for t in ["post_attention_norm", "post_ffw_norm"] {
                need.push(format!("blk.{i}.{t}.weight"));
            }
        }
    }
    need.retain(|n| !have.contains(n.as_str()));
    need
}

/// Complete `config.json` as the converter sees it: it reads the config through transformers'
/// `AutoConfig(...).to_dict()`, so a key the file leaves out (or sets to null) takes the config
/// class's default (transformers 5.x `LlamaConfig`, `MistralConfig`, `Qwen2Config`,
/// `Qwen3Config`). Llama 1 and 2 configs have no `head_dim`, Llama 1's no `num_key_value_heads`
/// or `rope_theta`: the defaults decide `attention.key_length`, `head_count_kv` and
/// `rope.freq_base`.
pub fn complete_config(hf_arch: &str, config: &mut Config) {
    use serde_json::json;
    if hf_arch == "GPT2LMHeadModel" {
        // `GPT2Config`: `n_ctx` has no default (None), so the converter fails without it.
        let m = &mut config.0;
        for (k, v) in [
            ("vocab_size", json!(50257)),
            ("n_positions", json!(1024)),
            ("n_embd", json!(768)),
            ("n_layer", json!(12)),
            ("n_head", json!(12)),
            ("layer_norm_epsilon", json!(1e-5)),
        ] {
            if m.get(k).is_none_or(Json::is_null) {
                m.insert(k.into(), v);
            }
        }
        return;
    }
    // (vocab_size, hidden_size, intermediate_size, num_attention_heads, max_position_embeddings)
    let (vocab, hidden, ffn, heads, ctx) = match hf_arch {
        "MistralForCausalLM" => (32000, 4096, 14336, 32, 131072),
        "GemmaForCausalLM" => (256000, 3072, 24576, 16, 8192),
        "Gemma2ForCausalLM" => (256000, 2304, 9216, 8, 8192),
        "Phi3ForCausalLM" => (32064, 3072, 8192, 32, 4096),
        "Qwen2ForCausalLM" | "Qwen3ForCausalLM" => (151936, 4096, 22016, 32, 32768),
        _ => (32000, 4096, 11008, 32, 2048),
    };
    let m = &mut config.0;
    let absent = |m: &serde_json::Map<String, Json>, k: &str| m.get(k).is_none_or(Json::is_null);
    if hf_arch == "Phi3ForCausalLM" {
        for (k, v) in [
            ("original_max_position_embeddings", json!(4096)),
            ("rms_norm_eps", json!(1e-5)),
        ] {
            if absent(m, k) {
                m.insert(k.into(), v);
            }
        }
    }
    for (k, v) in [
        ("vocab_size", json!(vocab)),
        ("hidden_size", json!(hidden)),
        ("intermediate_size", json!(ffn)),
        ("num_attention_heads", json!(heads)),
        (
            "num_hidden_layers",
            json!(match hf_arch {
                "GemmaForCausalLM" => 28,
                "Gemma2ForCausalLM" => 26,
                _ => 32,
            }),
        ),
        ("max_position_embeddings", json!(ctx)),
        ("rms_norm_eps", json!(1e-6)),
    ] {
        if absent(m, k) {
            m.insert(k.into(), v);
        }
    }
    if absent(m, "num_key_value_heads") {
        let kv = match hf_arch {
            "MistralForCausalLM" => json!(8),
            "Qwen2ForCausalLM" | "Qwen3ForCausalLM" => json!(32),
            "GemmaForCausalLM" => json!(16),
            "Gemma2ForCausalLM" => json!(4),
            _ => m["num_attention_heads"].clone(),
        };
        m.insert("num_key_value_heads".into(), kv);
    }
    let theta_given = m.get("rope_theta").is_some_and(|v| !v.is_null())
        || ["rope_parameters", "rope_scaling"]
            .iter()
            .any(|k| m.get(*k).and_then(|r| r.get("rope_theta")).is_some());
    if !theta_given {
        m.insert("rope_theta".into(), json!(10000.0));
    }
    if hf_arch == "Gemma2ForCausalLM" {
        for (k, v) in [
            ("attn_logit_softcapping", json!(50.0)),
            ("final_logit_softcapping", json!(30.0)),
            ("sliding_window", json!(4096)),
        ] {
            // Only when absent: a null given in the file is kept (the converter fails on it).
            if !m.contains_key(k) {
                m.insert(k.into(), v);
            }
        }
    }
    if absent(m, "head_dim") {
        match hf_arch {
            "Qwen2ForCausalLM" => {
                m.remove("head_dim");
            }
            "Qwen3ForCausalLM" => {
                m.insert("head_dim".into(), json!(128));
            }
            "GemmaForCausalLM" | "Gemma2ForCausalLM" => {
                m.insert("head_dim".into(), json!(256));
            }
            _ => {
                let hidden = m["hidden_size"].as_u64();
                let heads = m["num_attention_heads"].as_u64().filter(|&h| h > 0);
                if let (Some(h), Some(n)) = (hidden, heads) {
                    m.insert("head_dim".into(), json!(h / n));
                }
            }
        }
    }
}

/// Checkpoint tensors the converter leaves out (Gemma's `lm_head` too: tied, and some
/// quantized exports carry it).
pub fn skipped(arch: Arch, hf: &str) -> bool {
    (arch.is_gemma() && hf == "lm_head.weight")
        || hf.ends_with(".attention.masked_bias")
        || hf.ends_with(".attention.bias")
        || hf.ends_with(".rotary_emb.inv_freq")
}

/// Head counts.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Query heads.
    pub n_head: u64,
    /// Key/value heads.
    pub n_head_kv: u64,
}

impl Heads {
    /// From `config.json`.
    pub fn of(config: &Config) -> Result<Heads, HfError> {
        let n_head = config
            .uint(&["n_heads", "num_attention_heads", "n_head"])
            .ok_or_else(|| HfError::Invalid("config.json has no num_attention_heads".into()))?;
        let n_head_kv = config
            .uint(&["n_kv_heads", "num_key_value_heads"])
            .unwrap_or(n_head);
        Ok(Heads { n_head, n_head_kv })
    }
}

/// Apply the converter's per-tensor change to a checkpoint tensor (query and key rows
/// regrouped), keeping its name.
pub fn transform(arch: Arch, hf: &str, mut t: Tensor, heads: Heads) -> Result<Tensor, HfError> {
    if arch.is_gemma() && hf.ends_with("norm.weight") {
        return plus_one(hf, t);
    }
    if arch == Arch::Gpt2
        && (hf.ends_with(".c_attn.weight")
            || hf.ends_with(".c_proj.weight")
            || hf.ends_with(".c_fc.weight"))
    {
        t.source = t
            .source
            .transposed()
            .map_err(|e| HfError::Invalid(format!("{hf}: {e}")))?;
        t.shape = t.source.shape().to_vec();
        return Ok(t);
    }
    if arch != Arch::Llama {
        return Ok(t);
    }
    let n = if hf.ends_with("q_proj.weight") || hf.ends_with("q_proj.bias") {
        heads.n_head
    } else if hf.ends_with("k_proj.weight") || hf.ends_with("k_proj.bias") {
        heads.n_head_kv
    } else {
        return Ok(t);
    };
    t.source = t
        .source
        .rope_permuted(n)
        .map_err(|e| HfError::Invalid(format!("{hf}: {e}")))?;
    Ok(t)
}

/// Largest tensor [`plus_one`] rewrites in memory (norm weights are one row).
const MAX_PLUS_ONE: u64 = 64 << 20;

/// `data_torch + 1` as the converter computes it: float32 and float16 in their own type (torch
/// rounds the float16 sum back to float16), bfloat16 after its conversion to float32 (every
/// type but float16 and float32 is converted before `modify_tensors`), so the result is float32.
fn plus_one(hf: &str, t: Tensor) -> Result<Tensor, HfError> {
    use crate::quant::float::{bf16_to_f32, f16_to_f32, f32_to_f16};
    let bad = |m: String| HfError::Invalid(format!("{hf}: {m}"));
    if t.source.nbytes() > MAX_PLUS_ONE {
        return Err(bad(format!("a norm of {} bytes", t.source.nbytes())));
    }
    let mut bytes = Vec::with_capacity(t.source.nbytes() as usize);
    t.source
        .for_each_chunk(1 << 20, &mut |c| {
            bytes.extend_from_slice(c);
            Ok(())
        })
        .map_err(|e| bad(e.to_string()))?;
    let (dtype, out) = match t.dtype {
        DType::F32 => {
            for c in bytes.chunks_exact_mut(4) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) + 1.0;
                c.copy_from_slice(&v.to_le_bytes());
            }
            (DType::F32, bytes)
        }
        DType::F16 => {
            for c in bytes.chunks_exact_mut(2) {
                let v = f16_to_f32(u16::from_le_bytes([c[0], c[1]])) + 1.0;
                c.copy_from_slice(&f32_to_f16(v).to_le_bytes());
            }
            (DType::F16, bytes)
        }
        DType::BF16 => {
            let out = bytes
                .chunks_exact(2)
                .flat_map(|c| (bf16_to_f32(u16::from_le_bytes([c[0], c[1]])) + 1.0).to_le_bytes())
                .collect();
            (DType::F32, out)
        }
        other => return Err(bad(format!("a norm of type {other:?}"))),
    };
    let region = Backing::owned(out).whole();
    let source = ByteSource::contiguous(region, dtype.size(), t.shape.clone())
        .map_err(|e| bad(e.to_string()))?;
    Ok(Tensor { source, dtype, ..t })
}

/// `rope_parameters` as `TextModel.__init__` completes them.
pub(super) fn rope_parameters(config: &Config) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value as J;
    let mut rp = match config
        .get("rope_parameters")
        .or_else(|| config.get("rope_scaling"))
    {
        Some(J::Object(o)) => o.clone(),
        _ => Default::default(),
    };
    let theta = config.first(&[
        "global_rope_theta",
        "rope_global_theta",
        "rope_theta_global",
        "rope_theta",
        "rotary_emb_base",
    ]);
    let local = config.first(&[
        "local_rope_theta",
        "rope_local_theta",
        "rope_theta_local",
        "swa_rope_theta",
        "rope_local_base_freq",
    ]);
    let partial = config.first(&["partial_rotary_factor", "rope_pct", "rope_percent"]);
    let orig = config.first(&["original_max_position_embeddings"]);
    if !rp.contains_key("full_attention") && !rp.contains_key("sliding_attention") {
        if let Some(l) = local {
            rp.insert(
                "sliding_attention".into(),
                serde_json::json!({ "rope_theta": l }),
            );
        }
        if !rp.contains_key("rope_theta") {
            if let Some(t) = theta {
                rp.insert("rope_theta".into(), t.clone());
            }
        }
        if !rp.contains_key("rope_type") {
            if let Some(t) = rp.get("type").filter(|v| !v.is_null()).cloned() {
                rp.insert("rope_type".into(), t);
            }
        }
        if !rp.contains_key("partial_rotary_factor") {
            if let Some(p) = partial {
                rp.insert("partial_rotary_factor".into(), p.clone());
            }
        }
        if !rp.contains_key("original_max_position_embeddings") {
            if let Some(o) = orig {
                rp.insert("original_max_position_embeddings".into(), o.clone());
            }
        }
    }
    rp
}

/// The `ARCH.*` hyper-parameters (`general.file_type` is the caller's).
pub fn hyperparameters(
    arch: Arch,
    config: &Config,
    block_count: u64,
) -> Result<Vec<(String, Value)>, HfError> {
    if arch.is_gemma() {
        return gemma_hyperparameters(arch, config, block_count);
    }
    if arch == Arch::Gpt2 {
        return gpt2_hyperparameters(config, block_count);
    }
    if arch == Arch::Phi3 {
        return super::phi3::hyperparameters(config, block_count);
    }
    let prefix = arch.name();
    let mut kv: Vec<(String, Value)> = Vec::new();
    let u32_key = |kv: &mut Vec<(String, Value)>, key: &str, v: u64| -> Result<(), HfError> {
        let v = u32::try_from(v)
            .map_err(|_| HfError::Invalid(format!("{key} = {v} does not fit in 32 bits")))?;
        kv.push((format!("{prefix}.{key}"), Value::U32(v)));
        Ok(())
    };
    let key = |k: &str| format!("{prefix}.{k}");
    u32_key(&mut kv, "block_count", block_count)?;
    let keys: [(&str, &[&str]); 4] = [
        (
            "context_length",
            &[
                "max_position_embeddings",
                "n_ctx",
                "n_positions",
                "max_length",
                "max_sequence_length",
                "model_max_length",
            ],
        ),
        ("embedding_length", &["hidden_size", "n_embd", "dim"]),
        (
            "feed_forward_length",
            &[
                "prefix_dense_intermediate_size",
                "dense_intermediate_size",
                "intermediate_size",
                "n_inner",
                "hidden_dim",
            ],
        ),
        (
            "attention.head_count",
            &["num_attention_heads", "n_head", "n_heads"],
        ),
    ];
    for (key, names) in keys {
        if let Some(v) = config.first(names).filter(|v| !v.is_null()) {
            let n = v
                .as_u64()
                .ok_or_else(|| HfError::Unsupported(format!("{key}: {v} is not a count")))?;
            u32_key(&mut kv, key, n)?;
        }
    }
    if let Some(v) = config.uint(&["num_key_value_heads", "n_kv_heads"]) {
        u32_key(&mut kv, "attention.head_count_kv", v)?;
    }
    if config.get("is_causal") == Some(&serde_json::Value::Bool(false)) {
        kv.push((key("attention.causal"), Value::Bool(false)));
    }
    let rp_all = rope_parameters(config);
    let rp = match rp_all.get("full_attention") {
        Some(serde_json::Value::Object(o)) => o.clone(),
        _ => rp_all.clone(),
    };
    let f32_of = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
    if let Some(rope_type) = rp.get("rope_type").and_then(|v| v.as_str()) {
        let factor = rp.get("factor").and_then(f32_of);
        match (rope_type, factor) {
            ("linear", Some(f)) => {
                kv.push((key("rope.scaling.type"), "linear".into()));
                kv.push((key("rope.scaling.factor"), Value::F32(f)));
            }
            ("yarn", Some(_)) | ("su" | "longrope", _) => {
                return Err(HfError::Unsupported(format!(
                    "rope_type {rope_type} is not converted here"
                )))
            }
            _ => {}
        }
    }
    if rp_all.contains_key("mrope_section") {
        return Err(HfError::Unsupported(
            "mrope_section is not converted here".into(),
        ));
    }
    if let Some(theta) = rp.get("rope_theta").and_then(f32_of) {
        kv.push((key("rope.freq_base"), Value::F32(theta)));
    }
    if let Some(local) = rp_all
        .get("sliding_attention")
        .and_then(|s| s.get("rope_theta"))
        .and_then(f32_of)
    {
        kv.push((key("rope.freq_base_swa"), Value::F32(local)));
    }
    if let Some(eps) = config.first(&["rms_norm_eps", "norm_eps"]).and_then(f32_of) {
        kv.push((key("attention.layer_norm_rms_epsilon"), Value::F32(eps)));
    }
    if let Some(eps) = config
        .first(&["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"])
        .and_then(f32_of)
    {
        kv.push((key("attention.layer_norm_epsilon"), Value::F32(eps)));
    }
    if config
        .first(&["num_local_experts", "num_experts", "n_routed_experts"])
        .is_some_and(|v| !v.is_null())
    {
        return Err(HfError::Unsupported(
            "mixture-of-experts models are not converted here".into(),
        ));
    }
    if let Some(head_dim) = config.get("head_dim").and_then(|v| v.as_u64()) {
        u32_key(&mut kv, "attention.key_length", head_dim)?;
        u32_key(&mut kv, "attention.value_length", head_dim)?;
    }
    if arch == Arch::Llama {
        // `LlamaModel.set_gguf_parameters`.
        if let Some(v) = config.get("vocab_size").and_then(|v| v.as_u64()) {
            u32_key(&mut kv, "vocab_size", v)?;
        }
        u32_key(&mut kv, "rope.dimension_count", rope_dim(config)?)?;
    }
    Ok(kv)
}

/// `GemmaModel.set_gguf_parameters` / `Gemma2Model.set_gguf_parameters`: their own keys, read
/// by name (a missing one is an error, as the converter's `hparams[...]` is).
fn gemma_hyperparameters(
    arch: Arch,
    config: &Config,
    block_count: u64,
) -> Result<Vec<(String, Value)>, HfError> {
    let prefix = arch.name();
    let get = |k: &str| {
        config
            .get(k)
            .filter(|v| !v.is_null())
            .ok_or_else(|| HfError::Invalid(format!("config.json has no {k}")))
    };
    let count = |k: &str| -> Result<Value, HfError> {
        let v = get(k)?;
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Value::U32)
            .ok_or_else(|| HfError::Invalid(format!("{k} = {v} is not a 32-bit count")))
    };
    let real = |k: &str| -> Result<Value, HfError> {
        let v = get(k)?;
        v.as_f64()
            .map(|x| Value::F32(x as f32))
            .ok_or_else(|| HfError::Invalid(format!("{k} = {v} is not a number")))
    };
    let blocks = u32::try_from(block_count)
        .map_err(|_| HfError::Invalid(format!("{block_count} layers")))?;
    let kv_heads = if config.get("num_key_value_heads").is_some() {
        count("num_key_value_heads")?
    } else {
        count("num_attention_heads")?
    };
    let mut kv = vec![
        (
            format!("{prefix}.context_length"),
            count("max_position_embeddings")?,
        ),
        (format!("{prefix}.embedding_length"), count("hidden_size")?),
        (format!("{prefix}.block_count"), Value::U32(blocks)),
        (
            format!("{prefix}.feed_forward_length"),
            count("intermediate_size")?,
        ),
        (
            format!("{prefix}.attention.head_count"),
            count("num_attention_heads")?,
        ),
        (format!("{prefix}.attention.head_count_kv"), kv_heads),
        (
            format!("{prefix}.attention.layer_norm_rms_epsilon"),
            real("rms_norm_eps")?,
        ),
        (format!("{prefix}.attention.key_length"), count("head_dim")?),
        (
            format!("{prefix}.attention.value_length"),
            count("head_dim")?,
        ),
    ];
    if arch == Arch::Gemma2 {
        kv.push((
            format!("{prefix}.attn_logit_softcapping"),
            real("attn_logit_softcapping")?,
        ));
        kv.push((
            format!("{prefix}.final_logit_softcapping"),
            real("final_logit_softcapping")?,
        ));
        kv.push((
            format!("{prefix}.attention.sliding_window"),
            count("sliding_window")?,
        ));
    }
    Ok(kv)
}

/// `GPT2Model.set_gguf_parameters`: `n_ctx` (not `n_positions`), a feed-forward of four times
/// the embedding, the layer-norm epsilon.
fn gpt2_hyperparameters(
    config: &Config,
    block_count: u64,
) -> Result<Vec<(String, Value)>, HfError> {
    let count = |k: &str| -> Result<u32, HfError> {
        let v = config
            .get(k)
            .filter(|v| !v.is_null())
            .ok_or_else(|| HfError::Invalid(format!("config.json has no {k}")))?;
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| HfError::Invalid(format!("{k} = {v} is not a 32-bit count")))
    };
    let eps = config
        .get("layer_norm_epsilon")
        .and_then(|v| v.as_f64())
        .ok_or_else(|| HfError::Invalid("config.json has no layer_norm_epsilon".into()))?;
    let blocks = u32::try_from(block_count)
        .map_err(|_| HfError::Invalid(format!("{block_count} layers")))?;
    let n_embd = count("n_embd")?;
    let ffn = n_embd
        .checked_mul(4)
        .ok_or_else(|| HfError::Invalid(format!("n_embd = {n_embd}")))?;
    Ok(vec![
        ("gpt2.block_count".into(), Value::U32(blocks)),
        ("gpt2.context_length".into(), Value::U32(count("n_ctx")?)),
        ("gpt2.embedding_length".into(), Value::U32(n_embd)),
        ("gpt2.feed_forward_length".into(), Value::U32(ffn)),
        (
            "gpt2.attention.head_count".into(),
            Value::U32(count("n_head")?),
        ),
        (
            "gpt2.attention.layer_norm_epsilon".into(),
            Value::F32(eps as f32),
        ),
    ])
}

/// Largest rotary dimension accepted (head sizes are 64–256).
const MAX_ROPE_DIM: u64 = 1 << 16;

fn rope_dim(config: &Config) -> Result<u64, HfError> {
    let d = match config.get("head_dim").and_then(|v| v.as_u64()) {
        Some(d) => d,
        None => hidden_per_head(config)?,
    };
    if d > MAX_ROPE_DIM {
        return Err(HfError::Invalid(format!(
            "a rotary dimension of {d} (at most {MAX_ROPE_DIM})"
        )));
    }
    Ok(d)
}

fn hidden_per_head(config: &Config) -> Result<u64, HfError> {
    let hidden = config
        .uint(&["hidden_size"])
        .ok_or_else(|| HfError::Invalid("config.json has no hidden_size".into()))?;
    let heads = config
        .uint(&["num_attention_heads"])
        .filter(|&h| h > 0)
        .ok_or_else(|| HfError::Invalid("config.json has no num_attention_heads".into()))?;
    Ok(hidden / heads)
}

/// Llama 3's rotary frequency factors (`rope_type: llama3`) as `rope_freqs.weight`, computed
/// in f32 as the converter computes them with torch.
pub fn extra_tensors(arch: Arch, config: &Config) -> Result<Vec<Tensor>, HfError> {
    if arch == Arch::Phi3 {
        return super::phi3::extra_tensors(config);
    }
    if arch != Arch::Llama {
        return Ok(Vec::new());
    }
    let rp_all = rope_parameters(config);
    let rp = match rp_all.get("full_attention") {
        Some(serde_json::Value::Object(o)) => o.clone(),
        _ => rp_all,
    };
    let is_llama3 = rp
        .get("rope_type")
        .and_then(|v| v.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case("llama3"));
    if !is_llama3 {
        return Ok(Vec::new());
    }
    let num = |k: &str, d: f64| rp.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
    let base = num("rope_theta", 10000.0);
    let dim = rope_dim(config)?;
    let factor = num("factor", 8.0);
    let low = num("low_freq_factor", 1.0);
    let high = num("high_freq_factor", 4.0);
    let old_ctx = num("original_max_position_embeddings", 8192.0);
    let low_wavelen = old_ctx / low;
    let high_wavelen = old_ctx / high;
    let mut factors = Vec::new();
    for i in (0..dim).step_by(2) {
        // torch: base ** (arange(0, dim, 2, f32) / dim), 1 / that, all in f32.
        let exponent = i as f32 / dim as f32;
        let freq = 1.0f32 / (base as f32).powf(exponent);
        let wavelen = (2.0 * std::f64::consts::PI) as f32 / freq;
        let w = f64::from(wavelen);
        let f = if w < high_wavelen {
            1.0f32
        } else if w > low_wavelen {
            factor as f32
        } else {
            let smooth = ((old_ctx as f32) / wavelen - low as f32) / (high as f32 - low as f32);
            1.0 / ((1.0 - smooth) / factor as f32 + smooth)
        };
        factors.push(f);
    }
    let bytes: Vec<u8> = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
    let n = factors.len() as u64;
    let source = ByteSource::contiguous(Backing::owned(bytes).whole(), 4, vec![n])
        .map_err(|e| HfError::Invalid(e.to_string()))?;
    Ok(vec![Tensor {
        name: "rope_freqs.weight".into(),
        dtype: DType::F32,
        shape: vec![n],
        source,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma2_norms_have_their_own_names() {
        let n = "model.layers.2.post_attention_layernorm.weight";
        assert_eq!(gguf_name(Arch::Llama, n).unwrap(), "blk.2.ffn_norm.weight");
        assert_eq!(gguf_name(Arch::Gemma, n).unwrap(), "blk.2.ffn_norm.weight");
        assert_eq!(
            gguf_name(Arch::Gemma2, n).unwrap(),
            "blk.2.post_attention_norm.weight"
        );
        assert_eq!(
            gguf_name(
                Arch::Gemma2,
                "model.layers.0.post_feedforward_layernorm.weight"
            )
            .unwrap(),
            "blk.0.post_ffw_norm.weight"
        );
        assert!(skipped(Arch::Gemma, "lm_head.weight"));
        assert!(!skipped(Arch::Llama, "lm_head.weight"));
    }

    #[test]
    fn gpt2_names_with_and_without_the_transformer_prefix() {
        let g = |n| gguf_name(Arch::Gpt2, n);
        assert_eq!(g("transformer.wte.weight").unwrap(), "token_embd.weight");
        assert_eq!(g("wpe.weight").unwrap(), "position_embd.weight");
        assert_eq!(
            g("transformer.h.3.attn.c_attn.bias").unwrap(),
            "blk.3.attn_qkv.bias"
        );
        assert_eq!(g("h.0.mlp.c_proj.weight").unwrap(), "blk.0.ffn_down.weight");
        assert_eq!(g("transformer.ln_f.weight").unwrap(), "output_norm.weight");
        assert_eq!(g("transformer.h.x.ln_1.weight"), None);
        assert_eq!(g("model.layers.0.self_attn.q_proj.weight"), None);
    }

    #[test]
    fn gpt2_conv1d_weights_are_transposed() {
        // [in = 2, out = 3], row-major: rows are inputs.
        let v: Vec<u8> = (0..6u8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let region = Backing::owned(v).whole();
        let t = Tensor {
            name: "w".into(),
            dtype: DType::F32,
            shape: vec![2, 3],
            source: ByteSource::contiguous(region, 4, vec![2, 3]).unwrap(),
        };
        let heads = Heads {
            n_head: 1,
            n_head_kv: 1,
        };
        let t = transform(Arch::Gpt2, "transformer.h.0.mlp.c_fc.weight", t, heads).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        let want: Vec<u8> = [0f32, 3.0, 1.0, 4.0, 2.0, 5.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(bytes_of(&t), want);
    }

    fn norm(dtype: DType, bytes: Vec<u8>, n: u64) -> Tensor {
        let region = Backing::owned(bytes).whole();
        Tensor {
            name: "w".into(),
            dtype,
            shape: vec![n],
            source: ByteSource::contiguous(region, dtype.size(), vec![n]).unwrap(),
        }
    }

    fn bytes_of(t: &Tensor) -> Vec<u8> {
        let mut v = Vec::new();
        t.source
            .for_each_chunk(64, &mut |c| {
                v.extend_from_slice(c);
                Ok(())
            })
            .unwrap();
        v
    }

    #[test]
    fn plus_one_rounds_as_torch_does() {
        use crate::quant::float::{f32_to_bf16, f32_to_f16};
        let tiny = 2f32.powi(-12); // below float16's step at 1, within float32's
                                   // float16: summed and rounded back to float16.
        let t = plus_one(
            "n",
            norm(DType::F16, f32_to_f16(tiny).to_le_bytes().to_vec(), 1),
        )
        .unwrap();
        assert_eq!(t.dtype, DType::F16);
        assert_eq!(bytes_of(&t), f32_to_f16(1.0).to_le_bytes());
        // bfloat16: converted to float32 first, so the sum keeps its low bits.
        let t = plus_one(
            "n",
            norm(DType::BF16, f32_to_bf16(tiny).to_le_bytes().to_vec(), 1),
        )
        .unwrap();
        assert_eq!(t.dtype, DType::F32);
        assert_eq!(bytes_of(&t), (1.0 + tiny).to_le_bytes());
        let t = plus_one("n", norm(DType::F32, 0.5f32.to_le_bytes().to_vec(), 1)).unwrap();
        assert_eq!(bytes_of(&t), 1.5f32.to_le_bytes());
    }

    #[test]
    fn names_map_as_llama_cpp_maps_them() {
        assert_eq!(
            gguf_name(Arch::Llama, "model.embed_tokens.weight").unwrap(),
            "token_embd.weight"
        );
        assert_eq!(
            gguf_name(Arch::Llama, "lm_head.weight").unwrap(),
            "output.weight"
        );
        assert_eq!(
            gguf_name(Arch::Llama, "model.layers.12.self_attn.k_proj.weight").unwrap(),
            "blk.12.attn_k.weight"
        );
        assert_eq!(
            gguf_name(Arch::Llama, "model.layers.0.self_attn.q_proj.bias").unwrap(),
            "blk.0.attn_q.bias"
        );
        assert_eq!(
            gguf_name(
                Arch::Llama,
                "model.layers.3.post_attention_layernorm.weight"
            )
            .unwrap(),
            "blk.3.ffn_norm.weight"
        );
        assert_eq!(
            gguf_name(Arch::Llama, "model.layers.x.mlp.up_proj.weight"),
            None
        );
        assert_eq!(gguf_name(Arch::Llama, "vision_tower.weight"), None);
    }

    #[test]
    fn query_rows_are_regrouped_per_head() {
        // 2 heads of 4 rows, 1 column: rows [0..8) become 0,2,1,3, 4,6,5,7.
        let data: Vec<u8> = (0u8..8).collect();
        let src = ByteSource::contiguous(Backing::owned(data).whole(), 1, vec![8, 1]).unwrap();
        let t = Tensor {
            name: "q".into(),
            dtype: DType::U8,
            shape: vec![8, 1],
            source: src,
        };
        let heads = Heads {
            n_head: 2,
            n_head_kv: 2,
        };
        let p = transform(
            Arch::Llama,
            "model.layers.0.self_attn.q_proj.weight",
            t,
            heads,
        )
        .unwrap();
        let mut out = Vec::new();
        p.source
            .for_each_chunk(64, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(out, vec![0, 2, 1, 3, 4, 6, 5, 7]);
    }
}

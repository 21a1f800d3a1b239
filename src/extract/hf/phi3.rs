//! `phi3` (`Phi3ForCausalLM`: Phi-3 and Phi-3.5 mini/medium, `conversion/phi.py`
//! `Phi3MiniModel`): fused query/key/value (`qkv_proj` → `attn_qkv`) and gate/up
//! (`gate_up_proj` → `ffn_up`) projections kept fused, a partial rotary dimension, the original
//! context length, and for the long-context (`longrope`/`su`) models the long and short rope
//! factors as generated tensors with their attention factor.

use super::{Config, HfError, Json};
use crate::extract::tensor::{Backing, ByteSource};
use crate::extract::{DType, Tensor};
use crate::format::gguf::Value;

/// The GGUF block tensor of a Phi 3 layer part, where it differs from Llama's.
pub fn block_name(part: &str) -> Option<&'static str> {
    match part {
        "self_attn.qkv_proj" => Some("attn_qkv"),
        "mlp.gate_up_proj" => Some("ffn_up"),
        _ => None,
    }
}

/// Block tensors llama.cpp needs for each layer.
pub const BLOCK_TENSORS: &[&str] = &[
    "attn_norm",
    "attn_qkv",
    "attn_output",
    "ffn_norm",
    "ffn_up",
    "ffn_down",
];

struct Shape {
    n_embd: u64,
    n_head: u64,
    max_pos: u64,
    orig_ctx: u64,
    rope_dims: u64,
    rope: serde_json::Map<String, Json>,
}

fn shape(config: &Config) -> Result<Shape, HfError> {
    let need = |keys: &[&str]| {
        config
            .uint(keys)
            .ok_or_else(|| HfError::Invalid(format!("config.json has no {}", keys.join(" or "))))
    };
    let n_embd = need(&["hidden_size", "n_embd"])?;
    let n_head = need(&["num_attention_heads", "n_head"])?.max(1);
    let max_pos = need(&["n_positions", "max_position_embeddings"])?;
    let rope = super::arch::rope_parameters(config);
    let orig_ctx = rope
        .get("original_max_position_embeddings")
        .and_then(Json::as_u64)
        .ok_or_else(|| {
            HfError::Invalid("config.json has no original_max_position_embeddings".into())
        })?;
    let pct = rope
        .get("partial_rotary_factor")
        .and_then(Json::as_f64)
        .unwrap_or(1.0);
    // int(rot_pct * n_embd) // n_head, in Python floats.
    let rope_dims = ((pct * n_embd as f64) as u64) / n_head;
    Ok(Shape {
        n_embd,
        n_head,
        max_pos,
        orig_ctx,
        rope_dims,
        rope,
    })
}

fn u32_of(k: &str, v: u64) -> Result<Value, HfError> {
    u32::try_from(v)
        .map(Value::U32)
        .map_err(|_| HfError::Invalid(format!("{k} = {v} does not fit in 32 bits")))
}

/// `Phi3MiniModel.set_gguf_parameters`, plus the attention factor `generate_extra_tensors`
/// writes for long-context models.
pub fn hyperparameters(config: &Config, block_count: u64) -> Result<Vec<(String, Value)>, HfError> {
    let s = shape(config)?;
    let kv_heads = config
        .uint(&["num_key_value_heads", "n_head_kv"])
        .ok_or_else(|| HfError::Invalid("config.json has no num_key_value_heads".into()))?;
    let ffn = config
        .uint(&["intermediate_size"])
        .ok_or_else(|| HfError::Invalid("config.json has no intermediate_size".into()))?;
    let eps = config
        .get("rms_norm_eps")
        .and_then(Json::as_f64)
        .ok_or_else(|| HfError::Invalid("config.json has no rms_norm_eps".into()))?;
    let rope_full = match s.rope.get("full_attention") {
        Some(Json::Object(o)) => o.clone(),
        _ => s.rope.clone(),
    };
    let theta = rope_full
        .get("rope_theta")
        .and_then(Json::as_f64)
        .ok_or_else(|| HfError::Invalid("config.json has no rope_theta".into()))?;
    let window = config
        .get("sliding_window")
        .and_then(Json::as_u64)
        .unwrap_or(0);
    let mut kv = vec![
        (
            "phi3.context_length".into(),
            u32_of("max_position_embeddings", s.max_pos)?,
        ),
        (
            "phi3.rope.scaling.original_context_length".into(),
            u32_of("original_max_position_embeddings", s.orig_ctx)?,
        ),
        (
            "phi3.embedding_length".into(),
            u32_of("hidden_size", s.n_embd)?,
        ),
        (
            "phi3.feed_forward_length".into(),
            u32_of("intermediate_size", ffn)?,
        ),
        (
            "phi3.block_count".into(),
            u32_of("num_hidden_layers", block_count)?,
        ),
        (
            "phi3.attention.head_count".into(),
            u32_of("num_attention_heads", s.n_head)?,
        ),
        (
            "phi3.attention.head_count_kv".into(),
            u32_of("num_key_value_heads", kv_heads)?,
        ),
        (
            "phi3.attention.layer_norm_rms_epsilon".into(),
            Value::F32(eps as f32),
        ),
        (
            "phi3.rope.dimension_count".into(),
            u32_of("rope dimensions", s.rope_dims)?,
        ),
        ("phi3.rope.freq_base".into(), Value::F32(theta as f32)),
        (
            "phi3.attention.sliding_window".into(),
            u32_of("sliding_window", window)?,
        ),
    ];
    if let Some(factor) = attn_factor(&s)? {
        kv.push((
            "phi3.rope.scaling.attn_factor".into(),
            Value::F32(factor as f32),
        ));
    }
    Ok(kv)
}

fn factors<'a>(s: &'a Shape, key: &str) -> Option<&'a Vec<Json>> {
    s.rope
        .get(key)
        .and_then(Json::as_array)
        .filter(|a| !a.is_empty())
}

/// The attention factor of a long-context model (`None` without `long_factor`).
fn attn_factor(s: &Shape) -> Result<Option<f64>, HfError> {
    if factors(s, "long_factor").is_none() {
        return Ok(None);
    }
    let scale = s.max_pos as f64 / s.orig_ctx as f64;
    let kind = s
        .rope
        .get("rope_type")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let f = match kind.as_str() {
        "su" | "longrope" if scale > 1.0 => (1.0 + scale.ln() / (s.orig_ctx as f64).ln()).sqrt(),
        "yarn" if scale > 1.0 => 0.1 * scale.ln() + 1.0,
        "su" | "longrope" | "yarn" => 1.0,
        "" => return Err(HfError::Invalid("rope_scaling has no type".into())),
        other => {
            return Err(HfError::Unsupported(format!(
                "Phi 3 rope scaling {other} is not converted"
            )))
        }
    };
    Ok(Some(f))
}

/// `rope_factors_long.weight` and `rope_factors_short.weight` of a long-context model.
pub fn extra_tensors(config: &Config) -> Result<Vec<Tensor>, HfError> {
    let s = shape(config)?;
    attn_factor(&s)?;
    let (Some(long), short) = (factors(&s, "long_factor"), factors(&s, "short_factor")) else {
        return Ok(Vec::new());
    };
    let short = short.ok_or_else(|| HfError::Invalid("rope_scaling has no short_factor".into()))?;
    if long.len() != short.len() || long.len() as u64 * 2 != s.rope_dims {
        return Err(HfError::Invalid(format!(
            "rope factors of {} and {} values for {} rotary dimensions",
            long.len(),
            short.len(),
            s.rope_dims
        )));
    }
    let tensor = |name: &str, values: &[Json]| -> Result<Tensor, HfError> {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            let x = v
                .as_f64()
                .ok_or_else(|| HfError::Invalid(format!("{name}: {v} is not a number")))?;
            bytes.extend_from_slice(&(x as f32).to_le_bytes());
        }
        let n = values.len() as u64;
        let source = ByteSource::contiguous(Backing::owned(bytes).whole(), 4, vec![n])
            .map_err(|e| HfError::Invalid(e.to_string()))?;
        Ok(Tensor {
            name: name.into(),
            dtype: DType::F32,
            shape: vec![n],
            source,
        })
    };
    Ok(vec![
        tensor("rope_factors_long.weight", long)?,
        tensor("rope_factors_short.weight", short)?,
    ])
}

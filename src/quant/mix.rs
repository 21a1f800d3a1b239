//! Quantization mixes as `llama-quantize` makes them (llama.cpp `src/llama-quant.cpp`,
//! `llama_tensor_get_type` without an importance matrix or overrides): each tensor of a GGUF
//! whose tensors are named as llama.cpp names them gets the mix's default type, raised for the
//! tensors that lose most to quantization (`output.weight`, some `attn_v` and `ffn_down`
//! layers), with llama.cpp's fallbacks for rows that do not fit a block.
//!
//! The choice depends on the order the tensors come in (the `attn_v` and `ffn_down` counters
//! count tensors, not layers), so [`MixPlanner::choose`] must be called in file order.

use super::GgmlType;
use std::fmt;
use std::str::FromStr;

/// A `llama-quantize` file type that mixes tensor types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Mix {
    /// `Q2_K`.
    Q2_K,
    /// `Q3_K_M`.
    Q3_K_M,
    /// `Q4_K_S`.
    Q4_K_S,
    /// `Q4_K_M`.
    Q4_K_M,
    /// `Q5_K_S`.
    Q5_K_S,
    /// `Q5_K_M`.
    Q5_K_M,
    /// `Q6_K`.
    Q6_K,
}

impl Mix {
    /// Every mix, in the order `llama-quantize --help` lists them.
    pub const ALL: [Mix; 7] = [
        Mix::Q2_K,
        Mix::Q3_K_M,
        Mix::Q4_K_S,
        Mix::Q4_K_M,
        Mix::Q5_K_S,
        Mix::Q5_K_M,
        Mix::Q6_K,
    ];

    /// Name as `llama-quantize` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Q2_K => "Q2_K",
            Mix::Q3_K_M => "Q3_K_M",
            Mix::Q4_K_S => "Q4_K_S",
            Mix::Q4_K_M => "Q4_K_M",
            Mix::Q5_K_S => "Q5_K_S",
            Mix::Q5_K_M => "Q5_K_M",
            Mix::Q6_K => "Q6_K",
        }
    }

    /// `general.file_type` (`llama_ftype`).
    pub fn file_type(self) -> u32 {
        match self {
            Mix::Q2_K => 10,
            Mix::Q3_K_M => 12,
            Mix::Q4_K_S => 14,
            Mix::Q4_K_M => 15,
            Mix::Q5_K_S => 16,
            Mix::Q5_K_M => 17,
            Mix::Q6_K => 18,
        }
    }

    /// The type most tensors get (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        match self {
            Mix::Q2_K => GgmlType::Q2_K,
            Mix::Q3_K_M => GgmlType::Q3_K,
            Mix::Q4_K_S | Mix::Q4_K_M => GgmlType::Q4_K,
            Mix::Q5_K_S | Mix::Q5_K_M => GgmlType::Q5_K,
            Mix::Q6_K => GgmlType::Q6_K,
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mix::ALL
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown quantization mix '{s}'"))
    }
}

/// The broad role of a tensor, from its GGUF name (`tensor_get_category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnV,
    AttnOutput,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if name.contains("attn_qkv.weight")
        || name.contains("attn_kv_b.weight")
        || name.contains("attn_v.weight")
    {
        Category::AttnV
    } else if name.contains("attn_k.weight") || name.contains("attn_q.weight") {
        Category::Other
    } else if name.contains("attn_output.weight") {
        Category::AttnOutput
    } else if name.contains("ffn_up") || name.contains("ffn_gate") {
        Category::Other
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// Whether `llama-quantize` quantizes a tensor at all (`tensor_allows_quantization`, the
/// conditions that can hold for the architectures converted here).
pub fn allows_quantization(name: &str, n_dims: usize) -> bool {
    n_dims >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && !name.contains("ffn_gate_inp.weight")
        && !name.contains("altup")
        && !name.contains("laurel")
        && !name.contains("per_layer_model_proj")
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !name.contains("ssm_conv1d")
        && !name.contains("attn_rel_b.weight")
}

/// What the choice depends on besides the tensor.
#[derive(Debug, Clone)]
pub struct MixPlanner {
    mix: Mix,
    /// Tensors in the `attn_v` category in the file.
    n_attention_wv: usize,
    i_attention_wv: usize,
    /// Layers (`block_count`).
    n_ffn_down: usize,
    i_ffn_down: usize,
    /// No `output.weight`: the token embeddings double as the output.
    tied_embeddings: bool,
    /// Query heads per key/value head.
    n_gqa: u32,
    /// llama.cpp counts the model as a 70B (a Llama of 80 layers with grouped-query attention).
    is_70b: bool,
}

impl MixPlanner {
    /// A planner for the tensors named `names` (in file order) of a model of `n_layer` layers
    /// with `n_gqa` query heads per key/value head.
    pub fn new<'a>(
        mix: Mix,
        names: impl IntoIterator<Item = &'a str>,
        n_layer: usize,
        n_gqa: u32,
        is_70b: bool,
    ) -> MixPlanner {
        let mut n_attention_wv = 0;
        let mut tied_embeddings = true;
        for n in names {
            match category(n) {
                Category::AttnV => n_attention_wv += 1,
                Category::Output => tied_embeddings = false,
                _ => {}
            }
        }
        MixPlanner {
            mix,
            n_attention_wv,
            i_attention_wv: 0,
            n_ffn_down: n_layer,
            i_ffn_down: 0,
            tied_embeddings,
            n_gqa,
            is_70b,
        }
    }

    /// The type of the next tensor in file order: `None` when `llama-quantize` leaves it as it
    /// is. `row_len` is the length of a row (ggml `ne[0]`).
    pub fn choose(&mut self, name: &str, n_dims: usize, row_len: usize) -> Option<GgmlType> {
        if !allows_quantization(name, n_dims) {
            return None;
        }
        let ty = self.by_role(name, row_len);
        Some(fallback(ty, row_len))
    }

    fn by_role(&mut self, name: &str, row_len: usize) -> GgmlType {
        use GgmlType as T;
        let mix = self.mix;
        let mut ty = mix.default_type();
        let more_bits = |i: usize, n: usize| i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        let cat = category(name);
        if cat == Category::Output || (self.tied_embeddings && cat == Category::TokenEmbd) {
            if !row_len.is_multiple_of(ty.block_size()) {
                ty = T::Q8_0;
            } else if ty != T::Q8_0 {
                ty = T::Q6_K;
            }
            return ty;
        }
        match cat {
            Category::AttnV => {
                let (i, n) = (self.i_attention_wv, self.n_attention_wv);
                match mix {
                    Mix::Q2_K => ty = if self.n_gqa >= 4 { T::Q4_K } else { T::Q3_K },
                    Mix::Q3_K_M => ty = if i < 2 { T::Q5_K } else { T::Q4_K },
                    Mix::Q4_K_M | Mix::Q5_K_M if more_bits(i, n) => ty = T::Q6_K,
                    Mix::Q4_K_S if i < 4 => ty = T::Q5_K,
                    _ => {}
                }
                if self.is_70b && matches!(ty, T::Q3_K | T::Q4_K) {
                    ty = T::Q5_K;
                }
                self.i_attention_wv += 1;
            }
            Category::FfnDown => {
                let (i, n) = (self.i_ffn_down, self.n_ffn_down);
                match mix {
                    Mix::Q2_K => ty = T::Q3_K,
                    Mix::Q3_K_M => ty = if i < n / 16 { T::Q5_K } else { T::Q4_K },
                    Mix::Q4_K_M | Mix::Q5_K_M if more_bits(i, n) => ty = T::Q6_K,
                    Mix::Q4_K_S if i < n / 8 => ty = T::Q5_K,
                    _ => {}
                }
                self.i_ffn_down += 1;
            }
            Category::AttnOutput => match mix {
                Mix::Q2_K => ty = T::Q3_K,
                Mix::Q3_K_M => ty = T::Q4_K,
                _ => {}
            },
            Category::Output | Category::TokenEmbd | Category::Other => {}
        }
        ty
    }
}

/// llama.cpp's replacement for a type whose block does not divide the row
/// (`tensor_type_fallback`): a 32-block type of about the same size, or F16.
pub fn fallback(ty: GgmlType, row_len: usize) -> GgmlType {
    use GgmlType as T;
    if row_len.is_multiple_of(ty.block_size()) {
        return ty;
    }
    let smaller = match ty {
        T::Q2_K | T::Q3_K => T::Q4_0,
        T::Q4_K => T::Q5_0,
        T::Q5_K => T::Q5_1,
        T::Q6_K => T::Q8_0,
        other => other,
    };
    if row_len.is_multiple_of(smaller.block_size()) {
        smaller
    } else {
        T::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama_names(n_layer: usize, tied: bool) -> Vec<String> {
        let mut v = vec!["token_embd.weight".to_string()];
        for i in 0..n_layer {
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
                v.push(format!("blk.{i}.{t}.weight"));
            }
        }
        v.push("output_norm.weight".into());
        if !tied {
            v.push("output.weight".into());
        }
        v
    }

    fn plan(mix: Mix, n_layer: usize, tied: bool) -> Vec<(String, Option<GgmlType>)> {
        let names = llama_names(n_layer, tied);
        let mut p = MixPlanner::new(mix, names.iter().map(String::as_str), n_layer, 1, false);
        names
            .iter()
            .map(|n| {
                let dims = if n.contains("norm") { 1 } else { 2 };
                (n.clone(), p.choose(n, dims, 4096))
            })
            .collect()
    }

    fn ty(plan: &[(String, Option<GgmlType>)], name: &str) -> Option<GgmlType> {
        plan.iter().find(|(n, _)| n == name).and_then(|(_, t)| *t)
    }

    #[test]
    fn q4_k_m_raises_output_and_some_attn_v_and_ffn_down_layers() {
        // 32 layers: use_more_bits holds for layers 0-3, 28-31 and every third from 6.
        let p = plan(Mix::Q4_K_M, 32, false);
        assert_eq!(ty(&p, "output.weight"), Some(GgmlType::Q6_K));
        assert_eq!(ty(&p, "token_embd.weight"), Some(GgmlType::Q4_K));
        assert_eq!(ty(&p, "blk.0.attn_norm.weight"), None);
        for (i, more) in [
            (0, true),
            (3, true),
            (4, false),
            (6, true),
            (7, false),
            (28, true),
        ] {
            let want = if more { GgmlType::Q6_K } else { GgmlType::Q4_K };
            assert_eq!(ty(&p, &format!("blk.{i}.attn_v.weight")), Some(want), "{i}");
            assert_eq!(
                ty(&p, &format!("blk.{i}.ffn_down.weight")),
                Some(want),
                "{i}"
            );
        }
        assert_eq!(ty(&p, "blk.5.attn_q.weight"), Some(GgmlType::Q4_K));
    }

    #[test]
    fn tied_embeddings_take_the_output_type() {
        let p = plan(Mix::Q5_K_S, 4, true);
        assert_eq!(ty(&p, "token_embd.weight"), Some(GgmlType::Q6_K));
        assert_eq!(ty(&p, "blk.0.ffn_down.weight"), Some(GgmlType::Q5_K));
    }

    #[test]
    fn rows_that_do_not_fit_fall_back() {
        assert_eq!(fallback(GgmlType::Q4_K, 4096), GgmlType::Q4_K);
        assert_eq!(fallback(GgmlType::Q4_K, 672), GgmlType::Q5_0);
        assert_eq!(fallback(GgmlType::Q6_K, 320), GgmlType::Q8_0);
        assert_eq!(fallback(GgmlType::Q2_K, 100), GgmlType::F16);
        let names = ["output.weight"];
        let mut p = MixPlanner::new(Mix::Q4_K_M, names, 2, 1, false);
        assert_eq!(p.choose("output.weight", 2, 320), Some(GgmlType::Q8_0));
    }

    #[test]
    fn names_parse() {
        assert_eq!("q4_k_m".parse::<Mix>(), Ok(Mix::Q4_K_M));
        assert!("q4_k_x".parse::<Mix>().is_err());
    }
}

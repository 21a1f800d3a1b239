#!/usr/bin/env python3
"""A 1.1B-parameter checkpoint folder with TinyLlama's shape and random weights, for
benches/hf_to_gguf.sh: config.json (LlamaForCausalLM: hidden 2048, 22 layers, 32 heads, 4 KV
heads, intermediate 5632, vocabulary 32000), pytorch_model.bin (float32, torch.save of the state
dict, as transformers wrote it) and a SentencePiece tokenizer trained here.

    python benches/hf_to_gguf_gen.py OUT_FOLDER
"""
import random
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import LlamaConfig

H, I, L, V, KV = 2048, 5632, 22, 32000, 256


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    LlamaConfig(
        hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=32,
        num_key_value_heads=4, vocab_size=V, max_position_embeddings=2048, rms_norm_eps=1e-5,
        architectures=["LlamaForCausalLM"],
    ).save_pretrained(out)
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog model scan tensor safe hub".split()
    text = out / "text.txt"
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(3000)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(out / "tokenizer"),
                                   vocab_size=320, model_type="bpe", byte_fallback=True)
    text.unlink()
    (out / "tokenizer.vocab").unlink()
    g = torch.Generator().manual_seed(0)

    def t(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    sd = {"model.embed_tokens.weight": t(V, H)}
    for i in range(L):
        p = f"model.layers.{i}."
        sd[p + "self_attn.q_proj.weight"] = t(H, H)
        sd[p + "self_attn.k_proj.weight"] = t(KV, H)
        sd[p + "self_attn.v_proj.weight"] = t(KV, H)
        sd[p + "self_attn.o_proj.weight"] = t(H, H)
        sd[p + "mlp.gate_proj.weight"] = t(I, H)
        sd[p + "mlp.up_proj.weight"] = t(I, H)
        sd[p + "mlp.down_proj.weight"] = t(H, I)
        sd[p + "input_layernorm.weight"] = torch.ones(H)
        sd[p + "post_attention_layernorm.weight"] = torch.ones(H)
    sd["model.norm.weight"] = torch.ones(H)
    sd["lm_head.weight"] = t(V, H)
    torch.save(sd, out / "pytorch_model.bin")
    print(f"{sum(v.numel() for v in sd.values())} parameters in {out}")


if __name__ == "__main__":
    main()

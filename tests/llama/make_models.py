#!/usr/bin/env python3
"""Small random checkpoint folders, written by transformers' own save path, for check.py.

Each folder is a case: architecture, weight format (safetensors / pickle, sharded or not),
dtype, tokenizer (SentencePiece trained here with `sentencepiece`, or byte-level BPE trained here
with `tokenizers` using the model family's pre-tokenizer), tied or separate output, a chat
template, and shapes chosen so that some rows do not fit a 256-value K-quant block (the
fallbacks) and Llama 3's rope factors are generated. No download.

    python tests/llama/make_models.py OUT_FOLDER
"""
import json
import random
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (Gemma2Config, Gemma2ForCausalLM, GemmaConfig, GemmaForCausalLM,
                          GPT2Config, GPT2LMHeadModel, Phi3Config, Phi3ForCausalLM,
                          LlamaConfig, LlamaForCausalLM, LlamaTokenizer, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

WORDS = ("the quick brown fox jumps over lazy dog model scan tensor pickle safe hub llama token "
         "42 1234 ünïcödé 東京 🦙").split()
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
# Llama 2 chat's own template, as its tokenizer_config.json carries it.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")


def text(out: Path) -> list[str]:
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(3000)]
    (out / "text.txt").write_text("\n".join(lines))
    return lines


def train_spm(work: Path) -> None:
    """work/sp.model: a 400-piece SentencePiece BPE model with byte fallback, as Llama 2's."""
    spm.SentencePieceTrainer.train(input=str(work / "text.txt"), model_prefix=str(work / "sp"),
                                   vocab_size=400, model_type="bpe", byte_fallback=True,
                                   character_coverage=1.0)


def spm_tokenizer(folder: Path, work: Path) -> int:
    shutil.copy(work / "sp.model", folder / "tokenizer.model")
    tok = LlamaTokenizer(vocab_file=str(folder / "tokenizer.model"))
    tok.chat_template = TEMPLATE
    tok.save_pretrained(folder)
    return 400


def spm_files_only(folder: Path, work: Path, vocab: int, extra: dict | None = None) -> None:
    """A SentencePiece tokenizer as transformers 4 saved Llama 2 fine-tunes: tokenizer.model,
    tokenizer_config.json (with the chat template and added tokens inside), special_tokens_map.json
    and added_tokens.json; no tokenizer.json. Tokens added after the trained 400: a <pad> and two
    ChatML markers (special), and a run of "▁" (user-defined, not special); `vocab` is larger than
    all of them, so the converter pads the vocabulary with [PAD…] tokens."""
    shutil.copy(work / "sp.model", folder / "tokenizer.model")

    def token(content: str, special: bool = True) -> dict:
        return {"content": content, "lstrip": False, "normalized": not special, "rstrip": False,
                "single_word": False, "special": special}
    added = {"<pad>": 400, "<|im_start|>": 401, "<|im_end|>": 402, "\u2581\u2581\u2581\u2581": 403}
    added.update(extra or {})
    assert max(added.values()) < vocab
    decoder = {"0": token("<unk>"), "1": token("<s>"), "2": token("</s>")}
    decoder.update({str(i): token(t, special=not t.startswith("\u2581")) for t, i in added.items()})
    config = {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder,
        "bos_token": "<s>", "chat_template": LLAMA2_TEMPLATE, "clean_up_tokenization_spaces": False,
        "eos_token": "</s>", "legacy": False, "model_max_length": 4096, "pad_token": "<pad>",
        "padding_side": "right", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>", "use_default_system_prompt": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    specials = {k: token(config[k]) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    (folder / "added_tokens.json").write_text(json.dumps(added, indent=2, ensure_ascii=False))


def bpe_tokenizer(folder: Path, lines: list[str], split: str, specials: list[str], bos: str | None,
                  eos: str, size: int = 500) -> int:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, specials.index(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def gpt2_tokenizer(folder: Path, lines: list[str], size: int = 450) -> int:
    """Byte-level BPE with GPT-2's own pre-tokenizer (byte-level with its regex) and its single
    <|endoftext|> token, as openai-community/gpt2 ships it."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def save(model, folder: Path, pickle: bool, shards: int) -> None:
    if not pickle:
        if shards == 1:
            model.save_pretrained(folder)
        else:
            size = sum(p.numel() * p.element_size() for p in model.state_dict().values())
            model.save_pretrained(folder, max_shard_size=f"{size // shards // 1000 + 1}KB")
        return
    # transformers 5 writes safetensors only; pytorch_model*.bin as transformers 4 wrote them
    # (save_pretrained also records the model class in `architectures`).
    model.config.architectures = model.config.architectures or [type(model).__name__]
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    sd = {k: v for k, v in model.state_dict().items()
          if not (model.config.tie_word_embeddings and k == "lm_head.weight")}
    keys = list(sd)
    if shards == 1:
        torch.save(sd, folder / "pytorch_model.bin")
        return
    per = -(-len(keys) // shards)
    weight_map = {}
    for s in range(shards):
        name = f"pytorch_model-{s + 1:05d}-of-{shards:05d}.bin"
        part = keys[s * per:(s + 1) * per]
        torch.save({k: sd[k] for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2))


def transformers4_config(folder: Path, dtype: str, llama1: bool = False) -> None:
    """config.json as transformers 4 wrote it (most published checkpoints): rope_theta at the top
    and rope_scaling {"type", "factor"} instead of transformers 5's rope_parameters, torch_dtype
    instead of dtype, no head_dim. With llama1, as Llama 1's: no num_key_value_heads and no rope
    keys at all (the readers' defaults apply)."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    rope = config.pop("rope_parameters")
    config["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = {"type": rope.pop("rope_type"), **rope}
    config.pop("dtype", None)
    config["torch_dtype"] = dtype
    # Llama 2's config.json has no head_dim (transformers 4.45+ write it).
    config.pop("head_dim", None)
    config["transformers_version"] = "4.36.2"
    if llama1:
        for k in ("num_key_value_heads", "rope_theta", "rope_scaling", "pretraining_tp",
                  "attention_bias", "attention_dropout", "mlp_bias"):
            config.pop(k, None)
        config["transformers_version"] = "4.28.0.dev0"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def main() -> None:
    out = Path(sys.argv[1])
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    lines = text(work)
    train_spm(work)
    torch.manual_seed(0)
    cases = {
        # Llama 2 style: SentencePiece, safetensors, float32, separate output.
        "llama-spm-safetensors-f32": dict(arch="llama", tok="spm", pickle=False, shards=1,
                                          dtype=torch.float32, tied=False),
        # Llama 3 style: BPE, sharded pickles, bfloat16, tied output, llama3 rope factors, rows
        # of 688 values (not a multiple of 256 or 32: fallbacks).
        "llama3-bpe-bin-sharded-bf16": dict(arch="llama3", tok="bpe", pickle=True, shards=2,
                                            dtype=torch.bfloat16, tied=True),
        # Mistral style: SentencePiece, sharded safetensors, float16.
        "mistral-spm-sharded-f16": dict(arch="mistral", tok="spm", pickle=False, shards=3,
                                        dtype=torch.float16, tied=False),
        # Llama 2 fine-tune as transformers 4 saved it: SentencePiece files only (no
        # tokenizer.json), added tokens, a vocabulary padded past the tokenizer (448 > 404),
        # one unsharded pytorch_model.bin, float32, all heads with their own K/V (no GQA),
        # linear rope scaling.
        "llama2-spm-only-bin-padded": dict(arch="llama2", tok="spm-files", pickle=True, shards=1,
                                           dtype=torch.float32, tied=False),
        # Llama 1 (and its fine-tunes) as published: config.json without num_key_value_heads or
        # any rope key, float16 pickle, the same SentencePiece files.
        "llama1-spm-only-bin-f16": dict(arch="llama1", tok="spm-files", pickle=True, shards=1,
                                        dtype=torch.float16, tied=False),
        # Rows of 320 and 864 values: multiples of 32, not of 256, so every K-quant of the mixes
        # falls back to a 32-value block type (Q4_0, Q5_0, Q5_1, Q8_0); head size 80; 9 layers, so
        # the mixes' every-third-layer rule for attn_v/ffn_down is exercised on both sides;
        # byte-level BPE with a vocabulary padded past the tokenizer; GQA 2.
        "llama-h320-bpe-padded-sharded-f32": dict(arch="llama-h320", tok="bpe-padded", pickle=False,
                                                  shards=4, dtype=torch.float32, tied=False),
        "qwen2-bpe-tied": dict(arch="qwen2", tok="qwen2", pickle=False, shards=1,
                               dtype=torch.bfloat16, tied=True),
        "qwen3-bpe-bin": dict(arch="qwen3", tok="qwen2", pickle=True, shards=1,
                              dtype=torch.float32, tied=False),
        # Gemma: SentencePiece, bfloat16 safetensors (the norm weights' +1 is rounded to
        # bfloat16 on both sides), multi-query attention, head size 32 (not hidden/heads).
        "gemma-spm-bf16": dict(arch="gemma", tok="spm", pickle=False, shards=1,
                               dtype=torch.bfloat16, tied=True),
        # Gemma 2: float16 sharded pickles, soft-capping, a sliding window, the extra norms.
        "gemma2-spm-bin-sharded-f16": dict(arch="gemma2", tok="spm", pickle=True, shards=2,
                                           dtype=torch.float16, tied=True),
        # GPT-2: learned positions, biases, fused QKV in Conv1D (transposed by the converter),
        # GPT-2's byte-level BPE, float32 pickle as the original checkpoints.
        "gpt2-bpe-bin-f32": dict(arch="gpt2", tok="gpt2", pickle=True, shards=1,
                                 dtype=torch.float32, tied=True),
        "gpt2-bpe-safetensors-f16": dict(arch="gpt2", tok="gpt2", pickle=False, shards=1,
                                         dtype=torch.float16, tied=True),
        # Phi 3 mini: fused qkv_proj and gate_up_proj, SentencePiece with added tokens (ChatML
        # markers, a pad) over a padded vocabulary, bfloat16 safetensors, grouped KV heads.
        "phi3-spm-safetensors-bf16": dict(arch="phi3", tok="spm-files", pickle=False, shards=1,
                                          dtype=torch.bfloat16, tied=False),
        # Phi 3 128k: longrope scaling with long and short rope factors, float32 pickle.
        "phi3-longrope-spm-bin-f32": dict(arch="phi3-longrope", tok="spm-files", pickle=True,
                                          shards=1, dtype=torch.float32, tied=False),
    }
    for name, c in cases.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if c["tok"] == "spm":
            vocab = spm_tokenizer(folder, work)
        elif c["tok"] == "spm-files":  # the same padded vocabulary for Llama 1 and 2
            vocab = 448
            # Phi 3's vocabulary has its end-of-text and end-of-turn markers (llama.cpp's loader
            # looks <|endoftext|> up for models named Phi 3).
            extra = {"<|endoftext|>": 404, "<|end|>": 405} if c["arch"].startswith("phi3") else None
            spm_files_only(folder, work, vocab, extra)
        elif c["tok"] == "bpe-padded":
            size = bpe_tokenizer(folder, lines, LLAMA3,
                                 ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                                 "<|begin_of_text|>", "<|eot_id|>", size=300)
            vocab = -(-size // 64) * 64 + 64
        elif c["tok"] == "gpt2":
            vocab = gpt2_tokenizer(folder, lines)
        elif c["tok"] == "bpe":
            vocab = bpe_tokenizer(folder, lines, LLAMA3,
                                  ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                                  "<|begin_of_text|>", "<|eot_id|>")
        else:
            vocab = bpe_tokenizer(folder, lines, QWEN2, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  None, "<|im_end|>")
        common = dict(hidden_size=256, num_hidden_layers=3, num_attention_heads=8,
                      num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=512,
                      tie_word_embeddings=c["tied"])
        if c["arch"] == "llama":
            model = LlamaForCausalLM(LlamaConfig(intermediate_size=512, **common))
        elif c["arch"] == "llama3":
            model = LlamaForCausalLM(LlamaConfig(
                intermediate_size=688, rope_theta=500000.0, bos_token_id=0, eos_token_id=2,
                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                **common))
        elif c["arch"] == "llama2":
            model = LlamaForCausalLM(LlamaConfig(
                intermediate_size=512, **dict(common, num_attention_heads=4, num_key_value_heads=4,
                                              num_hidden_layers=2),
                rope_scaling={"rope_type": "linear", "factor": 2.0}, pad_token_id=400))
        elif c["arch"] == "llama1":
            model = LlamaForCausalLM(LlamaConfig(
                intermediate_size=512, **dict(common, num_attention_heads=4, num_key_value_heads=4,
                                              num_hidden_layers=2), pad_token_id=0))
        elif c["arch"] == "llama-h320":
            model = LlamaForCausalLM(LlamaConfig(
                intermediate_size=864, **dict(common, hidden_size=320, num_attention_heads=4,
                                              num_key_value_heads=2, num_hidden_layers=9),
                rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=2))
        elif c["arch"] == "mistral":
            cfg = LlamaConfig(intermediate_size=512, **common)
            cfg.architectures = ["MistralForCausalLM"]
            model = LlamaForCausalLM(cfg)
        elif c["arch"] == "qwen2":
            model = Qwen2ForCausalLM(Qwen2Config(intermediate_size=512, eos_token_id=2, **common))
        elif c["arch"] == "gpt2":
            model = GPT2LMHeadModel(GPT2Config(
                n_embd=256, n_layer=3, n_head=8, n_positions=128, n_ctx=128, vocab_size=vocab,
                bos_token_id=0, eos_token_id=0))
        elif c["arch"].startswith("phi3"):
            rope = {}
            if c["arch"] == "phi3-longrope":
                # rope dimensions 256 / 8 = 32: 16 factors each.
                rope = dict(max_position_embeddings=1024, original_max_position_embeddings=256,
                            rope_scaling={"type": "longrope",
                                          "long_factor": [1.0 + i / 8 for i in range(16)],
                                          "short_factor": [1.0 + i / 32 for i in range(16)]})
            model = Phi3ForCausalLM(Phi3Config(
                intermediate_size=512, pad_token_id=400,
                **dict(common, num_key_value_heads=4, **rope)))
        elif c["arch"] == "gemma":
            model = GemmaForCausalLM(GemmaConfig(
                intermediate_size=512, head_dim=32, **dict(common, num_key_value_heads=1)))
        elif c["arch"] == "gemma2":
            model = Gemma2ForCausalLM(Gemma2Config(
                intermediate_size=512, head_dim=32, sliding_window=16, query_pre_attn_scalar=32,
                **dict(common, num_hidden_layers=4)))
        else:
            model = Qwen3ForCausalLM(Qwen3Config(intermediate_size=512, head_dim=32, **common))
        if c["arch"].startswith("gemma"):
            # Gemma initialises its norm weights to zero (the norm multiplies by 1 + w): random
            # ones make the +1 of the conversion and its rounding visible.
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n.endswith("norm.weight"):
                        p.normal_(0.0, 0.5)
        model = model.to(c["dtype"])
        if c["arch"] == "mistral":
            model.config.architectures = ["MistralForCausalLM"]
        save(model, folder, c["pickle"], c["shards"])
        if c["arch"] in ("llama1", "llama2"):
            transformers4_config(folder, str(c["dtype"]).removeprefix("torch."),
                                 llama1=c["arch"] == "llama1")
        print(name, sorted(p.name for p in folder.iterdir()))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

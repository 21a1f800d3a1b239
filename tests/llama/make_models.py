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
from transformers import (LlamaConfig, LlamaForCausalLM, LlamaTokenizer, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

WORDS = ("the quick brown fox jumps over lazy dog model scan tensor pickle safe hub llama token "
         "42 1234 ünïcödé 東京 🦙").split()
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"


def text(out: Path) -> list[str]:
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(3000)]
    (out / "text.txt").write_text("\n".join(lines))
    return lines


def spm_tokenizer(folder: Path, work: Path) -> int:
    spm.SentencePieceTrainer.train(input=str(work / "text.txt"), model_prefix=str(work / "sp"),
                                   vocab_size=400, model_type="bpe", byte_fallback=True,
                                   character_coverage=1.0)
    shutil.copy(work / "sp.model", folder / "tokenizer.model")
    tok = LlamaTokenizer(vocab_file=str(folder / "tokenizer.model"))
    tok.chat_template = TEMPLATE
    tok.save_pretrained(folder)
    return 400


def bpe_tokenizer(folder: Path, lines: list[str], split: str, specials: list[str], bos: str | None,
                  eos: str) -> int:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, specials.index(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    return tok.get_vocab_size()


def save(model, folder: Path, pickle: bool, shards: int) -> None:
    if not pickle:
        if shards == 1:
            model.save_pretrained(folder)
        else:
            model.save_pretrained(folder, max_shard_size="400KB")
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


def main() -> None:
    out = Path(sys.argv[1])
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    lines = text(work)
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
        "qwen2-bpe-tied": dict(arch="qwen2", tok="qwen2", pickle=False, shards=1,
                               dtype=torch.bfloat16, tied=True),
        "qwen3-bpe-bin": dict(arch="qwen3", tok="qwen2", pickle=True, shards=1,
                              dtype=torch.float32, tied=False),
    }
    for name, c in cases.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if c["tok"] == "spm":
            vocab = spm_tokenizer(folder, work)
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
        elif c["arch"] == "mistral":
            cfg = LlamaConfig(intermediate_size=512, **common)
            cfg.architectures = ["MistralForCausalLM"]
            model = LlamaForCausalLM(cfg)
        elif c["arch"] == "qwen2":
            model = Qwen2ForCausalLM(Qwen2Config(intermediate_size=512, eos_token_id=2, **common))
        else:
            model = Qwen3ForCausalLM(Qwen3Config(intermediate_size=512, head_dim=32, **common))
        model = model.to(c["dtype"])
        if c["arch"] == "mistral":
            model.config.architectures = ["MistralForCausalLM"]
        save(model, folder, c["pickle"], c["shards"])
        print(name, sorted(p.name for p in folder.iterdir()))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

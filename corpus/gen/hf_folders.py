#!/usr/bin/env python3
"""Hugging Face model folders and the GGUF llama.cpp's own tools make of them.

Writes corpus/hf-folders/tiny-llama-spm/ (a random Llama of one layer saved by transformers'
save_pretrained, bfloat16, with a SentencePiece tokenizer trained here and a chat template),
tiny-gemma2-spm/ (Gemma 2, bfloat16, random norm weights), tiny-phi3-longrope-spm/ (Phi 3 with
longrope factors, float32) and tiny-gpt2-bpe/ (GPT-2 with its byte-level BPE, float16), and, in
corpus/hf-folders/reference/, what convert_hf_to_gguf.py writes for each (--outtype f16) and what
llama-quantize makes of its --outtype f32 output (Q4_K_M). The BPE pre-tokenizer name is given
to the converter (tests/llama/convert_forced_pre.py): a tokenizer trained here has no published
hash. The Rust tests convert the
same folder and compare metadata and tensor data with these files, without Python.

    python corpus/gen/hf_folders.py --llama-cpp PATH/TO/llama.cpp

PATH/TO/llama.cpp: llama.cpp's sources (the llama-cpp-python sdist's vendor/llama.cpp); the
llama_cpp package (llama-cpp-python built from the same sdist) must be importable for
llama_model_quantize. Needs torch, transformers, sentencepiece.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "corpus" / "hf-folders"
WORDS = "the quick brown fox jumps over lazy dog model scan tensor pickle safe hub llama token".split()


def training_text(path: Path) -> None:
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(3000):
            f.write(" ".join(rng.choice(WORDS) for _ in range(12)) + "\n")


def make_folder(folder: Path, work: Path) -> None:
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    training_text(work / "text.txt")
    spm.SentencePieceTrainer.train(
        input=str(work / "text.txt"), model_prefix=str(work / "sp"), vocab_size=320,
        model_type="bpe", byte_fallback=True, character_coverage=1.0,
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=256, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=320, max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    shutil.copy(work / "sp.model", folder / "tokenizer.model")
    tok = LlamaTokenizer(vocab_file=str(folder / "tokenizer.model"))
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    tok.save_pretrained(folder)


def spm_files(folder: Path, work: Path) -> None:
    from transformers import LlamaTokenizer

    shutil.copy(work / "sp.model", folder / "tokenizer.model")
    tok = LlamaTokenizer(vocab_file=str(folder / "tokenizer.model"))
    tok.save_pretrained(folder)


def random_norms(model) -> None:
    import torch

    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.normal_(0.0, 0.5)


def make_gemma2(folder: Path, work: Path) -> None:
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(1)
    model = Gemma2ForCausalLM(Gemma2Config(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, vocab_size=320, max_position_embeddings=128,
        sliding_window=16, query_pre_attn_scalar=32))
    random_norms(model)
    shutil.rmtree(folder, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(folder)
    spm_files(folder, work)


def make_phi3(folder: Path, work: Path) -> None:
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    torch.manual_seed(2)
    model = Phi3ForCausalLM(Phi3Config(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, vocab_size=320, max_position_embeddings=512,
        original_max_position_embeddings=128, pad_token_id=0,
        rope_scaling={"type": "longrope", "long_factor": [1.0 + i / 8 for i in range(16)],
                      "short_factor": [1.0 + i / 32 for i in range(16)]}))
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    spm_files(folder, work)


def make_gpt2(folder: Path, work: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train([str(work / "text.txt")], trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(3)
    model = GPT2LMHeadModel(GPT2Config(
        n_embd=64, n_layer=2, n_head=2, n_positions=64, n_ctx=64,
        vocab_size=tok.get_vocab_size(), bos_token_id=0, eos_token_id=0))
    shutil.rmtree(folder, ignore_errors=True)
    model.to(torch.float16).save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                            eos_token="<|endoftext|>").save_pretrained(folder)


def references(folder: Path, out: Path, llama_cpp_src: Path, work: Path, pre: str = "") -> None:
    import llama_cpp

    env = dict(os.environ, PYTHONPATH=str(llama_cpp_src / "gguf-py"), PRE=pre)
    forced = Path(__file__).resolve().parents[2] / "tests" / "llama" / "convert_forced_pre.py"
    convert = [sys.executable, str(forced), str(llama_cpp_src), str(folder)]
    out.mkdir(parents=True, exist_ok=True)
    name = folder.name
    subprocess.run(convert + ["--outtype", "f16", "--outfile", str(out / f"{name}.F16.gguf")],
                   env=env, check=True, capture_output=True)
    f32 = work / f"{name}.F32.gguf"
    subprocess.run(convert + ["--outtype", "f32", "--outfile", str(f32)],
                   env=env, check=True, capture_output=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    rc = llama_cpp.llama_model_quantize(str(f32).encode(), str(out / f"{name}.Q4_K_M.gguf").encode(), params)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed: {rc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp's source folder")
    args = ap.parse_args()
    work = ROOT / ".work"
    work.mkdir(parents=True, exist_ok=True)
    try:
        folder = ROOT / "tiny-llama-spm"
        make_folder(folder, work)
        references(folder, ROOT / "reference", args.llama_cpp, work)
        for name, make, pre in [("tiny-gemma2-spm", make_gemma2, ""),
                                ("tiny-phi3-longrope-spm", make_phi3, ""),
                                ("tiny-gpt2-bpe", make_gpt2, "gpt-2")]:
            make(ROOT / name, work)
            references(ROOT / name, ROOT / "reference", args.llama_cpp, work, pre)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

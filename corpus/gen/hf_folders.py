#!/usr/bin/env python3
"""Hugging Face model folders and the GGUF llama.cpp's own tools make of them.

Writes corpus/hf-folders/tiny-llama-spm/ (a random Llama of one layer saved by transformers'
save_pretrained, bfloat16, with a SentencePiece tokenizer trained here and a chat template)
and, in corpus/hf-folders/reference/, what convert_hf_to_gguf.py writes for it (--outtype f16)
and what llama-quantize makes of its --outtype f32 output (Q4_K_M). The Rust tests convert the
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


def references(folder: Path, out: Path, llama_cpp_src: Path, work: Path) -> None:
    import llama_cpp

    env = dict(os.environ, PYTHONPATH=str(llama_cpp_src / "gguf-py"))
    convert = [sys.executable, str(llama_cpp_src / "convert_hf_to_gguf.py"), str(folder)]
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
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

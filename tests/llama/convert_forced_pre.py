#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py with the BPE pre-tokenizer name given in $PRE.

The converter names a BPE pre-tokenizer by hashing what the Python tokenizer makes of a test
text, and refuses hashes it does not know: those of published vocabularies. The test models'
tokenizers are trained here, so their hash is unknown; the name they are built to match
(llama-bpe, qwen2) is given instead. Everything else is the converter's own code.

    PRE=llama-bpe python tests/llama/convert_forced_pre.py LLAMA_CPP_SRC MODEL --outtype f16 --outfile OUT
"""
import os
import runpy
import sys

src = sys.argv[1]
sys.path.insert(0, src)
sys.path.insert(0, os.path.join(src, "gguf-py"))
import conversion.base as base  # noqa: E402  (llama.cpp's converter package)

pre = os.environ.get("PRE")
if pre:
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
runpy.run_path(os.path.join(src, "convert_hf_to_gguf.py"), run_name="__main__")

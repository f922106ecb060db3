#!/usr/bin/python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/<harness>/), small files in the real formats
made by the tests' independent Python writers (tests/reference/) and torch.save, each prefixed
with the harness's selector byte (see each fuzz_*.cpp). Run once with Debian's python3 (torch);
the output is committed, so the fuzzers need no Python.

    /usr/bin/python3 fuzz/make_seeds.py
"""
import base64
import io
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

import torch  # noqa: E402
from gguf_file import ARRAY, F32, I32, STRING, U32, GgufWriter  # noqa: E402
from llama_reference import LlamaConfig  # noqa: E402
from model_files import (hf_config, meta_params, random_weights, write_gguf,  # noqa: E402
                         write_safetensors)

CORPUS = os.path.join(HERE, "corpus")
TMP = "/tmp/llama3-fuzz-seeds"


def put(harness: str, name: str, selector: int, data: bytes) -> None:
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(bytes([selector]) + data if selector is not None else data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def main() -> None:
    os.makedirs(TMP, exist_ok=True)
    cfg = LlamaConfig(dim=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=64, ffn_dim=64,
                      rope_scaling_factor=8.0)
    weights = random_weights(cfg, 1)
    small = {k: v for k, v in list(weights.items())[:3]}

    # safetensors: files in three dtypes with metadata, an empty one; an index.
    for dtype in ("bf16", "f16", "f32"):
        path = os.path.join(TMP, f"{dtype}.safetensors")
        write_safetensors(path, small, dtype)
        put("safetensors", f"file_{dtype}", 0, read(path))
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    put("safetensors", "file_empty", 0, struct.pack("<Q", len(header)) + header)
    index = {"metadata": {"total_size": 8}, "weight_map": {"x": "a.safetensors"}}
    put("safetensors", "index", 1, json.dumps(index).encode())

    # pth: a state dict with a tied view and a slice, as a file, as its zip, and its data.pkl.
    state = {"tok_embeddings.weight": small[next(iter(small))].to(torch.bfloat16)}
    state["output.weight"] = state["tok_embeddings.weight"]
    state["norm.weight"] = torch.ones(8, dtype=torch.float32)[2:6]
    state["layers.0.attention.wq.weight"] = torch.zeros(4, 4, dtype=torch.float16)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    pth = buffer.getvalue()
    put("pth", "consolidated", 0, pth)
    put("pth", "zip", 1, pth)
    import zipfile
    with zipfile.ZipFile(io.BytesIO(pth)) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        put("pth", "data_pkl", 2, z.read(pkl))

    # GGUF: a model as llama.cpp's converter writes it, plus a small byte-level vocabulary.
    path = os.path.join(TMP, "model.gguf")
    write_gguf(path, cfg, weights, "q8_0")
    put("gguf", "model_q8_0", None, read(path))
    vocab = GgufWriter()
    byte_tokens = [bytes_to_unicode_char(b) for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "e r"]
    tokens = byte_tokens + ["Ġt", "he", "Ġthe", "in", "er", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    vocab.add("general.architecture", STRING, "llama")
    vocab.add("tokenizer.ggml.model", STRING, "gpt2")
    vocab.add("tokenizer.ggml.pre", STRING, "llama-bpe")
    vocab.add("tokenizer.ggml.tokens", ARRAY, (STRING, tokens))
    vocab.add("tokenizer.ggml.token_type", ARRAY, (I32, [1] * (len(tokens) - 3) + [3, 3, 3]))
    vocab.add("tokenizer.ggml.merges", ARRAY, (STRING, merges))
    vocab.add("tokenizer.ggml.bos_token_id", U32, len(tokens) - 3)
    vocab.add("tokenizer.ggml.eos_token_id", U32, len(tokens) - 1)
    vocab.add("tokenizer.chat_template", STRING, "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    vocab.add_tensor("x", "F32", (2,), struct.pack("<2f", 1.0, 2.0))
    path = os.path.join(TMP, "vocab.gguf")
    vocab.write(path)
    put("gguf", "vocabulary", None, read(path))

    # Tokenizer files: a small tokenizer.json with Llama 3's pre-tokenizer (from the real file),
    # with and without a tokenizer_config.json; the first lines of a tokenizer.model.
    real = json.load(open(os.path.join(ROOT, ".cache", "tokenizer", "tokenizer.json")))
    tok = {k: real[k] for k in ("version", "truncation", "padding", "normalizer", "pre_tokenizer",
                                "post_processor", "decoder")}
    tok["model"] = dict(real["model"], vocab={t: i for i, t in enumerate(tokens[:-3])}, merges=merges)
    tok["added_tokens"] = [dict(real["added_tokens"][0], id=len(tokens) - 3 + i, content=name)
                           for i, name in enumerate(tokens[-3:])]
    tok_json = json.dumps(tok).encode()
    put("tokenizer_files", "tokenizer_json", 0, tok_json)
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": "{{ bos_token }}"}
    put("tokenizer_files", "tokenizer_json_config", 0, tok_json + b"\xff" + json.dumps(config).encode())
    lines = [base64.b64encode(bytes([b])).decode() + f" {b}" for b in range(256)]
    put("tokenizer_files", "tokenizer_model_head", 1, ("\n".join(lines) + "\n").encode())

    # JSON inputs.
    prompts = [{"prompt": "What is the capital of France?"},
               {"prompt": "Summarize:", "context": "context.txt", "max_length": 100}]
    put("json_inputs", "prompt_file", 0, json.dumps(prompts).encode())
    put("json_inputs", "sampling", 1, b'{"temperature": 0.6, "top_p": 0.9, "top_k": 32, "seed": 42}')
    put("json_inputs", "page_params", 2, b'{"page_block_size": 32, "page_max_num_blocks": 1024}')
    put("json_inputs", "precision", 3, b'{"ff1_3": "q4", "ff2": "q8", "wqkv": "bf16", "kv_cache": "q8"}')
    put("json_inputs", "params_json", 4, json.dumps(meta_params(cfg)).encode())
    put("json_inputs", "config_json", 5, json.dumps(hf_config(cfg, "bf16")).encode())

    # Server bodies.
    chat = {"model": "llama3", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 1, "stream": True,
            "stream_options": {"include_usage": True}, "stop": ["\n\n"], "logprobs": True, "top_logprobs": 2}
    put("server_request", "chat", 0, json.dumps(chat).encode())
    put("server_request", "completion_text", 1, json.dumps({"prompt": "Once upon a time", "max_tokens": 8}).encode())
    put("server_request", "completion_tokens", 1, json.dumps({"prompt": [128000, 791, 6460], "n": 1}).encode())

    image_seeds()


def image_seeds() -> None:
    """Images (no selector byte): a palette PNG with transparency, an interlaced 16-bit RGBA PNG
    and a progressive JPEG, all tiny, made by Pillow and the tests' PNG writer."""
    import numpy as np
    from PIL import Image
    from mllama_image import pattern, write_png
    rgb = pattern(13, 7, 0)
    buffer = io.BytesIO()
    Image.fromarray(rgb).quantize(8).save(buffer, "PNG", transparency=1)
    put("image", "palette_png", None, buffer.getvalue())
    path = os.path.join(TMP, "rgba16.png")
    write_png(path, np.concatenate([rgb, rgb[:, :, :1]], 2).astype(np.uint16) * 257, 16, 6, interlace=True)
    put("image", "rgba16_interlaced_png", None, read(path))
    buffer = io.BytesIO()
    Image.fromarray(pattern(17, 9, 1)).save(buffer, "JPEG", quality=50, progressive=True)
    put("image", "progressive_jpeg", None, buffer.getvalue())


def bytes_to_unicode_char(b: int) -> str:
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest are shifted."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    if b in printable:
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if x not in printable))


if __name__ == "__main__":
    main()

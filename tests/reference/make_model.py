#!/usr/bin/python3
"""Makes a random Llama 3 model in Meta, Hugging Face and GGUF layouts plus the float64 reference's
answers for some prompts, for the engine's end-to-end tests.

    /usr/bin/python3 make_model.py --config '{"dim":256,"n_layers":2,"n_heads":4,
        "n_kv_heads":2,"vocab_size":512,"ffn_dim":768,"rope_scaling_factor":8,"tied":true}'
        --seed 1 --out DIR --prompt 1,2,3 --prompt random:300:7 --greedy 8

A prompt may end in @last (store only its last position's logits), @greedy=N, @kvbf16 (add
"kv_bf16": {the same fields} for keys and values rounded to bf16, as a bf16 KV cache does),
@actq8 (add "act_q8": {the same fields} for every matrix product's input rounded to int8 blocks,
as the engine's products with 8- and 4-bit weights do) or @bf16w (add "bf16_weights": {the same
fields} for the matrices rounded to bf16, as --optimizations bf16 runs a quantized file: every
matrix but an untied embedding table, which stays as stored).
This writes DIR/meta/ (params.json, consolidated.NN.pth), DIR/hf/ (config.json, *.safetensors) and
DIR/expected.json:
    {"config": {...}, "seed": S,
     "prompts": [{"tokens": [...],
                  "logits": [[...] per position]      (left out with --last-logits-only),
                  "last_logits": [...],
                  "top1": [...], "margins": [...]     (argmax and top1 - top2 at every position),
                  "greedy": [...], "greedy_margins": [...]}]}
Greedy tokens are computed by recomputing the whole sequence at every step (no cache).

More folders of the same weights: --variant meta:NAME:shards=2,rope_factor_key=false,
--variant hf:NAME:shards=3,dtype=f16,permute=false (permute=false is the negative control: q/k
rows left in Meta's order; rope_factor_key=false leaves a non-8 factor out of params.json, as
Meta's Llama 3.2 1B/3B files do) and --variant gguf:NAME:dtype=q8_0,undo_permute=false (a folder
NAME holding model.gguf, made as llama.cpp's converter makes it from the HF folder; dtype bf16,
f16, f32, q8_0 or q4_0; undo_permute=false is the negative control: q/k rows left in HF's order).
--quantized q8_0|q4_0: the reference computes with the matrices as a GGUF of that type holds them
(dequantized); only gguf variants of that type are written then.

Config keys: dim, n_layers, n_heads, n_kv_heads, vocab_size, ffn_dim, norm_eps, rope_theta,
rope_scaling_factor (a number, or null for Llama 3.0), tied, and optionally multiple_of /
ffn_dim_multiplier (written to params.json; found automatically otherwise).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from llama_reference import LlamaConfig, LlamaReference, top1_and_margin  # noqa: E402
from model_files import (GGUF_TYPES, gguf_held_weights, random_tokens, random_weights,  # noqa: E402
                         write_gguf, write_hf, write_meta)


def parse_config(text: str) -> LlamaConfig:
    if os.path.isfile(text):
        with open(text) as f:
            text = f.read()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--config is neither a file nor valid JSON: {e}")
    return LlamaConfig.from_dict(d)


def parse_prompt(spec: str, vocab_size: int, greedy: int, last_only: bool) -> dict:
    """1,2,3 or random:LENGTH:SEED, optionally followed by @last (store only the last
    position's logits), @greedy=N (greedy tokens for this prompt) and @kvbf16 (also the answers
    of a model whose keys and values are rounded to bf16, as with a bf16 KV cache)."""
    body, *mods = spec.split("@")
    prompt = {"greedy": greedy, "last_only": last_only, "kv_bf16": False, "act_q8": False,
              "bf16_weights": False}
    for mod in mods:
        if mod == "last":
            prompt["last_only"] = True
        elif mod == "kvbf16":
            prompt["kv_bf16"] = True
        elif mod == "actq8":
            prompt["act_q8"] = True
        elif mod == "bf16w":
            prompt["bf16_weights"] = True
        elif mod.startswith("greedy="):
            prompt["greedy"] = int(mod[len("greedy="):])
        else:
            raise SystemExit(f"bad prompt option {mod!r} in {spec!r}: use @last, @kvbf16, "
                             "@actq8, @bf16w or @greedy=N")
    if body.startswith("random:"):
        parts = body.split(":")
        if len(parts) != 3:
            raise SystemExit(f"bad prompt spec {spec!r}: use random:LENGTH:SEED")
        prompt["tokens"] = random_tokens(int(parts[1]), int(parts[2]), vocab_size)
    else:
        prompt["tokens"] = [int(t) for t in body.split(",") if t.strip()]
    if not prompt["tokens"]:
        raise SystemExit(f"empty prompt {spec!r}")
    return prompt


def parse_variant(spec: str) -> dict:
    """meta:NAME[:k=v,...], hf:NAME[:k=v,...] or gguf:NAME[:k=v,...]."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("meta", "hf", "gguf") or not parts[1]:
        raise SystemExit(f"bad variant {spec!r}: use meta:NAME[:shards=N,rope_factor_key=B], "
                         "hf:NAME[:shards=N,dtype=bf16|f16|f32,permute=true|false] or "
                         "gguf:NAME[:dtype=bf16|f16|f32|q8_0|q4_0,undo_permute=true|false]")
    v = {"kind": parts[0], "name": parts[1], "shards": 1, "dtype": "bf16", "permute": True,
         "rope_factor_key": True, "undo_permute": True}
    truth = lambda value: value.lower() in ("1", "true", "yes")  # noqa: E731
    if len(parts) == 3:
        for item in parts[2].split(","):
            key, _, value = item.partition("=")
            if key == "shards" and v["kind"] != "gguf":
                v["shards"] = int(value)
            elif key == "dtype" and v["kind"] in ("hf", "gguf"):
                if v["kind"] == "gguf" and value not in GGUF_TYPES:
                    raise SystemExit(f"bad GGUF dtype {value!r} in {spec!r}: use one of "
                                     f"{', '.join(GGUF_TYPES)}")
                v["dtype"] = value
            elif key == "permute" and v["kind"] == "hf":
                v["permute"] = truth(value)
            elif key == "undo_permute" and v["kind"] == "gguf":
                v["undo_permute"] = truth(value)
            elif key == "rope_factor_key" and v["kind"] == "meta":
                v["rope_factor_key"] = truth(value)
            else:
                raise SystemExit(f"bad variant option {item!r} in {spec!r}")
    return v


def expected_for(ref: LlamaReference, tokens: list, greedy: int, last_only: bool) -> dict:
    logits = ref.forward(tokens)
    top = [top1_and_margin(row) for row in logits]
    entry = {"tokens": tokens}
    if not last_only:
        entry["logits"] = logits.tolist()
    entry["last_logits"] = logits[-1].tolist()
    entry["top1"] = [t for t, _ in top]
    entry["margins"] = [m for _, m in top]
    steps = ref.greedy(tokens, greedy, logits[-1])
    entry["greedy"] = [s["token"] for s in steps]
    entry["greedy_margins"] = [s["margin"] for s in steps]
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="model config: JSON text or a JSON file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--prompt", action="append", default=[],
                    help="token ids 1,2,3 or random:LENGTH:SEED, then optionally @last and "
                         "@greedy=N (repeatable)")
    ap.add_argument("--greedy", type=int, default=8, help="greedy tokens to generate per prompt")
    ap.add_argument("--last-logits-only", action="store_true",
                    help="store only the last position's logits (top1/margins stay per position)")
    ap.add_argument("--meta-shards", type=int, default=1, help="shards of OUT/meta")
    ap.add_argument("--hf-shards", type=int, default=1, help="safetensors files of OUT/hf")
    ap.add_argument("--hf-dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--no-meta", action="store_true", help="skip OUT/meta")
    ap.add_argument("--no-hf", action="store_true", help="skip OUT/hf")
    ap.add_argument("--variant", action="append", default=[],
                    help="extra folder: meta:NAME[:shards=N,rope_factor_key=B], "
                         "hf:NAME[:shards=N,dtype=D,permute=B] or "
                         "gguf:NAME[:dtype=D,undo_permute=B] (repeatable)")
    ap.add_argument("--quantized", choices=["q8_0", "q4_0"], default=None,
                    help="the reference uses the matrices as a GGUF of this type holds them")
    ap.add_argument("--reference-layers", type=int, default=None,
                    help="expected.json for only the first N layers of the model written (what "
                         "the engine's --layers N runs); the files keep every layer")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    start = time.time()
    cfg = parse_config(args.config)
    prompts = [parse_prompt(p, cfg.vocab_size, args.greedy, args.last_logits_only)
               for p in args.prompt]
    variants = [parse_variant(v) for v in args.variant]
    if not args.no_meta:
        variants.insert(0, {"kind": "meta", "name": "meta", "shards": args.meta_shards,
                            "rope_factor_key": True})
    if not args.no_hf:
        hf = {"kind": "hf", "name": "hf", "shards": args.hf_shards, "dtype": args.hf_dtype,
              "permute": True}
        variants.insert(int(not args.no_meta), hf)

    if args.quantized:
        for v in variants:
            if v["kind"] != "gguf" or v["dtype"] != args.quantized:
                raise SystemExit(f"--quantized {args.quantized}: variant {v['name']} would not hold "
                                 "the weights the reference uses (add --no-meta --no-hf; gguf "
                                 f"variants with dtype={args.quantized} only)")

    weights = random_weights(cfg, args.seed)
    os.makedirs(args.out, exist_ok=True)
    for v in variants:
        folder = os.path.join(args.out, v["name"])
        if v["kind"] == "meta":
            write_meta(folder, cfg, weights, v["shards"], v["rope_factor_key"])
        elif v["kind"] == "hf":
            write_hf(folder, cfg, weights, v["dtype"], v["shards"], v["permute"])
        else:
            os.makedirs(folder, exist_ok=True)
            write_gguf(os.path.join(folder, "model.gguf"), cfg, weights, v["dtype"],
                       v["undo_permute"])
    if args.quantized:
        weights = gguf_held_weights(cfg, weights, args.quantized)

    ref_cfg = cfg
    if args.reference_layers is not None:
        if not 0 < args.reference_layers <= cfg.n_layers:
            raise SystemExit(f"--reference-layers {args.reference_layers} is outside "
                             f"1..{cfg.n_layers}")
        ref_cfg = dataclasses.replace(cfg, n_layers=args.reference_layers)
    ref = LlamaReference(ref_cfg, weights)
    ref_kv_bf16 = LlamaReference(ref_cfg, weights, kv_round=torch.bfloat16)
    ref_act_q8 = LlamaReference(ref_cfg, weights, act_quant=True)
    bf16_weights = {name: t.to(torch.bfloat16) if t.dim() == 2 and
                    (cfg.tied or name != "tok_embeddings.weight") else t
                    for name, t in weights.items()}
    ref_bf16_weights = LlamaReference(ref_cfg, bf16_weights)
    entries = []
    for p in prompts:
        entry = expected_for(ref, p["tokens"], p["greedy"], p["last_only"])
        if p["kv_bf16"]:
            entry["kv_bf16"] = expected_for(ref_kv_bf16, p["tokens"], p["greedy"], p["last_only"])
        if p["act_q8"]:
            entry["act_q8"] = expected_for(ref_act_q8, p["tokens"], p["greedy"], p["last_only"])
        if p["bf16_weights"]:
            entry["bf16_weights"] = expected_for(ref_bf16_weights, p["tokens"], p["greedy"],
                                                 p["last_only"])
        entries.append(entry)
    expected = {"config": ref_cfg.to_dict(), "seed": args.seed, "quantized": args.quantized,
                "prompts": entries}
    tmp = os.path.join(args.out, "expected.json.tmp")
    with open(tmp, "w") as f:
        json.dump(expected, f)
    os.replace(tmp, os.path.join(args.out, "expected.json"))
    print(f"make_model: {len(variants)} folders, {len(prompts)} prompts in "
          f"{time.time() - start:.1f}s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:  # bad config, shapes that do not shard, ...: one line, exit 2
        raise SystemExit(f"make_model: {e}")

#!/usr/bin/python3
"""Makes a random small Llama 3.2 Vision (mllama) model in Meta's and Hugging Face's layouts, test
images, and the float64 reference's answers (mllama_reference.py), for the engine's tests.

    /usr/bin/python3 tests/reference/make_mllama_model.py --out DIR [--seed S] [--config JSON]
        [--image NAME=WxH[:SEED] ...] [--prompt "t1,t2,...[|img1,img2]" ...]

--config: JSON text or a file; keys (all optional, defaults in parentheses):
  text:   dim (128), n_layers (3, self-attention layers), n_heads (4), n_kv_heads (2, or
          n_heads when only n_heads is given),
          vocab_size (512), ffn_dim (384), norm_eps (1e-5), rope_theta (500000),
          rope_scaling_factor (8; null: none), n_cross_layers (1), multiple_of /
          ffn_dim_multiplier (params.json's description of ffn_dim; found when left out)
  vision: vision_width (64), vision_layers (3), vision_global_layers (1), vision_heads (4),
          vision_patch_size (14), vision_tile_size (56), vision_max_tiles (4),
          vision_intermediate_layers ([1, 2]), vision_ffn (4 * vision_width)
--image NAME=WxH[:SEED]: a W x H test image (smooth gradients + noise) written to DIR/images/NAME,
  PNG, or JPEG quality 90 (4:4:4, no chroma subsampling) when NAME ends in .jpg/.jpeg.
--prompt: comma-separated token ids; "img" (or the id vocab_size) is the image token; after "|"
  the images in the order of the prompt's image tokens. Without --image / --prompt a default set
  is used: text only, one image, two images of different aspect ratios separated by text, and
  a pair of consecutive image tokens between other text and a third image.

Writes DIR/meta/ (params.json, consolidated.00.pth), DIR/hf/ (config.json, model.safetensors),
DIR/images/ and DIR/expected.json:
  {"config": {...}, "seed": S, "image_token_id": vocab_size, "tokens_per_tile": ntok,
   "max_tiles": N, "fusion_schedule": [...], "hf_cross_attention_layers": [...],
   "images": {NAME: {"size": [W, H], "seed": s, "tiles": [tiles_h, tiles_w]}},
   "prompts": [{"tokens": [...], "images": [NAME, ...], "tiles": [[tiles_h, tiles_w], ...],
                "image_spans": [[start, end), ...],
                "logits": [[vocab floats] per position], "top1": [...], "margins": [...],
                "vision_tokens": [per image: max_tiles * ntok * dim floats, [tile][token][dim]],
                "controls": {NAME: [[...] per position]},
                "control_max_abs_diff": {NAME: max |logits - control|}}]}
Controls (each must differ from "logits"; a control that cannot differ for a prompt, e.g.
mask_all_images with one image, shows 0 in control_max_abs_diff):
  hf_row_mask          transformers' behaviour: rows that see no image keep their cross-attention
                       output (attending to every vision token); only their MLP is zeroed
  gate_no_tanh         every gate used raw instead of tanh(gate)
  mask_all_images      every row sees all images at or before it (no per-image spans)
  encoder_strict_mask  the vision encoder masks padding / empty-tile keys for every query
  intermediates_blocked  intermediate features concatenated layer-major, not interleaved
Every run reloads the files it wrote with its own readers (torch.load; a hand-written safetensors
reader, the HF layout mapped back to Meta's) and checks that both give bit-identical logits.
Needs tests/reference/mllama_image.py (preprocess(path, tile_size, max_tiles)).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import zlib
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llama_reference import hf_permute, hf_unpermute, top1_and_margin  # noqa: E402
from mllama_reference import (LEARNABLE_EMBEDDINGS, ImageInput, MllamaConfig,  # noqa: E402
                              MllamaReference, Variant, meta_weight_shapes)
from model_files import (F16_MIN_NORMAL, HF_LAYER_SUFFIXES, _uniform, meta_ffn_dim, meta_params,  # noqa: E402
                         read_safetensors, write_safetensors)

CONTROLS = {
    "hf_row_mask": Variant(row_mask="hf"),
    "gate_no_tanh": Variant(gate="identity"),
    "mask_all_images": Variant(image_visibility="all_preceding"),
    "encoder_strict_mask": Variant(encoder_mask="strict"),
    "intermediates_blocked": Variant(intermediate_layout="blocked"),
}

DEFAULT_IMAGES = ["wide.png=150x60:11", "tall.png=40x130:12", "square.jpg=100x100:13",
                  "small.png=30x40:14"]
DEFAULT_PROMPTS = [
    "7,31,62,93,24,55,86,17",
    "1,17,img,33,44,55,66,77|wide.png",
    "1,img,21,22,23,img,31,32,33|wide.png,tall.png",
    "1,img,img,41,42,img,51,52|square.jpg,small.png,tall.png",
]

# The released 11B's vision encoder, which Meta's code hard-codes: what a params.json without our
# extension keys means.
META_VISION_DEFAULTS = {"vision_width": 1280, "vision_layers": 32, "vision_global_layers": 8,
                        "vision_heads": 16, "vision_patch_size": 14,
                        "vision_intermediate_layers": [3, 7, 15, 23, 30], "vision_ffn": 5120}


# ---------------------------------------------------------------------------------------------
# Random weights.
# ---------------------------------------------------------------------------------------------

def _is_gate(name: str) -> bool:
    return name.endswith(("gate", "gate_attn", "gate_ffn", "gate_ffwd"))


def random_weights(cfg: MllamaConfig, seed: int) -> Dict[str, torch.Tensor]:
    """bf16 weights drawn in meta_weight_shapes order from one seeded generator:
    matrices U with std 1/sqrt(fan_in) (the LM head 1/sqrt(dim)), biases std 0.1, embeddings
    (token, learnable, class, positional, tile) std 1, RMSNorm / LayerNorm weights 1 + 0.2 U(-1,1),
    LayerNorm biases 0.2 U(-1,1), gates +-U(0.5, 1.25) (never near 0, so tanh(g) and g differ).
    Values below 2^-14 are flushed to zero (also exact in f16)."""
    gen = torch.Generator().manual_seed(seed)

    def unit(shape) -> torch.Tensor:  # U(-1, 1)
        return torch.rand(shape, generator=gen, dtype=torch.float32) * 2.0 - 1.0

    weights = {}
    for name, shape in meta_weight_shapes(cfg):
        if _is_gate(name):
            magnitude = 0.5 + 0.75 * torch.rand(shape, generator=gen, dtype=torch.float32)
            sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
            t = magnitude * sign
        elif name.endswith(("norm.weight", "ln_pre.weight", "ln_post.weight", "ln_1.weight",
                            "ln_2.weight")):
            t = 1.0 + 0.2 * unit(shape)
        elif name.endswith(("ln_pre.bias", "ln_post.bias", "ln_1.bias", "ln_2.bias")):
            t = 0.2 * unit(shape)
        elif name.endswith(".bias"):
            t = _uniform(gen, shape, 0.1)
        elif name.endswith(("embeddings.weight", "learnable_embedding.weight", "class_embedding",
                            "positional_embedding", "pos_embed.embedding")):
            t = _uniform(gen, shape, 1.0)
        elif name == "text_model.output.weight":
            t = _uniform(gen, shape, 1.0 / math.sqrt(cfg.dim))
        else:
            t = _uniform(gen, shape, 1.0 / math.sqrt(shape[1]))
        t = t.to(torch.bfloat16)
        t[t.abs() < F16_MIN_NORMAL] = 0.0
        weights[name] = t.contiguous()
    return weights


# ---------------------------------------------------------------------------------------------
# Meta layout.
# ---------------------------------------------------------------------------------------------

def meta_params_json(cfg: MllamaConfig) -> dict:
    """params.json: the released 11B's keys (text keys as for Llama 3.1, plus vision_chunk_size,
    vision_max_num_chunks, vision_num_cross_attention_layers) and our extension keys for the
    vision encoder that Meta's code hard-codes."""
    params = meta_params(cfg.text_config())
    params["vision_chunk_size"] = cfg.vision_tile_size
    params["vision_max_num_chunks"] = cfg.vision_max_tiles
    params["vision_num_cross_attention_layers"] = cfg.n_cross_layers
    params.update({
        "vision_width": cfg.vision_width, "vision_layers": cfg.vision_layers,
        "vision_global_layers": cfg.vision_global_layers, "vision_heads": cfg.vision_heads,
        "vision_patch_size": cfg.vision_patch_size,
        "vision_intermediate_layers": list(cfg.vision_intermediate_layers),
        "vision_ffn": cfg.vision_ffn_dim,
    })
    return params


def config_from_meta_params(params: dict) -> MllamaConfig:
    """What a reader makes of params.json (extension keys absent: the 11B's encoder)."""
    ffn = meta_ffn_dim(params["dim"], params["multiple_of"], params.get("ffn_dim_multiplier"))
    scaling = None
    if params.get("use_scaled_rope"):
        scaling = float(params.get("rope_scaling_factor", 8.0))
    d = {"dim": params["dim"], "n_layers": params["n_layers"], "n_heads": params["n_heads"],
         "n_kv_heads": params.get("n_kv_heads") or params["n_heads"],
         "vocab_size": params["vocab_size"], "ffn_dim": ffn, "norm_eps": params["norm_eps"],
         "rope_theta": params["rope_theta"], "rope_scaling_factor": scaling,
         "n_cross_layers": params["vision_num_cross_attention_layers"],
         "multiple_of": params["multiple_of"],
         "ffn_dim_multiplier": params.get("ffn_dim_multiplier"),
         "vision_tile_size": params["vision_chunk_size"],
         "vision_max_tiles": params["vision_max_num_chunks"]}
    for key, default in META_VISION_DEFAULTS.items():
        d[key] = params.get(key, default)
    return MllamaConfig.from_dict(d)


def write_meta(folder: str, cfg: MllamaConfig, weights: Dict[str, torch.Tensor]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "params.json"), "w") as f:
        json.dump(meta_params_json(cfg), f, indent=2)
    state = {name: weights[name].clone() for name, _ in meta_weight_shapes(cfg)}
    torch.save(state, os.path.join(folder, "consolidated.00.pth"))


def read_meta(folder: str) -> Tuple[MllamaConfig, Dict[str, torch.Tensor]]:
    with open(os.path.join(folder, "params.json")) as f:
        cfg = config_from_meta_params(json.load(f))
    state = torch.load(os.path.join(folder, "consolidated.00.pth"), map_location="cpu")
    return cfg, dict(state)


# ---------------------------------------------------------------------------------------------
# Hugging Face layout, as transformers' convert_mllama_weights_to_hf.py writes it.
# ---------------------------------------------------------------------------------------------

def supported_aspect_ratios(max_tiles: int) -> List[Tuple[int, int]]:
    """get_all_supported_aspect_ratios: (a, b) for a in 1..N, b in 1..N, a * b <= N, in that
    order. The converter reads each pair as (tiles_h, tiles_w) (embedding[:height, :width]) and
    the processor's convert_aspect_ratios_to_ids looks up (num_tiles_h, num_tiles_w): aspect
    ratio id = index + 1, id 0 is padding. For N = 4: (1,1) (1,2) (1,3) (1,4) (2,1) (2,2) (3,1)
    (4,1) -> ids 1..8."""
    return [(a, b) for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1)
            if a * b <= max_tiles]


def precompute_tile_table(table: torch.Tensor) -> torch.Tensor:
    """pre_compute_positional_embedding: [N, N, P, w] -> [len(ratios) + 1, N * P * w]; row id holds
    table[:h, :w] row-major over the tile grid, then zeros up to N tiles."""
    n, _, patches, width = table.shape
    ratios = supported_aspect_ratios(n)
    out = torch.zeros(len(ratios) + 1, n, patches, width, dtype=table.dtype)
    for i, (h, w) in enumerate(ratios):
        out[i + 1, :h * w] = table[:h, :w].reshape(h * w, patches, width)
    return out.flatten(1)


def tile_table_from_precomputed(rows: torch.Tensor, n: int, patches: int,
                                width: int) -> torch.Tensor:
    """The inverse, for the round trip: entries [i, j] with (i+1)(j+1) > N are in no row (Meta's
    model never reads them either) and come back as zeros. Checks that every copy of an entry
    agrees and that padding tiles are zero."""
    ratios = supported_aspect_ratios(n)
    rows = rows.reshape(len(ratios) + 1, n, patches, width)
    if rows[0].abs().max() != 0:
        raise ValueError("aspect ratio id 0 (padding) is not zero")
    table = torch.zeros(n, n, patches, width, dtype=rows.dtype)
    filled = torch.zeros(n, n, dtype=torch.bool)
    for i, (h, w) in enumerate(ratios):
        row = rows[i + 1]
        if bool((row[h * w:] != 0).any()):
            raise ValueError(f"aspect ratio {h}x{w}: tiles past {h * w} are not zero")
        grid = row[:h * w].reshape(h, w, patches, width)
        for a in range(h):
            for b in range(w):
                if filled[a, b] and not torch.equal(table[a, b], grid[a, b]):
                    raise ValueError(f"tile embedding [{a}, {b}] differs between aspect ratios")
                table[a, b] = grid[a, b]
                filled[a, b] = True
    return table


def hf_layer_indices(cfg: MllamaConfig) -> Tuple[List[int], List[int]]:
    """(HF decoder index of each Meta self layer, of each Meta cross layer). HF runs one list of
    layers; cross layer j sits just before self layer fusion_schedule[j]. Checked against the
    converter's own formula: cross_attention_layers = range(k - 1, n_layers + n_cross, k + 1),
    k = ceil(n_layers / n_cross) (e.g. [3, 8, ..., 38] for 32 + 8)."""
    schedule = cfg.fusion_schedule()
    order = []
    for i in range(cfg.n_layers):
        if i in schedule:
            order.append(("cross", schedule.index(i)))
        order.append(("self", i))
    self_idx = [k for k, (kind, _) in enumerate(order) if kind == "self"]
    cross_idx = [k for k, (kind, _) in enumerate(order) if kind == "cross"]
    k = math.ceil(cfg.n_layers / cfg.n_cross_layers)
    converter = list(range(k - 1, cfg.n_layers + cfg.n_cross_layers, k + 1))
    if cross_idx != converter:
        raise ValueError(f"Meta's schedule puts the cross layers at HF indices {cross_idx}, the "
                         f"converter at {converter}")
    return self_idx, cross_idx


_HF_CROSS = {
    "attention.wq.weight": "cross_attn.q_proj.weight",
    "attention.wk.weight": "cross_attn.k_proj.weight",
    "attention.wv.weight": "cross_attn.v_proj.weight",
    "attention.wo.weight": "cross_attn.o_proj.weight",
    "attention.q_norm.weight": "cross_attn.q_norm.weight",
    "attention.k_norm.weight": "cross_attn.k_norm.weight",
    "gate_attn": "cross_attn_attn_gate",
    "gate_ffwd": "cross_attn_mlp_gate",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_HF_VISION_BLOCK = {
    "attn.wq.weight": "self_attn.q_proj.weight",
    "attn.wk.weight": "self_attn.k_proj.weight",
    "attn.wv.weight": "self_attn.v_proj.weight",
    "attn.wo.weight": "self_attn.o_proj.weight",
    "mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
    "ln_1.weight": "input_layernorm.weight", "ln_1.bias": "input_layernorm.bias",
    "ln_2.weight": "post_attention_layernorm.weight", "ln_2.bias": "post_attention_layernorm.bias",
    "gate_attn": "gate_attn", "gate_ffn": "gate_ffn",
}
_HF_VISION = {
    "conv1._linear.weight": "vision_model.patch_embedding.weight",
    "class_embedding": "vision_model.class_embedding",
    "positional_embedding": "vision_model.gated_positional_embedding.embedding",
    "gated_positional_embedding":
        "vision_model.gated_positional_embedding.tile_embedding.weight",
    "gated_positional_embedding_gate": "vision_model.gated_positional_embedding.gate",
    "pre_tile_pos_embed.embedding": "vision_model.pre_tile_positional_embedding.embedding.weight",
    "pre_tile_pos_embed.gate": "vision_model.pre_tile_positional_embedding.gate",
    "post_tile_pos_embed.embedding":
        "vision_model.post_tile_positional_embedding.embedding.weight",
    "post_tile_pos_embed.gate": "vision_model.post_tile_positional_embedding.gate",
    "ln_pre.weight": "vision_model.layernorm_pre.weight",
    "ln_pre.bias": "vision_model.layernorm_pre.bias",
    "ln_post.weight": "vision_model.layernorm_post.weight",
    "ln_post.bias": "vision_model.layernorm_post.bias",
}


def hf_name(cfg: MllamaConfig, meta: str) -> str:
    """The HF (transformers 4.45 / released checkpoint) name of a Meta tensor; the text
    learnable_embedding has none (it is appended to embed_tokens)."""
    self_idx, cross_idx = hf_layer_indices(cfg)
    if meta == "text_model.tok_embeddings.weight":
        return "language_model.model.embed_tokens.weight"
    if meta == "text_model.norm.weight":
        return "language_model.model.norm.weight"
    if meta == "text_model.output.weight":
        return "language_model.lm_head.weight"
    if meta.startswith("text_model.layers."):
        n, rest = meta[len("text_model.layers."):].split(".", 1)
        return f"language_model.model.layers.{self_idx[int(n)]}.{HF_LAYER_SUFFIXES[rest]}"
    if meta.startswith("text_model.cross_attention_layers."):
        n, rest = meta[len("text_model.cross_attention_layers."):].split(".", 1)
        return f"language_model.model.layers.{cross_idx[int(n)]}.{_HF_CROSS[rest]}"
    if meta.startswith("vision_model.vision_projection."):
        return "multi_modal_projector." + meta.rsplit(".", 1)[1]
    v = "vision_model.vision_encoder."
    if meta.startswith(v):
        rest = meta[len(v):]
        if rest in _HF_VISION:
            return _HF_VISION[rest]
        stack, _, n, block = rest.split(".", 3)  # transformer.resblocks.N.xxx
        return f"vision_model.{stack}.layers.{n}.{_HF_VISION_BLOCK[block]}"
    raise ValueError(f"no HF name for {meta}")


def hf_state(cfg: MllamaConfig, weights: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The tensors convert_mllama_weights_to_hf.py makes from the Meta checkpoint:
    - self-attention q/k rows permuted for rotate_half (permute_for_rope, n_heads / n_kv_heads);
      cross-attention q/k/v/o, q_norm and k_norm are NOT permuted (the converter permutes only
      when "cross_attn" is not in the name; cross attention has no RoPE);
    - embed_tokens = [tok_embeddings; learnable_embedding] (vocab_size + 8 rows);
    - the patch conv as a Conv2d weight [width, 3, p, p] (reshape of [width, 3 p p]);
    - tile embeddings and the gated positional embedding re-laid out per aspect ratio id;
    - gates as [1]; self and cross layers interleaved into one list."""
    state = {}
    for name, _ in meta_weight_shapes(cfg):
        t = weights[name]
        if name == "text_model.learnable_embedding.weight":
            continue
        if name == "text_model.tok_embeddings.weight":
            t = torch.cat([t, weights["text_model.learnable_embedding.weight"]], dim=0)
        elif name.startswith("text_model.layers.") and name.endswith("attention.wq.weight"):
            t = hf_permute(t, cfg.n_heads)
        elif name.startswith("text_model.layers.") and name.endswith("attention.wk.weight"):
            t = hf_permute(t, cfg.n_kv_heads)
        elif name.endswith("conv1._linear.weight"):
            t = t.reshape(-1, 3, cfg.vision_patch_size, cfg.vision_patch_size)
        elif name.endswith(("pos_embed.embedding", "vision_encoder.gated_positional_embedding")):
            t = precompute_tile_table(t)
        elif _is_gate(name):
            t = t.reshape(1)
        state[hf_name(cfg, name)] = t.contiguous()
    return dict(sorted(state.items()))


def hf_config_json(cfg: MllamaConfig) -> dict:
    """config.json as transformers 4.45 saves MllamaConfig (the released checkpoint's keys)."""
    _, cross_idx = hf_layer_indices(cfg)
    scaled = cfg.rope_scaling_factor is not None
    text = {
        "model_type": "mllama_text_model",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "hidden_act": "silu",
        "num_hidden_layers": cfg.n_layers + cfg.n_cross_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "intermediate_size": cfg.ffn_dim,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": {"rope_type": "llama3", "factor": cfg.rope_scaling_factor,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192} if scaled else None,
        "rms_norm_eps": cfg.norm_eps,
        "max_position_embeddings": 131072,
        "initializer_range": 0.02,
        "use_cache": True,
        "tie_word_embeddings": False,
        "cross_attention_layers": cross_idx,
        "dropout": 0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "pad_token_id": 128004,
        "torch_dtype": "bfloat16",
    }
    vision = {
        "model_type": "mllama_vision_model",
        "hidden_size": cfg.vision_width,
        "hidden_act": "gelu",
        "num_hidden_layers": cfg.vision_layers,
        "num_global_layers": cfg.vision_global_layers,
        "attention_heads": cfg.vision_heads,  # how MllamaVisionConfig saves num_attention_heads
        "num_channels": 3,
        "intermediate_size": cfg.vision_ffn_dim,
        "vision_output_dim": cfg.vision_output_dim,
        "image_size": cfg.vision_tile_size,
        "patch_size": cfg.vision_patch_size,
        "norm_eps": 1e-5,
        "max_num_tiles": cfg.vision_max_tiles,
        "intermediate_layers_indices": list(cfg.vision_intermediate_layers),
        "supported_aspect_ratios": [list(r) for r in supported_aspect_ratios(cfg.vision_max_tiles)],
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
    }
    return {"architectures": ["MllamaForConditionalGeneration"], "model_type": "mllama",
            "image_token_index": cfg.image_token_id, "torch_dtype": "bfloat16",
            "transformers_version": "4.45.0.dev0", "text_config": text, "vision_config": vision}


def write_hf(folder: str, cfg: MllamaConfig, weights: Dict[str, torch.Tensor]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config_json(cfg), f, indent=2)
    write_safetensors(os.path.join(folder, "model.safetensors"), hf_state(cfg, weights), "bf16")


def config_from_hf(config: dict) -> MllamaConfig:
    t, v = config["text_config"], config["vision_config"]
    cross = t["cross_attention_layers"]
    rope = t.get("rope_scaling")
    return MllamaConfig.from_dict({
        "dim": t["hidden_size"], "n_layers": t["num_hidden_layers"] - len(cross),
        "n_heads": t["num_attention_heads"], "n_kv_heads": t["num_key_value_heads"],
        "vocab_size": t["vocab_size"], "ffn_dim": t["intermediate_size"],
        "norm_eps": t["rms_norm_eps"], "rope_theta": t["rope_theta"],
        "rope_scaling_factor": rope["factor"] if rope else None, "n_cross_layers": len(cross),
        "vision_width": v["hidden_size"], "vision_layers": v["num_hidden_layers"],
        "vision_global_layers": v["num_global_layers"], "vision_heads": v["attention_heads"],
        "vision_patch_size": v["patch_size"], "vision_tile_size": v["image_size"],
        "vision_max_tiles": v["max_num_tiles"],
        "vision_intermediate_layers": v["intermediate_layers_indices"],
        "vision_ffn": v["intermediate_size"]})


def read_hf(folder: str) -> Tuple[MllamaConfig, Dict[str, torch.Tensor]]:
    """An HF folder back in Meta's names and layout (for the round-trip check), using only the
    files: cross layer positions from config.json, q/k rows un-permuted, embed_tokens split, tile
    tables rebuilt from the per-aspect-ratio rows."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    cfg = config_from_hf(config)
    hf = read_safetensors(os.path.join(folder, "model.safetensors"))
    cross = config["text_config"]["cross_attention_layers"]
    total = config["text_config"]["num_hidden_layers"]
    self_layers = [k for k in range(total) if k not in cross]
    back: Dict[str, torch.Tensor] = {}
    used = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return hf[name]

    emb = take("language_model.model.embed_tokens.weight")
    back["text_model.tok_embeddings.weight"] = emb[:cfg.vocab_size]
    back["text_model.learnable_embedding.weight"] = emb[cfg.vocab_size:]
    back["text_model.norm.weight"] = take("language_model.model.norm.weight")
    back["text_model.output.weight"] = take("language_model.lm_head.weight")
    for meta_index, hf_index in enumerate(self_layers):
        for meta_suffix, hf_suffix in HF_LAYER_SUFFIXES.items():
            t = take(f"language_model.model.layers.{hf_index}.{hf_suffix}")
            if meta_suffix == "attention.wq.weight":
                t = hf_unpermute(t, cfg.n_heads)
            elif meta_suffix == "attention.wk.weight":
                t = hf_unpermute(t, cfg.n_kv_heads)
            back[f"text_model.layers.{meta_index}.{meta_suffix}"] = t
    for meta_index, hf_index in enumerate(cross):
        for meta_suffix, hf_suffix in _HF_CROSS.items():
            back[f"text_model.cross_attention_layers.{meta_index}.{meta_suffix}"] = take(
                f"language_model.model.layers.{hf_index}.{hf_suffix}")
    for suffix in ("weight", "bias"):
        back[f"vision_model.vision_projection.{suffix}"] = take(f"multi_modal_projector.{suffix}")
    v = "vision_model.vision_encoder."
    tiles, ntok, width = cfg.vision_max_tiles, cfg.tokens_per_tile, cfg.vision_width
    for meta_suffix, hf_n in _HF_VISION.items():
        t = take(hf_n)
        if meta_suffix == "conv1._linear.weight":
            t = t.reshape(t.shape[0], -1)
        elif meta_suffix == "gated_positional_embedding":
            t = tile_table_from_precomputed(t, tiles, ntok, width)
        elif meta_suffix.endswith("pos_embed.embedding"):
            t = tile_table_from_precomputed(t, tiles, 1, width)
        back[v + meta_suffix] = t
    for stack, count in (("transformer", cfg.vision_layers),
                         ("global_transformer", cfg.vision_global_layers)):
        for n in range(count):
            for meta_suffix, hf_suffix in _HF_VISION_BLOCK.items():
                if stack == "transformer" and meta_suffix.startswith("gate"):
                    continue
                back[f"{v}{stack}.resblocks.{n}.{meta_suffix}"] = take(
                    f"vision_model.{stack}.layers.{n}.{hf_suffix}")
    unused = set(hf) - used
    if unused:
        raise ValueError(f"HF tensors not read back: {sorted(unused)}")
    return cfg, back


# ---------------------------------------------------------------------------------------------
# Images and prompts.
# ---------------------------------------------------------------------------------------------

def parse_image(spec: str) -> dict:
    name, sep, rest = spec.partition("=")
    size, _, seed = rest.partition(":")
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"bad --image {spec!r}: use NAME=WxH[:SEED]")
    if not sep or not name or "/" in name or width <= 0 or height <= 0:
        raise SystemExit(f"bad --image {spec!r}: use NAME=WxH[:SEED]")
    return {"name": name, "size": [width, height],
            "seed": int(seed) if seed else zlib.crc32(name.encode())}


def make_image(width: int, height: int, seed: int) -> np.ndarray:
    """uint8 [H, W, 3]: per channel a random mix of horizontal/vertical ramps and a slow wave,
    plus N(0, 8) noise; deterministic in (width, height, seed)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1.0, 1.0, 3)
        fx, fy, phase = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (fx * u + fy * v) + phase)
        channels.append(128.0 + 70.0 * (a * u + b * v) + 45.0 * c * wave)
    img = np.stack(channels, axis=-1) + rng.normal(0.0, 8.0, (height, width, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_image(path: str, pixels: np.ndarray) -> None:
    from PIL import Image
    img = Image.fromarray(pixels, mode="RGB")
    if path.lower().endswith((".jpg", ".jpeg")):
        img.save(path, format="JPEG", quality=90, subsampling=0)
    else:
        img.save(path, format="PNG")


def parse_prompt(spec: str, cfg: MllamaConfig) -> dict:
    body, _, names = spec.partition("|")
    tokens = []
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower() in ("img", "image", "<|image|>"):
            tokens.append(cfg.image_token_id)
        else:
            try:
                tokens.append(int(item))
            except ValueError:
                raise SystemExit(f"bad token {item!r} in prompt {spec!r}")
    images = [n.strip() for n in names.split(",") if n.strip()]
    if not tokens:
        raise SystemExit(f"empty prompt {spec!r}")
    count = sum(1 for t in tokens if t == cfg.image_token_id)
    if count != len(images):
        raise SystemExit(f"prompt {spec!r} has {count} image tokens but names {len(images)} "
                         "images")
    for t in tokens:
        if not 0 <= t < cfg.vocab_size + LEARNABLE_EMBEDDINGS:
            raise SystemExit(f"token {t} of prompt {spec!r} is outside the embedding")
    return {"tokens": tokens, "images": images}


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="{}", help="model config: JSON text or a JSON file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--image", action="append", default=[], help="NAME=WxH[:SEED] (repeatable)")
    ap.add_argument("--prompt", action="append", default=[],
                    help='"t1,img,t2,...|image1,..." (repeatable)')
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    start = time.time()
    text = args.config
    if os.path.isfile(text):
        with open(text) as f:
            text = f.read()
    try:
        cfg = MllamaConfig.from_dict(json.loads(text))
    except json.JSONDecodeError as e:
        raise SystemExit(f"--config is neither a file nor valid JSON: {e}")
    image_specs = [parse_image(s) for s in (args.image or DEFAULT_IMAGES)]
    by_name = {s["name"]: s for s in image_specs}
    if len(by_name) != len(image_specs):
        raise SystemExit("two --image with the same name")
    prompts = [parse_prompt(p, cfg) for p in (args.prompt or DEFAULT_PROMPTS)]
    for p in prompts:
        for name in p["images"]:
            if name not in by_name:
                raise SystemExit(f"prompt names image {name!r}, which no --image makes")

    # Files.
    weights = random_weights(cfg, args.seed)
    write_meta(os.path.join(args.out, "meta"), cfg, weights)
    write_hf(os.path.join(args.out, "hf"), cfg, weights)
    image_dir = os.path.join(args.out, "images")
    os.makedirs(image_dir, exist_ok=True)
    from mllama_image import preprocess
    inputs: Dict[str, ImageInput] = {}
    for spec in image_specs:
        path = os.path.join(image_dir, spec["name"])
        write_image(path, make_image(spec["size"][0], spec["size"][1], spec["seed"]))
        tiles, aspect = preprocess(path, cfg.vision_tile_size, cfg.vision_max_tiles)
        inputs[spec["name"]] = ImageInput(tiles=tiles, aspect=(int(aspect[0]), int(aspect[1])))
        spec["tiles"] = list(inputs[spec["name"]].aspect)

    # Answers.
    ref = MllamaReference(cfg, weights)
    controls = {name: MllamaReference(cfg, weights, variant) for name, variant in CONTROLS.items()}
    entries = []
    for p in prompts:
        images = [inputs[n] for n in p["images"]]
        out = ref.forward(p["tokens"], images)
        logits = out["logits"]
        top = [top1_and_margin(row) for row in logits]
        entry = {
            "tokens": p["tokens"], "images": p["images"],
            "tiles": [list(im.aspect) for im in images],
            "image_spans": [list(s) for s in out["spans"]],
            "logits": logits.tolist(),
            "top1": [t for t, _ in top], "margins": [m for _, m in top],
            "vision_tokens": [v.reshape(-1).tolist() for v in out["vision_tokens"]]
            if images else [],
            "controls": {}, "control_max_abs_diff": {},
        }
        for name, control in controls.items():
            other = control.forward(p["tokens"], images)["logits"]
            entry["controls"][name] = other.tolist()
            entry["control_max_abs_diff"][name] = float((other - logits).abs().max())
        p["logits"] = logits
        entries.append(entry)

    # The files must mean the same model: reload both and recompute.
    meta_cfg, meta_weights = read_meta(os.path.join(args.out, "meta"))
    hf_cfg, hf_weights = read_hf(os.path.join(args.out, "hf"))
    for label, got_cfg in (("params.json", meta_cfg), ("config.json", hf_cfg)):
        mine = {k: v for k, v in cfg.to_dict().items()
                if k not in ("multiple_of", "ffn_dim_multiplier")}
        theirs = {k: v for k, v in got_cfg.to_dict().items()
                  if k not in ("multiple_of", "ffn_dim_multiplier")}
        if mine != theirs:
            raise SystemExit(f"{label} reads back as {theirs}, not {mine}")
    for name, t in weights.items():
        if not torch.equal(meta_weights[name], t):
            raise SystemExit(f"Meta file: {name} differs")
        same = hf_weights[name].to(torch.float64) == t.to(torch.float64)
        if name.endswith(("pos_embed.embedding", "vision_encoder.gated_positional_embedding")):
            n = cfg.vision_max_tiles
            used = torch.tensor([[(a + 1) * (b + 1) <= n for b in range(n)] for a in range(n)])
            same = same[used]
        if not bool(same.all()):
            raise SystemExit(f"HF file: {name} differs after mapping back")
    for label, got_cfg, got in (("meta", meta_cfg, meta_weights), ("hf", hf_cfg, hf_weights)):
        again = MllamaReference(got_cfg, got)
        for p in prompts:
            logits = again.forward(p["tokens"], [inputs[n] for n in p["images"]])["logits"]
            if not torch.equal(logits, p["logits"]):
                raise SystemExit(f"{label} files give other logits: max diff "
                                 f"{float((logits - p['logits']).abs().max())}")

    _, cross_idx = hf_layer_indices(cfg)
    expected = {
        "config": cfg.to_dict(), "seed": args.seed, "image_token_id": cfg.image_token_id,
        "tokens_per_tile": cfg.tokens_per_tile, "max_tiles": cfg.vision_max_tiles,
        "fusion_schedule": cfg.fusion_schedule(), "hf_cross_attention_layers": cross_idx,
        "images": {s["name"]: {"size": s["size"], "seed": s["seed"], "tiles": s["tiles"]}
                   for s in image_specs},
        "prompts": entries,
    }
    tmp = os.path.join(args.out, "expected.json.tmp")
    with open(tmp, "w") as f:
        json.dump(expected, f)
    os.replace(tmp, os.path.join(args.out, "expected.json"))
    diffs = "; ".join(
        f"prompt {i}: " + ", ".join(f"{k} {v:.3g}" for k, v in e["control_max_abs_diff"].items())
        for i, e in enumerate(entries))
    print(f"make_mllama_model: {len(prompts)} prompts, {len(image_specs)} images, files "
          f"round-trip, in {time.time() - start:.1f}s -> {args.out}\n  control max |diff|: {diffs}",
          file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:  # bad config and the like: one line, exit 2
        raise SystemExit(f"make_mllama_model: {e}")

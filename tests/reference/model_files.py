"""Random Llama 3 weights and the checkpoint layouts the engine reads: Meta's folder
(params.json + consolidated.NN.pth), Hugging Face's (config.json + *.safetensors) and a GGUF
file as llama.cpp's converter writes it (gguf_file.py, ggml_blocks.py).

The safetensors files are written by hand from the format's definition (8-byte little-endian
header length, JSON header, raw little-endian tensor bytes) so the fixtures do not depend on the
safetensors package.
"""
from __future__ import annotations

import json
import math
import os
import struct
import sys
from typing import Dict, List, Optional, Tuple

import torch

from ggml_blocks import decode, encode
from gguf_file import F32, STRING, U32, GgufWriter
from llama_reference import LlamaConfig, hf_permute

# Smallest normal float16. Weights smaller than this are flushed to zero, so every bf16 weight is
# also exactly representable in float16 and the f16 checkpoint holds the very same numbers.
F16_MIN_NORMAL = 2.0 ** -14


# ---------------------------------------------------------------------------------------------
# Random weights.
# ---------------------------------------------------------------------------------------------

def meta_weight_shapes(cfg: LlamaConfig) -> List[Tuple[str, Tuple[int, ...]]]:
    """Every weight in Meta naming with its shape, in a fixed order (the order random numbers
    are drawn in, so a seed always gives the same model)."""
    kv = cfg.n_kv_heads * cfg.head_dim
    shapes = [("tok_embeddings.weight", (cfg.vocab_size, cfg.dim))]
    for n in range(cfg.n_layers):
        p = f"layers.{n}."
        shapes += [
            (p + "attention.wq.weight", (cfg.dim, cfg.dim)),
            (p + "attention.wk.weight", (kv, cfg.dim)),
            (p + "attention.wv.weight", (kv, cfg.dim)),
            (p + "attention.wo.weight", (cfg.dim, cfg.dim)),
            (p + "feed_forward.w1.weight", (cfg.ffn_dim, cfg.dim)),
            (p + "feed_forward.w2.weight", (cfg.dim, cfg.ffn_dim)),
            (p + "feed_forward.w3.weight", (cfg.ffn_dim, cfg.dim)),
            (p + "attention_norm.weight", (cfg.dim,)),
            (p + "ffn_norm.weight", (cfg.dim,)),
        ]
    shapes.append(("norm.weight", (cfg.dim,)))
    if not cfg.tied:
        shapes.append(("output.weight", (cfg.vocab_size, cfg.dim)))
    return shapes


def _uniform(gen: torch.Generator, shape, std: float) -> torch.Tensor:
    """Uniform on [-a, a] with standard deviation std (a = std * sqrt(3)), in float32."""
    t = torch.rand(shape, generator=gen, dtype=torch.float32)
    return t.mul_(2.0).sub_(1.0).mul_(std * math.sqrt(3.0))


def random_weights(cfg: LlamaConfig, seed: int) -> Dict[str, torch.Tensor]:
    """Random bf16 weights: matrices with std 1/sqrt(fan_in), embeddings std 1 (1/sqrt(dim) when
    tied, see below), the untied output std 1/sqrt(dim), norms 1 + 0.1 * U(-1, 1) (so a norm that
    is skipped or taken from the wrong place changes the result). Rounded to bf16 once; the
    reference computes with exactly these values."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in meta_weight_shapes(cfg):
        if name.endswith("norm.weight"):
            t = 1.0 + 0.1 * (torch.rand(shape, generator=gen, dtype=torch.float32) * 2.0 - 1.0)
        elif name == "tok_embeddings.weight":
            # A tied head with std-1 embeddings would make every argmax the current token: the
            # residual stream keeps the token's own embedding, whose dot product with itself
            # (~dim) dwarfs every other logit (~sqrt(dim)), leaving top-1 and greedy checks blind
            # to the rest of the network. Tied embeddings get the head's scale instead.
            t = _uniform(gen, shape, 1.0 / math.sqrt(cfg.dim) if cfg.tied else 1.0)
        elif name == "output.weight":
            t = _uniform(gen, shape, 1.0 / math.sqrt(cfg.dim))
        else:
            t = _uniform(gen, shape, 1.0 / math.sqrt(shape[1]))
        t = t.to(torch.bfloat16)
        t[t.abs() < F16_MIN_NORMAL] = 0.0
        weights[name] = t.contiguous()
    return weights


def random_tokens(length: int, seed: int, vocab_size: int) -> List[int]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (length,), generator=gen).tolist()


# ---------------------------------------------------------------------------------------------
# Meta layout.
# ---------------------------------------------------------------------------------------------

def meta_ffn_dim(dim: int, multiple_of: int, multiplier: Optional[float]) -> int:
    """The hidden size Meta's model code derives from params.json."""
    hidden = int(2 * (4 * dim) / 3)
    if multiplier is not None:
        hidden = int(multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def meta_ffn_params(cfg: LlamaConfig) -> Tuple[int, Optional[float]]:
    """(multiple_of, ffn_dim_multiplier) that make Meta's formula give cfg.ffn_dim: the ones in
    the config when given (checked), else the first of a few plausible pairs that fits."""
    if cfg.multiple_of is not None:
        got = meta_ffn_dim(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier)
        if got != cfg.ffn_dim:
            raise ValueError(f"multiple_of={cfg.multiple_of} ffn_dim_multiplier="
                             f"{cfg.ffn_dim_multiplier} give ffn_dim {got}, not {cfg.ffn_dim}")
        return cfg.multiple_of, cfg.ffn_dim_multiplier
    base = int(2 * (4 * cfg.dim) / 3)
    multipliers = [None, 1.3, 1.5, 2.0, 1.0] + [round(cfg.ffn_dim / base, k) for k in range(1, 7)]
    for multiplier in multipliers:
        for multiple_of in (1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
            if meta_ffn_dim(cfg.dim, multiple_of, multiplier) == cfg.ffn_dim:
                return multiple_of, multiplier
    raise ValueError(f"no multiple_of/ffn_dim_multiplier gives ffn_dim {cfg.ffn_dim}; "
                     "give them in the config")


def meta_params(cfg: LlamaConfig, rope_factor_key: bool = True) -> dict:
    """params.json. rope_factor_key=False leaves a non-8 factor out, as Meta's own Llama 3.2
    1B/3B files do (their factor 32 is implied by the model; readers must know it)."""
    multiple_of, multiplier = meta_ffn_params(cfg)
    params = {
        "dim": cfg.dim, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads, "vocab_size": cfg.vocab_size, "multiple_of": multiple_of,
    }
    if multiplier is not None:  # Llama 2 style files leave it out altogether
        params["ffn_dim_multiplier"] = multiplier
    params["norm_eps"] = cfg.norm_eps
    params["rope_theta"] = cfg.rope_theta
    if cfg.rope_scaling_factor is not None:  # Llama 3.0 files have no use_scaled_rope at all
        params["use_scaled_rope"] = True
        if cfg.rope_scaling_factor != 8.0 and rope_factor_key:  # 8: the default in Meta's code
            params["rope_scaling_factor"] = cfg.rope_scaling_factor
    return params


# Meta's tensor-parallel split: column-parallel weights (and the vocab-parallel embedding and
# head) are cut along their rows, row-parallel ones (wo, w2) along their columns, norms copied.
_SPLIT_ROWS = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
               "feed_forward.w1.weight", "feed_forward.w3.weight", "output.weight",
               "tok_embeddings.weight")
_SPLIT_COLS = ("attention.wo.weight", "feed_forward.w2.weight")


def meta_shard_axis(name: str) -> Optional[int]:
    if name.endswith(_SPLIT_ROWS):
        return 0
    if name.endswith(_SPLIT_COLS):
        return 1
    return None


def write_meta(folder: str, cfg: LlamaConfig, weights: Dict[str, torch.Tensor],
               shards: int = 1, rope_factor_key: bool = True) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "params.json"), "w") as f:
        json.dump(meta_params(cfg, rope_factor_key), f, indent=2)
    for s in range(shards):
        state = {}
        for name, t in weights.items():
            if name == "output.weight" and cfg.tied:
                continue
            axis = meta_shard_axis(name)
            if axis is None:
                state[name] = t.clone()
                continue
            if t.shape[axis] % shards:
                raise ValueError(f"{name} {tuple(t.shape)} does not split in {shards} along {axis}")
            # clone: torch.save writes a view's whole storage, so each piece gets its own.
            state[name] = t.chunk(shards, dim=axis)[s].clone()
        if cfg.tied:
            # As Meta's tied checkpoints do: the head is the very same storage as the embedding.
            state["output.weight"] = state["tok_embeddings.weight"]
        torch.save(state, os.path.join(folder, f"consolidated.{s:02d}.pth"))


# ---------------------------------------------------------------------------------------------
# Hugging Face layout.
# ---------------------------------------------------------------------------------------------

# A decoder layer's tensors: Meta's suffix -> Hugging Face's (gate = w1, up = w3, down = w2).
HF_LAYER_SUFFIXES = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}


def hf_name(meta_name: str) -> str:
    simple = {
        "tok_embeddings.weight": "model.embed_tokens.weight",
        "norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    if meta_name in simple:
        return simple[meta_name]
    _, n, rest = meta_name.split(".", 2)
    return f"model.layers.{n}.{HF_LAYER_SUFFIXES[rest]}"


def hf_state(cfg: LlamaConfig, weights: Dict[str, torch.Tensor],
             permute: bool = True) -> Dict[str, torch.Tensor]:
    """HF-named tensors in HF's usual order; q/k rows permuted for rotate_half unless told not
    to (the negative control)."""
    state = {}
    for name, t in weights.items():
        if name == "output.weight" and cfg.tied:
            continue  # tie_word_embeddings: HF leaves lm_head out
        if permute and name.endswith("attention.wq.weight"):
            t = hf_permute(t, cfg.n_heads)
        elif permute and name.endswith("attention.wk.weight"):
            t = hf_permute(t, cfg.n_kv_heads)
        state[hf_name(name)] = t.contiguous()
    return state


_ST_DTYPES = {
    "bf16": ("BF16", torch.bfloat16, "bfloat16"),
    "f16": ("F16", torch.float16, "float16"),
    "f32": ("F32", torch.float32, "float32"),
}


def _tensor_bytes(t: torch.Tensor, dtype: torch.dtype) -> memoryview:
    """The tensor's values as raw little-endian bytes of dtype (checked to be exact)."""
    if sys.byteorder != "little":
        raise RuntimeError("writer assumes a little-endian host")
    converted = t.to(dtype).contiguous()
    if converted.dtype != t.dtype and not torch.equal(converted.to(torch.float64),
                                                      t.to(torch.float64)):
        raise ValueError(f"weights are not exactly representable as {dtype}")
    if dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        converted = converted.view(torch.int16)
    return memoryview(converted.numpy()).cast("B")


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], dtype_key: str) -> int:
    """Writes one .safetensors file; returns the bytes of tensor data written."""
    st_dtype, torch_dtype, _ = _ST_DTYPES[dtype_key]
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        raw = _tensor_bytes(t, torch_dtype)
        header[name] = {"dtype": st_dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # data starts 8-byte aligned, as writers do
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    return offset


def hf_config(cfg: LlamaConfig, dtype_key: str) -> dict:
    scaled = cfg.rope_scaling_factor is not None
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        # Llama 3.0 shipped 8192; 3.1 and later 131072.
        "max_position_embeddings": 131072 if scaled else 8192,
        "tie_word_embeddings": cfg.tied,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": cfg.rope_scaling_factor,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        } if scaled else None,
        "torch_dtype": _ST_DTYPES[dtype_key][2],
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009] if scaled else 128001,
    }


def write_hf(folder: str, cfg: LlamaConfig, weights: Dict[str, torch.Tensor],
             dtype_key: str = "bf16", shards: int = 1, permute: bool = True) -> None:
    if dtype_key not in _ST_DTYPES:
        raise ValueError(f"unknown HF dtype {dtype_key}; use one of {sorted(_ST_DTYPES)}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(cfg, dtype_key), f, indent=2)
    state = hf_state(cfg, weights, permute)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), state, dtype_key)
        return
    names = list(state)
    if shards > len(names):
        raise ValueError(f"{shards} HF shards for only {len(names)} tensors")
    # Whole tensors per file, cut by running size as HF's save_pretrained does; no file empty.
    total = sum(state[n].numel() for n in names)
    groups: List[List[str]] = [[]]
    running = 0
    for i, name in enumerate(names):
        files_left = shards - len(groups)
        if groups[-1] and files_left > 0 and (
                running >= total * len(groups) / shards or len(names) - i <= files_left):
            groups.append([])
        groups[-1].append(name)
        running += state[name].numel()
    assert len(groups) == shards
    weight_map = {}
    total_bytes = 0
    for k, group in enumerate(groups):
        file = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        total_bytes += write_safetensors(os.path.join(folder, file),
                                         {n: state[n] for n in group}, dtype_key)
        weight_map.update({n: file for n in group})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total_bytes}, "weight_map": weight_map}, f, indent=2)


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Reads back what write_safetensors wrote (for the self-check), as float32."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    kinds = {"BF16": torch.int16, "F16": torch.float16, "F32": torch.float32}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = bytearray(data[base + b:base + e])
        t = torch.frombuffer(raw, dtype=kinds[info["dtype"]]) if raw else torch.empty(0)
        if info["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.to(torch.float32).reshape(info["shape"])
    return out


# ---------------------------------------------------------------------------------------------
# GGUF layout, as llama.cpp's convert_hf_to_gguf.py writes it from the Hugging Face folder.
# ---------------------------------------------------------------------------------------------

GGUF_TYPES = {"bf16": "BF16", "f16": "F16", "f32": "F32", "q8_0": "Q8_0", "q4_0": "Q4_0"}

# general.file_type (llama.cpp's llama_ftype) of a file whose matrices are all of one type.
_GGUF_FILE_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "BF16": 32}


def gguf_name(hf: str) -> str:
    """llama.cpp's tensor name for a Hugging Face one."""
    simple = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
              "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf in simple:
        return simple[hf]
    _, _, n, rest = hf.split(".", 3)
    per_layer = {
        "self_attn.q_proj.weight": "attn_q", "self_attn.k_proj.weight": "attn_k",
        "self_attn.v_proj.weight": "attn_v", "self_attn.o_proj.weight": "attn_output",
        "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up",
        "mlp.down_proj.weight": "ffn_down", "input_layernorm.weight": "attn_norm",
        "post_attention_layernorm.weight": "ffn_norm",
    }
    return f"blk.{n}.{per_layer[rest]}.weight"


def converter_permute(w: torch.Tensor, n_head: int, n_head_kv: int) -> torch.Tensor:
    """What the converter does to q_proj (n_head, n_head) and k_proj (n_head, n_head_kv) rows:
    within each head, HF's (half h, index i) row order back to Meta's interleaved pairs (i, h)."""
    heads = n_head_kv  # the converter's rule: k_proj's heads when they differ from q's
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def converter_rope_factors(config: dict) -> torch.Tensor:
    """rope_freqs.weight for a "llama3" rope_scaling, computed as the converter does: torch
    float32 throughout (so its values can differ from a float64 computation in the last bit)."""
    rs = config["rope_scaling"]
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    freqs = 1.0 / (config["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_context = rs["original_max_position_embeddings"]
    out = []
    for freq in freqs:  # 0-d float32 tensors: the arithmetic below stays in float32
        wavelen = 2 * math.pi / freq
        if wavelen < old_context / high:
            out.append(torch.tensor(1.0))
        elif wavelen > old_context / low:
            out.append(torch.tensor(float(factor)))
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.stack(out).to(torch.float32)


def gguf_metadata(config: dict, file_type: str) -> list:
    """The llama.* and general.* keys the converter writes (no tokenizer: the reference tests
    give token ids), with its value types: u32 integers, f32 floats."""
    head_dim = config["head_dim"]
    kv = [("general.architecture", STRING, "llama"), ("general.type", STRING, "model"),
          ("general.name", STRING, "reference model"),
          ("llama.block_count", U32, config["num_hidden_layers"]),
          ("llama.context_length", U32, config["max_position_embeddings"]),
          ("llama.embedding_length", U32, config["hidden_size"]),
          ("llama.feed_forward_length", U32, config["intermediate_size"]),
          ("llama.attention.head_count", U32, config["num_attention_heads"]),
          ("llama.attention.head_count_kv", U32, config["num_key_value_heads"]),
          ("llama.rope.freq_base", F32, config["rope_theta"]),
          ("llama.attention.layer_norm_rms_epsilon", F32, config["rms_norm_eps"]),
          ("llama.attention.key_length", U32, head_dim),
          ("llama.attention.value_length", U32, head_dim),
          ("general.file_type", U32, _GGUF_FILE_TYPE[file_type]),
          ("llama.vocab_size", U32, config["vocab_size"]),
          ("llama.rope.dimension_count", U32, head_dim)]
    if file_type in ("Q8_0", "Q4_0"):
        kv.append(("general.quantization_version", U32, 2))
    return kv


def write_gguf(path: str, cfg: LlamaConfig, weights: Dict[str, torch.Tensor],
               dtype_key: str = "bf16", undo_permute: bool = True) -> None:
    """A GGUF file made the way llama.cpp's converter makes one from our Hugging Face folder:
    from the HF tensors (q/k rows in HF's order) and config.json, q/k rows permuted back to
    Meta's order (unless undo_permute=False: the negative control), llama.cpp's names, dims
    innermost first, matrices in `dtype_key` (q8_0/q4_0 with ggml's reference rounding), 1-D
    tensors in F32, rope_freqs.weight for a Llama 3.1 scaled model."""
    type_name = GGUF_TYPES[dtype_key]
    config = hf_config(cfg, "bf16")
    writer = GgufWriter()
    for key, vtype, value in gguf_metadata(config, type_name):
        writer.add(key, vtype, value)
    if config["rope_scaling"] is not None:
        factors = converter_rope_factors(config)
        writer.add_tensor("rope_freqs.weight", "F32", (len(factors),), encode(factors.numpy(), "F32"))
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    for name, t in hf_state(cfg, weights).items():
        if undo_permute and name.endswith("q_proj.weight"):
            t = converter_permute(t, n_head, n_head)
        elif undo_permute and name.endswith("k_proj.weight"):
            t = converter_permute(t, n_head, n_kv)
        values = t.to(torch.float32).numpy()
        tensor_type = type_name if t.dim() == 2 else "F32"
        writer.add_tensor(gguf_name(name), tensor_type, tuple(reversed(t.shape)), encode(values, tensor_type))
    writer.write(path)


def gguf_held_weights(cfg: LlamaConfig, weights: Dict[str, torch.Tensor],
                      dtype_key: str) -> Dict[str, torch.Tensor]:
    """The weights as a GGUF of `dtype_key` holds them: every matrix through the type's encoding
    and back (float32; rows are encoded independently, so Meta's row order gives the same
    values as the file's), norms unchanged."""
    type_name = GGUF_TYPES[dtype_key]
    out = {}
    for name, t in weights.items():
        if t.dim() == 2:
            raw = encode(t.to(torch.float32).numpy(), type_name)
            t = torch.from_numpy(decode(raw, type_name, tuple(t.shape)))
        out[name] = t
    return out

"""An independent float64 Llama 3 forward pass, written from the architecture description.

It is the yardstick the C++ engine is tested against, so it favours being obviously right over
being fast: every position is recomputed from scratch (no KV cache), everything runs in float64,
and each step of the block is a separate, named function.

Weights use Meta's names (tok_embeddings.weight, layers.N.attention.wq.weight, ...), with every
linear weight stored [out_features, in_features] as torch's nn.Linear does.

Run with Debian's interpreter (/usr/bin/python3), which has torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

# Llama 3.1 frequency scaling constants (the released models all use these values; only the
# factor differs: 8 for 3.1, 32 for 3.2 1B/3B).
LOW_FREQ_FACTOR = 1.0
HIGH_FREQ_FACTOR = 4.0
ORIGINAL_MAX_POSITIONS = 8192


@dataclass
class LlamaConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    ffn_dim: int
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    # None: Llama 3.0 (no frequency scaling). A number: Llama 3.1 scaling with that factor.
    rope_scaling_factor: Optional[float] = None
    tied: bool = False
    # Only used to describe ffn_dim in params.json (Meta derives the hidden size from them).
    multiple_of: Optional[int] = None
    ffn_dim_multiplier: Optional[float] = None

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def validate(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ValueError(f"bad model config: {what} ({self})")

        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "ffn_dim"):
            need(getattr(self, name) > 0, f"{name} must be positive")
        need(self.dim % self.n_heads == 0, "dim must be a multiple of n_heads")
        need(self.head_dim % 2 == 0, "head_dim must be even (RoPE rotates pairs)")
        need(self.n_heads % self.n_kv_heads == 0, "n_heads must be a multiple of n_kv_heads")
        need(self.norm_eps > 0, "norm_eps must be positive")
        need(self.rope_theta > 0, "rope_theta must be positive")
        need(self.rope_scaling_factor is None or self.rope_scaling_factor > 0,
             "rope_scaling_factor must be positive or null")

    @staticmethod
    def from_dict(d: dict) -> "LlamaConfig":
        known = {
            "dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "ffn_dim", "norm_eps",
            "rope_theta", "rope_scaling_factor", "tied", "multiple_of", "ffn_dim_multiplier",
        }
        unknown = set(d) - known - {"rope_scaling"}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        args = {k: v for k, v in d.items() if k in known}
        if "rope_scaling" in d:  # accepted as a synonym: a number or null
            args["rope_scaling_factor"] = d["rope_scaling"]
        if "n_kv_heads" not in args and "n_heads" in args:
            args["n_kv_heads"] = args["n_heads"]
        cfg = LlamaConfig(**args)
        if cfg.rope_scaling_factor is not None:
            cfg.rope_scaling_factor = float(cfg.rope_scaling_factor)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return {
            "dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads, "vocab_size": self.vocab_size, "ffn_dim": self.ffn_dim,
            "norm_eps": self.norm_eps, "rope_theta": self.rope_theta,
            "rope_scaling_factor": self.rope_scaling_factor, "tied": self.tied,
        }


# ---------------------------------------------------------------------------------------------
# The pieces of the block.
# ---------------------------------------------------------------------------------------------

def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps) * w over the last axis."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def rope_frequencies(cfg: LlamaConfig) -> torch.Tensor:
    """Angular frequency of each rotated pair i: theta^(-2i/head_dim), then Llama 3.1 scaling.

    Returns float64 [head_dim / 2].
    """
    half = cfg.head_dim // 2
    i = torch.arange(half, dtype=torch.float64)
    freqs = cfg.rope_theta ** (-2.0 * i / cfg.head_dim)
    if cfg.rope_scaling_factor is None:
        return freqs
    factor = cfg.rope_scaling_factor
    low_wavelen = ORIGINAL_MAX_POSITIONS / LOW_FREQ_FACTOR    # longer than this: fully scaled
    high_wavelen = ORIGINAL_MAX_POSITIONS / HIGH_FREQ_FACTOR  # shorter than this: unchanged
    scaled = []
    for f in freqs.tolist():
        wavelen = 2.0 * math.pi / f
        if wavelen < high_wavelen:
            scaled.append(f)
        elif wavelen > low_wavelen:
            scaled.append(f / factor)
        else:
            smooth = (ORIGINAL_MAX_POSITIONS / wavelen - LOW_FREQ_FACTOR) / (
                HIGH_FREQ_FACTOR - LOW_FREQ_FACTOR)
            scaled.append((1.0 - smooth) * f / factor + smooth * f)
    return torch.tensor(scaled, dtype=torch.float64)


def rope_angles(cfg: LlamaConfig, positions: torch.Tensor) -> torch.Tensor:
    """Angle pos * freq_i for each position and pair: float64 [T, head_dim / 2]."""
    return positions.to(torch.float64)[:, None] * rope_frequencies(cfg)[None, :]


def apply_rope_interleaved(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Meta's convention: rotate the pairs (x[2i], x[2i+1]) of each head by angles[:, i].

    x: [T, n_heads, head_dim]; angles: [T, head_dim / 2].
    """
    cos = torch.cos(angles)[:, None, :]
    sin = torch.sin(angles)[:, None, :]
    a = x[..., 0::2]
    b = x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def apply_rope_half(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Hugging Face's convention: rotate the pairs (x[i], x[i + head_dim/2]).

    Used only by the self-check, which proves that HF's q/k row permutation turns one
    convention into the other.
    """
    half = x.shape[-1] // 2
    cos = torch.cos(angles)[:, None, :]
    sin = torch.sin(angles)[:, None, :]
    a = x[..., :half]
    b = x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v with a causal mask, grouped-query.

    q: [T, n_heads, hd]; k, v: [T, n_kv_heads, hd]. Query head h reads kv head
    h // (n_heads / n_kv_heads): each kv head serves that many consecutive query heads.
    Returns [T, n_heads, hd].
    """
    seq, n_heads, head_dim = q.shape
    group = n_heads // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim)  # [H, T, S]
    future = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("hts,shd->thd", probs, v)


def silu(x: torch.Tensor) -> torch.Tensor:
    return x / (1.0 + torch.exp(-x))


def quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """The values an int8 activation quantizer keeps: per block of 32 along the last axis,
    d = max|x| / 127 and x -> d * round_half_even(x / d) (an all-zero block stays zero)."""
    blocks = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
    d = blocks.abs().amax(dim=-1, keepdim=True) / 127.0
    q = torch.round(blocks / torch.where(d == 0, torch.ones_like(d), d)).clamp(-127, 127)
    return (q * d).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------------------------

@dataclass
class LlamaReference:
    """A Llama 3 model over Meta-named weights (any float dtype; math runs in float64).

    rope_style is "interleaved" (Meta's weights) or "half" (HF-permuted q/k weights), which must
    give the same numbers; the engine is compared against the default.
    kv_round: None, or a dtype (torch.bfloat16) that keys (after RoPE) and values are rounded to,
    through float32, before attention: what an engine with a bf16 KV cache computes.
    act_quant: round the input of every matrix product (q/k/v, wo, w1/w3, w2 and the LM head) to
    int8 blocks as quantize_activations does: what an engine computes whose products with 8- or
    4-bit weights take int8 activations.
    """
    cfg: LlamaConfig
    weights: Dict[str, torch.Tensor]
    rope_style: str = "interleaved"
    kv_round: Optional[torch.dtype] = None
    act_quant: bool = False
    _f64: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.cfg.validate()
        if self.rope_style not in ("interleaved", "half"):
            raise ValueError(f"unknown rope_style {self.rope_style}")
        self._check_shapes()

    def _check_shapes(self) -> None:
        c = self.cfg
        kv = c.n_kv_heads * c.head_dim
        want = {"tok_embeddings.weight": (c.vocab_size, c.dim), "norm.weight": (c.dim,)}
        if not c.tied:
            want["output.weight"] = (c.vocab_size, c.dim)
        for n in range(c.n_layers):
            p = f"layers.{n}."
            want.update({
                p + "attention.wq.weight": (c.dim, c.dim),
                p + "attention.wk.weight": (kv, c.dim),
                p + "attention.wv.weight": (kv, c.dim),
                p + "attention.wo.weight": (c.dim, c.dim),
                p + "feed_forward.w1.weight": (c.ffn_dim, c.dim),
                p + "feed_forward.w2.weight": (c.dim, c.ffn_dim),
                p + "feed_forward.w3.weight": (c.ffn_dim, c.dim),
                p + "attention_norm.weight": (c.dim,),
                p + "ffn_norm.weight": (c.dim,),
            })
        for name, shape in want.items():
            if name not in self.weights:
                raise ValueError(f"missing weight {name}")
            if tuple(self.weights[name].shape) != shape:
                raise ValueError(f"weight {name} has shape {tuple(self.weights[name].shape)}, "
                                 f"expected {shape}")

    def w(self, name: str) -> torch.Tensor:
        """A layer weight in float64 (cached; the embedding and LM head are never cached whole)."""
        if name not in self._f64:
            self._f64[name] = self.weights[name].to(torch.float64)
        return self._f64[name]

    def _lm_head_matrix(self) -> torch.Tensor:
        return self.weights["tok_embeddings.weight" if self.cfg.tied else "output.weight"]

    def block(self, layer: int, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """One transformer block: x [T, dim] float64 -> [T, dim]."""
        c = self.cfg
        p = f"layers.{layer}."
        seq = x.shape[0]
        h = self._act(rms_norm(x, self.w(p + "attention_norm.weight"), c.norm_eps))
        q = (h @ self.w(p + "attention.wq.weight").T).view(seq, c.n_heads, c.head_dim)
        k = (h @ self.w(p + "attention.wk.weight").T).view(seq, c.n_kv_heads, c.head_dim)
        v = (h @ self.w(p + "attention.wv.weight").T).view(seq, c.n_kv_heads, c.head_dim)
        rope = apply_rope_interleaved if self.rope_style == "interleaved" else apply_rope_half
        q = rope(q, angles)
        k = rope(k, angles)
        if self.kv_round is not None:
            k = k.to(torch.float32).to(self.kv_round).to(torch.float64)
            v = v.to(torch.float32).to(self.kv_round).to(torch.float64)
        attn = causal_attention(q, k, v).reshape(seq, c.dim)
        x = x + self._act(attn) @ self.w(p + "attention.wo.weight").T
        h = self._act(rms_norm(x, self.w(p + "ffn_norm.weight"), c.norm_eps))
        gate = silu(h @ self.w(p + "feed_forward.w1.weight").T)
        up = h @ self.w(p + "feed_forward.w3.weight").T
        return x + self._act(gate * up) @ self.w(p + "feed_forward.w2.weight").T

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_activations(x) if self.act_quant else x

    def hidden(self, tokens: Sequence[int]) -> torch.Tensor:
        """Final-normed hidden states for every position: float64 [T, dim]."""
        c = self.cfg
        if len(tokens) == 0:
            raise ValueError("empty token list")
        for t in tokens:
            if not 0 <= t < c.vocab_size:
                raise ValueError(f"token {t} outside vocabulary of {c.vocab_size}")
        ids = torch.tensor(list(tokens), dtype=torch.long)
        x = self.weights["tok_embeddings.weight"][ids].to(torch.float64)
        angles = rope_angles(c, torch.arange(len(tokens)))
        for layer in range(c.n_layers):
            x = self.block(layer, x, angles)
        return rms_norm(x, self.w("norm.weight"), c.norm_eps)

    def logits(self, hidden: torch.Tensor, rows: int = 16384) -> torch.Tensor:
        """LM head: [T, dim] float64 -> [T, vocab] float64, converting the matrix in slices so
        a 128k-vocabulary head never exists whole in float64."""
        head = self._lm_head_matrix()
        hidden = self._act(hidden)
        parts = [hidden @ head[i:i + rows].to(torch.float64).T
                 for i in range(0, head.shape[0], rows)]
        return torch.cat(parts, dim=1)

    def forward(self, tokens: Sequence[int]) -> torch.Tensor:
        """Logits at every position: float64 [T, vocab]."""
        return self.logits(self.hidden(tokens))

    def greedy(self, tokens: Sequence[int], count: int,
               prompt_last_logits: Optional[torch.Tensor] = None) -> List[dict]:
        """Greedy continuation by full recomputation of the whole sequence at every step.

        prompt_last_logits: forward(tokens)[-1] when the caller has it already (the first step
        would recompute exactly that). Returns one {"token", "margin"} per step; margin is
        top1 - top2 of that step's logits, so a test can tell a decisive choice from a near tie.
        """
        seq = list(tokens)
        steps = []
        for step in range(count):
            if step == 0 and prompt_last_logits is not None:
                last = prompt_last_logits
            else:
                last = self.logits(self.hidden(seq)[-1:])[0]
            token, margin = top1_and_margin(last)
            steps.append({"token": token, "margin": margin})
            seq.append(token)
        return steps


def top1_and_margin(row: torch.Tensor) -> tuple:
    """argmax of a logits row and its lead over the runner-up."""
    top = torch.topk(row, 2)
    return int(top.indices[0]), float(top.values[0] - top.values[1])


# ---------------------------------------------------------------------------------------------
# Hugging Face's q/k row permutation.
# ---------------------------------------------------------------------------------------------

def hf_permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta -> HF rows of wq (n_heads) or wk (n_kv_heads), as convert_llama_weights_to_hf.py does.

    Within each head, Meta's row order is (pair i, element j) -> 2i + j; HF's is j * hd/2 + i, so
    HF's rotate_half pairs (x[i], x[i + hd/2]) are Meta's pairs (x[2i], x[2i+1]).
    """
    rows, cols = w.shape
    head_dim = rows // n_heads
    return w.reshape(n_heads, head_dim // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def hf_unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """HF -> Meta rows (the inverse of hf_permute)."""
    rows, cols = w.shape
    head_dim = rows // n_heads
    return w.reshape(n_heads, 2, head_dim // 2, cols).transpose(1, 2).reshape(rows, cols)

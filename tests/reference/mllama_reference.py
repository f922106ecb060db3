"""An independent float64 forward pass of Llama 3.2 Vision (mllama), written from Meta's reference
(meta-llama/llama-models, models/llama3/multimodal/model.py, encoder_utils.py, chat_format.py).

It is the yardstick the C++ engine is tested against, so it favours being obviously right over
being fast: one image at a time, everything in float64, one named function per step. Where Meta's
code has a quirk, this file reproduces it and says so (search for "Meta:").

Weights use the names of Meta's multimodal checkpoint (text_model.*, vision_model.*), every
linear weight [out_features, in_features] as torch's nn.Linear stores it. The text model's
self-attention layers are run by llama_reference.LlamaReference over the text_model.* weights.

The model, step by step:
  image tiles [max_tiles, 3, T, T] (the image's tiles, then zero tiles up to max_tiles: Meta
  stacks every image to max_num_chunks) and its aspect ratio (tiles_h, tiles_w)
  -> patch_embedding (conv as unfold + matmul, no bias)           [max_tiles, patches, width]
  -> tile_position_embedding (pre, gated by tanh)
  -> add_class_token                                               [max_tiles, ntok, width]
  -> add_positional_embedding (pos * (1 - tanh g) + tile-specific gated pos * tanh g)
  -> layer_norm (ln_pre) -> pad_tokens (to a multiple of 8)        [max_tiles, npadded, width]
  -> local transformer over all max_tiles * npadded tokens at once, with the encoder mask;
     keeps the input of each listed intermediate layer
  -> layer_norm (ln_post) -> tile_position_embedding (post) -> global transformer (gated blocks)
  -> drop pad tokens -> concat [final, intermediates interleaved]  [max_tiles, ntok, width*(1+k)]
  -> vision_projection (with bias)                                 [max_tiles, ntok, dim]
  text: embed (ids >= vocab_size read learnable_embedding) -> for each self-attention layer i:
  the cross-attention block scheduled before it (if any), then the Llama 3 block -> norm -> head.

Run with Debian's interpreter (/usr/bin/python3), which has torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from llama_reference import LlamaConfig, LlamaReference, rms_norm, rope_angles

# Meta's vision LayerNorm is torch's nn.LayerNorm with its default eps.
VISION_LN_EPS = 1e-5
# Rows of text_model.learnable_embedding: max(model-parallel world size, 8) in Meta's code.
LEARNABLE_EMBEDDINGS = 8


@dataclass
class MllamaConfig:
    # Text model (Meta's params.json keys, ffn_dim given directly).
    dim: int = 128
    n_layers: int = 3          # self-attention layers
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 512
    ffn_dim: int = 384
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling_factor: Optional[float] = 8.0   # None: no Llama 3.1 frequency scaling
    n_cross_layers: int = 1
    multiple_of: Optional[int] = None            # only to describe ffn_dim in params.json
    ffn_dim_multiplier: Optional[float] = None
    # Vision encoder (Meta hard-codes 1280 / 32 / 8 / 16 / 14 / [3, 7, 15, 23, 30] / 5120).
    vision_width: int = 64
    vision_layers: int = 3
    vision_global_layers: int = 1
    vision_heads: int = 4
    vision_patch_size: int = 14
    vision_tile_size: int = 56                   # params.json vision_chunk_size
    vision_max_tiles: int = 4                    # params.json vision_max_num_chunks
    vision_intermediate_layers: List[int] = field(default_factory=lambda: [1, 2])
    vision_ffn: Optional[int] = None             # None: 4 * vision_width (Meta's mlp_ratio 4)

    KEYS = ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "ffn_dim", "norm_eps",
            "rope_theta", "rope_scaling_factor", "n_cross_layers", "multiple_of",
            "ffn_dim_multiplier", "vision_width", "vision_layers", "vision_global_layers",
            "vision_heads", "vision_patch_size", "vision_tile_size", "vision_max_tiles",
            "vision_intermediate_layers", "vision_ffn")

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def vision_head_dim(self) -> int:
        return self.vision_width // self.vision_heads

    @property
    def vision_ffn_dim(self) -> int:
        return self.vision_ffn if self.vision_ffn is not None else int(4.0 * self.vision_width)

    @property
    def patches_per_side(self) -> int:
        return self.vision_tile_size // self.vision_patch_size

    @property
    def patches_per_tile(self) -> int:
        return self.patches_per_side ** 2

    @property
    def tokens_per_tile(self) -> int:
        """Patches plus the class token."""
        return self.patches_per_tile + 1

    @property
    def pad_tokens(self) -> int:
        """Meta's expand_num_tokens_to_mult8: 8 - (ntok % 8), which is 8 (not 0) when ntok is
        already a multiple of 8 (HF pads (8 - ntok % 8) % 8). No square grid makes ntok = g*g + 1
        a multiple of 8 (squares are 0, 1 or 4 mod 8), so the two never differ in practice."""
        return 8 - (self.tokens_per_tile % 8)

    @property
    def padded_tokens_per_tile(self) -> int:
        return self.tokens_per_tile + self.pad_tokens

    @property
    def vision_output_dim(self) -> int:
        return self.vision_width * (1 + len(self.vision_intermediate_layers))

    @property
    def image_token_id(self) -> int:
        """The id the model sees for an image (128256 in the released model): the first row of
        learnable_embedding."""
        return self.vocab_size

    def fusion_schedule(self) -> List[int]:
        """Meta's _init_fusion_schedule: the self-attention layer indices before which the
        cross-attention blocks 0, 1, ... run. Spread uniformly, counted back from the last layer:
        llama_layers[::-1][::k][:n][::-1] with k = ceil(n_layers / n_cross_layers)."""
        layers = list(range(self.n_layers))
        k = math.ceil(len(layers) / self.n_cross_layers)
        return layers[::-1][::k][:self.n_cross_layers][::-1]

    def text_config(self) -> LlamaConfig:
        return LlamaConfig(dim=self.dim, n_layers=self.n_layers, n_heads=self.n_heads,
                           n_kv_heads=self.n_kv_heads, vocab_size=self.vocab_size,
                           ffn_dim=self.ffn_dim, norm_eps=self.norm_eps,
                           rope_theta=self.rope_theta,
                           rope_scaling_factor=self.rope_scaling_factor, tied=False,
                           multiple_of=self.multiple_of,
                           ffn_dim_multiplier=self.ffn_dim_multiplier)

    def validate(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ValueError(f"bad mllama config: {what}")

        self.text_config().validate()
        for name in ("n_cross_layers", "vision_width", "vision_layers", "vision_heads",
                     "vision_patch_size", "vision_tile_size", "vision_max_tiles"):
            need(getattr(self, name) > 0, f"{name} must be positive")
        need(self.vision_global_layers >= 0, "vision_global_layers must be >= 0")
        need(self.n_cross_layers <= self.n_layers, "n_cross_layers must be <= n_layers")
        # Meta places cross layer j before self layer schedule[j]; HF's converter computes the
        # interleaved positions with its own formula, which agrees only when n_cross_layers
        # divides n_layers (as 32 / 8 and 100 / 20 do). Other shapes have no HF file that means
        # the same model, so they are refused.
        need(self.n_layers % self.n_cross_layers == 0,
             "n_cross_layers must divide n_layers (else HF's converter places the cross-attention"
             " layers elsewhere than Meta's fusion schedule)")
        need(self.vision_width % self.vision_heads == 0, "vision_width % vision_heads != 0")
        need(self.vision_tile_size % self.vision_patch_size == 0,
             "vision_tile_size must be a multiple of vision_patch_size")
        ints = self.vision_intermediate_layers
        need(all(0 <= i < self.vision_layers for i in ints),
             "vision_intermediate_layers must lie in [0, vision_layers)")
        need(list(ints) == sorted(set(ints)),
             "vision_intermediate_layers must be strictly increasing (Meta stacks them in layer "
             "order whatever the list order)")
        need(self.vision_ffn_dim > 0, "vision_ffn must be positive")

    @staticmethod
    def from_dict(d: dict) -> "MllamaConfig":
        unknown = set(d) - set(MllamaConfig.KEYS)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        cfg = MllamaConfig(**d)
        if "n_kv_heads" not in d and "n_heads" in d:
            cfg.n_kv_heads = cfg.n_heads
        if cfg.rope_scaling_factor is not None:
            cfg.rope_scaling_factor = float(cfg.rope_scaling_factor)
        cfg.vision_intermediate_layers = [int(i) for i in cfg.vision_intermediate_layers]
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.KEYS}
        d["vision_intermediate_layers"] = list(self.vision_intermediate_layers)
        d["vision_ffn"] = self.vision_ffn_dim
        return d


def meta_weight_shapes(cfg: MllamaConfig) -> List[Tuple[str, Tuple[int, ...]]]:
    """Every tensor of Meta's multimodal checkpoint with its shape, in a fixed order (the order
    random numbers are drawn in). Names and shapes follow the modules of
    models/llama3/multimodal/model.py (CrossAttentionTransformer)."""
    c = cfg
    kv = c.n_kv_heads * c.head_dim
    w = c.vision_width
    tiles = c.vision_max_tiles
    shapes: List[Tuple[str, Tuple[int, ...]]] = []
    # --- vision_model ---
    v = "vision_model.vision_encoder."
    shapes += [
        # ColumnParallelConv2dPatch keeps the conv as a linear over the unfolded patch:
        # [width, 3 * p * p], input index c * p * p + i * p + j (torch.nn.Unfold's order).
        (v + "conv1._linear.weight", (w, 3 * c.vision_patch_size ** 2)),
        (v + "class_embedding", (w,)),
        (v + "positional_embedding", (c.tokens_per_tile, w)),
        (v + "gated_positional_embedding", (tiles, tiles, c.tokens_per_tile, w)),
        (v + "gated_positional_embedding_gate", (1,)),
        (v + "pre_tile_pos_embed.embedding", (tiles, tiles, 1, w)),
        (v + "pre_tile_pos_embed.gate", (1,)),
        (v + "post_tile_pos_embed.embedding", (tiles, tiles, 1, w)),
        (v + "post_tile_pos_embed.gate", (1,)),
        (v + "ln_pre.weight", (w,)), (v + "ln_pre.bias", (w,)),
        (v + "ln_post.weight", (w,)), (v + "ln_post.bias", (w,)),
    ]
    for stack, count in (("transformer", c.vision_layers),
                         ("global_transformer", c.vision_global_layers)):
        for n in range(count):
            p = f"{v}{stack}.resblocks.{n}."
            shapes += [
                (p + "attn.wq.weight", (w, w)), (p + "attn.wk.weight", (w, w)),
                (p + "attn.wv.weight", (w, w)), (p + "attn.wo.weight", (w, w)),
                (p + "ln_1.weight", (w,)), (p + "ln_1.bias", (w,)),
                (p + "mlp.c_fc.weight", (c.vision_ffn_dim, w)),
                (p + "mlp.c_fc.bias", (c.vision_ffn_dim,)),
                (p + "mlp.c_proj.weight", (w, c.vision_ffn_dim)), (p + "mlp.c_proj.bias", (w,)),
                (p + "ln_2.weight", (w,)), (p + "ln_2.bias", (w,)),
            ]
            if stack == "global_transformer":
                shapes += [(p + "gate_attn", (1,)), (p + "gate_ffn", (1,))]
    shapes += [
        ("vision_model.vision_projection.weight", (c.dim, c.vision_output_dim)),
        ("vision_model.vision_projection.bias", (c.dim,)),
    ]
    # --- text_model ---
    t = "text_model."
    shapes += [
        (t + "tok_embeddings.weight", (c.vocab_size, c.dim)),
        (t + "learnable_embedding.weight", (LEARNABLE_EMBEDDINGS, c.dim)),
    ]
    for n in range(c.n_layers):
        p = f"{t}layers.{n}."
        shapes += [
            (p + "attention.wq.weight", (c.dim, c.dim)),
            (p + "attention.wk.weight", (kv, c.dim)),
            (p + "attention.wv.weight", (kv, c.dim)),
            (p + "attention.wo.weight", (c.dim, c.dim)),
            (p + "feed_forward.w1.weight", (c.ffn_dim, c.dim)),
            (p + "feed_forward.w2.weight", (c.dim, c.ffn_dim)),
            (p + "feed_forward.w3.weight", (c.ffn_dim, c.dim)),
            (p + "attention_norm.weight", (c.dim,)),
            (p + "ffn_norm.weight", (c.dim,)),
        ]
    for n in range(c.n_cross_layers):
        p = f"{t}cross_attention_layers.{n}."
        shapes += [
            (p + "gate_attn", (1,)),
            (p + "attention.wq.weight", (c.dim, c.dim)),
            (p + "attention.wk.weight", (kv, c.dim)),
            (p + "attention.wv.weight", (kv, c.dim)),
            (p + "attention.wo.weight", (c.dim, c.dim)),
            (p + "attention.q_norm.weight", (c.head_dim,)),
            (p + "attention.k_norm.weight", (c.head_dim,)),
            (p + "attention_norm.weight", (c.dim,)),
            (p + "gate_ffwd", (1,)),
            (p + "feed_forward.w1.weight", (c.ffn_dim, c.dim)),
            (p + "feed_forward.w2.weight", (c.dim, c.ffn_dim)),
            (p + "feed_forward.w3.weight", (c.ffn_dim, c.dim)),
            (p + "ffn_norm.weight", (c.dim,)),
        ]
    shapes += [(t + "norm.weight", (c.dim,)), (t + "output.weight", (c.vocab_size, c.dim))]
    return shapes


# ---------------------------------------------------------------------------------------------
# Behaviour switches: Meta's semantics by default; the others are the negative controls.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    # "meta": a text row that sees no image gets neither cross-attention output nor MLP.
    # "hf": transformers' MllamaCrossAttentionDecoderLayer: such a row attends to every vision
    #       token (its mask row is all zeros) and keeps that attention output; only the MLP is
    #       zeroed (transformers issue #39379).
    row_mask: str = "meta"
    # "tanh": every gate is used as tanh(gate); "identity": used raw (a control).
    gate: str = "tanh"
    # "meta": create_vision_mask's spans; "all_preceding": row t sees every image whose token is
    #         at or before t (a control).
    image_visibility: str = "meta"
    # "meta": build_encoder_attention_mask (masked only where query AND key are padding or
    #         empty-tile tokens); "strict": every query ignores padding and empty-tile keys.
    encoder_mask: str = "meta"
    # "interleaved": torch.stack(intermediates, dim=-1).flatten: feature d*k + i;
    # "blocked": layer-major concatenation (a control).
    intermediate_layout: str = "interleaved"


META = Variant()


# ---------------------------------------------------------------------------------------------
# Vision encoder pieces (x float64).
# ---------------------------------------------------------------------------------------------

def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               eps: float = VISION_LN_EPS) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) * w + b over the last axis, biased variance."""
    mean = x.mean(dim=-1, keepdim=True)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact (erf) GELU of torch's nn.GELU()."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def patch_embedding(tiles: torch.Tensor, weight: torch.Tensor, patch: int) -> torch.Tensor:
    """Meta's ColumnParallelConv2dPatch: unfold each tile into non-overlapping patch x patch
    blocks, row-major over the patch grid, each flattened as (channel, row, column), then a
    linear map without bias. tiles [n, 3, T, T]; weight [width, 3 * patch * patch].
    Returns [n, (T / patch)^2, width]."""
    n, channels, size, _ = tiles.shape
    grid = size // patch
    blocks = tiles.reshape(n, channels, grid, patch, grid, patch)
    blocks = blocks.permute(0, 2, 4, 1, 3, 5)  # [n, grid_row, grid_col, channel, i, j]
    blocks = blocks.reshape(n, grid * grid, channels * patch * patch)
    return blocks @ weight.T


def tile_position_embedding(x: torch.Tensor, table: torch.Tensor, gate: float,
                            aspect: Tuple[int, int]) -> torch.Tensor:
    """Meta's TilePositionEmbedding: tile k < tiles_h * tiles_w (row-major over the tile grid)
    gets table[k // tiles_w, k % tiles_w] * gate on every token; empty tiles get nothing.
    x [max_tiles, tokens, width]; table [max_tiles, max_tiles, 1, width]."""
    tiles_h, tiles_w = aspect
    count = tiles_h * tiles_w
    embed = table[:tiles_h, :tiles_w].reshape(count, 1, table.shape[-1])
    out = x.clone()
    out[:count] = out[:count] + embed * gate
    return out


def add_class_token(x: torch.Tensor, class_embedding: torch.Tensor) -> torch.Tensor:
    """Prepends the class embedding to every tile: [n, P, w] -> [n, P + 1, w]."""
    cls = class_embedding.expand(x.shape[0], 1, x.shape[-1])
    return torch.cat([cls, x], dim=1)


def add_positional_embedding(x: torch.Tensor, positional: torch.Tensor, gated: torch.Tensor,
                             gate: float, aspect: Tuple[int, int]) -> torch.Tensor:
    """Meta's apply_positional_embedding: every tile (empty ones too) gets
    positional * (1 - gate); tile k of the image's grid also gets gated[k // tiles_w,
    k % tiles_w] * gate. x [max_tiles, ntok, w]; positional [ntok, w]; gated [T, T, ntok, w]."""
    tiles_h, tiles_w = aspect
    count = tiles_h * tiles_w
    out = x + positional * (1.0 - gate)
    per_tile = gated[:tiles_h, :tiles_w].reshape(count, *gated.shape[2:])
    out[:count] = out[:count] + per_tile * gate
    return out


def pad_tokens(x: torch.Tensor, count: int) -> torch.Tensor:
    """Appends `count` zero tokens to every tile: [n, ntok, w] -> [n, ntok + count, w]."""
    zeros = torch.zeros(x.shape[0], count, x.shape[-1], dtype=x.dtype)
    return torch.cat([x, zeros], dim=1)


def encoder_attention_mask(aspect: Tuple[int, int], max_tiles: int, tokens: int, padded: int,
                           style: str = "meta") -> torch.Tensor:
    """Which (query, key) pairs of the local and global transformers may attend: bool [L, L]
    with L = max_tiles * padded, token index = tile * padded + token.

    Meta's build_encoder_attention_mask marks a token "real" when it is one of the first `tokens`
    (class + patches) of one of the image's tiles_h * tiles_w tiles; padding tokens and every
    token of the empty stacked tiles are not. It then masks m m^T: only pairs where BOTH are not
    real. So real queries attend to padding and empty-tile tokens too, and the others attend
    only to real tokens."""
    tiles_h, tiles_w = aspect
    real = torch.zeros(max_tiles, padded, dtype=torch.bool)
    real[:tiles_h * tiles_w, :tokens] = True
    real = real.reshape(-1)
    if style == "meta":
        return real[:, None] | real[None, :]
    if style == "strict":
        return real[None, :].expand(real.numel(), real.numel()).clone()
    raise ValueError(f"unknown encoder mask style {style}")


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     allowed: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd) where allowed) v. q [Lq, H, hd]; k, v [Lk, H, hd];
    allowed bool [Lq, Lk], every row with at least one True. Returns [Lq, H, hd]."""
    if not bool(allowed.any(dim=-1).all()):
        raise ValueError("an attention row with nothing to attend to")
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed[None], float("-inf"))
    return torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v)


# ---------------------------------------------------------------------------------------------
# Cross-attention mask (chat_format.create_vision_mask + model._pad_masks).
# ---------------------------------------------------------------------------------------------

def image_spans(tokens: Sequence[int], image_token_id: int) -> List[Tuple[int, int]]:
    """The text rows [start, end) that see each image, in image order, for a sequence of
    len(tokens) (Meta: create_vision_mask on the prompt, then _pad_masks with total_len =
    len(tokens)):
      - one image: from its token to the end;
      - several: each from its token up to (not including) the next image token, the last to
        the end;
      - a run of consecutive image tokens: each extends to the end of the span that follows the
        run (the text after the run), walking from the back.
    Meta: during generation total_len exceeds the prompt, and with two or more images the last
    span still ends at len(prompt) (only a single image's -1 means "to the end"), so Meta's
    generated tokens then see no image; this file only runs whole sequences."""
    locs = [i for i, t in enumerate(tokens) if t == image_token_id]
    total = len(tokens)
    if not locs:
        return []
    if len(locs) == 1:
        return [(locs[0], total)]  # [loc, -1]: -1 becomes total_len in _pad_masks
    spans = [[a, b] for a, b in zip(locs[:-1], locs[1:])] + [[locs[-1], total]]
    last_end = spans[-1][1]
    for span in reversed(spans):
        if span[0] == span[1] - 1:
            span[1] = last_end
        last_end = span[1]
    return [(a, min(b, total)) for a, b in spans]


def cross_attention_visibility(tokens: Sequence[int], image_token_id: int, tiles: List[int],
                               max_tiles: int, tokens_per_tile: int,
                               style: str = "meta") -> torch.Tensor:
    """bool [T, n_images * max_tiles * tokens_per_tile]: which vision tokens each text row may
    attend to (vision token order: image, tile, token). A row sees all tokens of the real tiles
    of the images whose span holds it; empty stacked tiles are never visible."""
    n_images = len(tiles)
    seen = torch.zeros(len(tokens), n_images, max_tiles, tokens_per_tile, dtype=torch.bool)
    if style == "meta":
        spans = image_spans(tokens, image_token_id)
    elif style == "all_preceding":
        locs = [i for i, t in enumerate(tokens) if t == image_token_id]
        spans = [(loc, len(tokens)) for loc in locs]
    else:
        raise ValueError(f"unknown image visibility style {style}")
    if len(spans) != n_images:
        raise ValueError(f"{len(spans)} image tokens but {n_images} images")
    for image, (start, end) in enumerate(spans):
        seen[start:end, image, :tiles[image], :] = True
    return seen.reshape(len(tokens), -1)


# ---------------------------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------------------------

@dataclass
class ImageInput:
    """One preprocessed image: its tiles [n_tiles, 3, T, T] (any float dtype) and
    (tiles_h, tiles_w) with n_tiles = tiles_h * tiles_w."""
    tiles: torch.Tensor
    aspect: Tuple[int, int]


class MllamaReference:
    def __init__(self, cfg: MllamaConfig, weights: Dict[str, torch.Tensor],
                 variant: Variant = META) -> None:
        cfg.validate()
        self.cfg = cfg
        self.weights = weights
        self.variant = variant
        self._f64: Dict[str, torch.Tensor] = {}
        for name, shape in meta_weight_shapes(cfg):
            if name not in weights:
                raise ValueError(f"missing weight {name}")
            if tuple(weights[name].shape) != shape:
                raise ValueError(f"weight {name} has shape {tuple(weights[name].shape)}, "
                                 f"expected {shape}")
        text = {k[len("text_model."):]: t for k, t in weights.items()
                if k.startswith("text_model.")}
        self.text = LlamaReference(cfg.text_config(), text)

    def w(self, name: str) -> torch.Tensor:
        if name not in self._f64:
            self._f64[name] = self.weights[name].to(torch.float64)
        return self._f64[name]

    def gate(self, name: str) -> float:
        """A gate tensor [1] as the model uses it: tanh(g) (or g for the control)."""
        g = self.w(name).reshape(-1)[0]
        if self.variant.gate == "tanh":
            return float(torch.tanh(g))
        if self.variant.gate == "identity":
            return float(g)
        raise ValueError(f"unknown gate style {self.variant.gate}")

    # ---- vision -------------------------------------------------------------------------------

    def vision_attention(self, x: torch.Tensor, prefix: str, allowed: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention without biases (ImageAttention). x [L, w]."""
        c = self.cfg
        shape = (x.shape[0], c.vision_heads, c.vision_head_dim)
        q = (x @ self.w(prefix + "attn.wq.weight").T).view(shape)
        k = (x @ self.w(prefix + "attn.wk.weight").T).view(shape)
        v = (x @ self.w(prefix + "attn.wv.weight").T).view(shape)
        out = masked_attention(q, k, v, allowed).reshape(x.shape[0], c.vision_width)
        return out @ self.w(prefix + "attn.wo.weight").T

    def vision_mlp(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        """c_fc (bias) -> exact GELU -> c_proj (bias) (ImageFeedForward)."""
        h = gelu(x @ self.w(prefix + "mlp.c_fc.weight").T + self.w(prefix + "mlp.c_fc.bias"))
        return h @ self.w(prefix + "mlp.c_proj.weight").T + self.w(prefix + "mlp.c_proj.bias")

    def vision_block(self, x: torch.Tensor, prefix: str, allowed: torch.Tensor,
                     gated: bool) -> torch.Tensor:
        """Pre-LayerNorm block (ImageTransformerBlock); the global ones are tanh-gated."""
        gate_attn = self.gate(prefix + "gate_attn") if gated else 1.0
        gate_ffn = self.gate(prefix + "gate_ffn") if gated else 1.0
        x = x + gate_attn * self.vision_attention(
            layer_norm(x, self.w(prefix + "ln_1.weight"), self.w(prefix + "ln_1.bias")),
            prefix, allowed)
        return x + gate_ffn * self.vision_mlp(
            layer_norm(x, self.w(prefix + "ln_2.weight"), self.w(prefix + "ln_2.bias")), prefix)

    def local_transformer(self, x: torch.Tensor,
                          allowed: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The local transformer over all tokens of all tiles at once; also returns the INPUT of
        each layer listed in vision_intermediate_layers (ImageTransformer.forward appends x before
        running block idx)."""
        kept = []
        for n in range(self.cfg.vision_layers):
            if n in self.cfg.vision_intermediate_layers:
                kept.append(x)
            x = self.vision_block(x, f"vision_model.vision_encoder.transformer.resblocks.{n}.",
                                  allowed, gated=False)
        return x, kept

    def global_transformer(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        for n in range(self.cfg.vision_global_layers):
            x = self.vision_block(
                x, f"vision_model.vision_encoder.global_transformer.resblocks.{n}.", allowed,
                gated=True)
        return x

    def stacked_tiles(self, image: ImageInput) -> torch.Tensor:
        """The image's tiles followed by zero tiles up to max_tiles (Meta's _stack_images):
        float64 [max_tiles, 3, T, T]."""
        c = self.cfg
        tiles_h, tiles_w = image.aspect
        n = image.tiles.shape[0]
        if n != tiles_h * tiles_w or not 1 <= n <= c.vision_max_tiles:
            raise ValueError(f"{n} tiles for aspect ratio {image.aspect} "
                             f"(max {c.vision_max_tiles})")
        size = c.vision_tile_size
        if tuple(image.tiles.shape[1:]) != (3, size, size):
            raise ValueError(f"tiles of shape {tuple(image.tiles.shape)}, expected [n, 3, {size}, "
                             f"{size}]")
        out = torch.zeros(c.vision_max_tiles, 3, size, size, dtype=torch.float64)
        out[:n] = image.tiles.to(torch.float64)
        return out

    def vision_features(self, image: ImageInput) -> torch.Tensor:
        """The encoder's output before projection: float64 [max_tiles, ntok, vision_output_dim]
        (Meta's VisionEncoder.forward for one image)."""
        c = self.cfg
        v = "vision_model.vision_encoder."
        aspect = image.aspect
        ntok, padded, width = c.tokens_per_tile, c.padded_tokens_per_tile, c.vision_width
        x = patch_embedding(self.stacked_tiles(image), self.w(v + "conv1._linear.weight"),
                            c.vision_patch_size)
        x = tile_position_embedding(x, self.w(v + "pre_tile_pos_embed.embedding"),
                                    self.gate(v + "pre_tile_pos_embed.gate"), aspect)
        x = add_class_token(x, self.w(v + "class_embedding"))
        x = add_positional_embedding(x, self.w(v + "positional_embedding"),
                                     self.w(v + "gated_positional_embedding"),
                                     self.gate(v + "gated_positional_embedding_gate"), aspect)
        x = layer_norm(x, self.w(v + "ln_pre.weight"), self.w(v + "ln_pre.bias"))
        x = pad_tokens(x, c.pad_tokens)
        allowed = encoder_attention_mask(aspect, c.vision_max_tiles, ntok, padded,
                                         self.variant.encoder_mask)
        x, kept = self.local_transformer(x.reshape(-1, width), allowed)
        x = layer_norm(x, self.w(v + "ln_post.weight"), self.w(v + "ln_post.bias"))
        # Meta: the post-tile embedding reaches the pad tokens too (they are still there).
        x = tile_position_embedding(x.reshape(c.vision_max_tiles, padded, width),
                                    self.w(v + "post_tile_pos_embed.embedding"),
                                    self.gate(v + "post_tile_pos_embed.gate"), aspect)
        x = self.global_transformer(x.reshape(-1, width), allowed)
        x = x.reshape(c.vision_max_tiles, padded, width)[:, :ntok]
        if self.variant.intermediate_layout == "interleaved":
            # torch.stack(out, dim=-1) then reshape(..., -1): feature d * k + i is channel d of
            # the i-th kept layer.
            inter = torch.stack(kept, dim=-1).reshape(c.vision_max_tiles, padded, -1)
        elif self.variant.intermediate_layout == "blocked":
            inter = torch.cat(kept, dim=-1).reshape(c.vision_max_tiles, padded, -1)
        else:
            raise ValueError(f"unknown layout {self.variant.intermediate_layout}")
        return torch.cat([x, inter[:, :ntok]], dim=-1)

    def vision_tokens(self, image: ImageInput) -> torch.Tensor:
        """Projected vision tokens, empty stacked tiles included: float64 [max_tiles, ntok, dim]."""
        features = self.vision_features(image)
        return (features @ self.w("vision_model.vision_projection.weight").T
                + self.w("vision_model.vision_projection.bias"))

    # ---- text ---------------------------------------------------------------------------------

    def embed(self, tokens: Sequence[int]) -> torch.Tensor:
        """get_partially_trainable_embedding: ids < vocab_size read tok_embeddings, ids
        vocab_size .. vocab_size + 7 read learnable_embedding[id - vocab_size]."""
        c = self.cfg
        rows = []
        for t in tokens:
            if 0 <= t < c.vocab_size:
                rows.append(self.weights["text_model.tok_embeddings.weight"][t])
            elif c.vocab_size <= t < c.vocab_size + LEARNABLE_EMBEDDINGS:
                rows.append(self.weights["text_model.learnable_embedding.weight"][t - c.vocab_size])
            else:
                raise ValueError(f"token {t} outside 0..{c.vocab_size + LEARNABLE_EMBEDDINGS - 1}")
        return torch.stack(rows).to(torch.float64)

    def cross_attention_block(self, x: torch.Tensor, index: int, vision: torch.Tensor,
                              seen: torch.Tensor) -> torch.Tensor:
        """CrossAttentionTransformerBlock `index`. x [T, dim]; vision [S, dim] (all images' tokens,
        order image, tile, token); seen bool [T, S]."""
        c = self.cfg
        p = f"text_model.cross_attention_layers.{index}."
        seq = x.shape[0]
        group = c.n_heads // c.n_kv_heads
        row_sees = seen.any(dim=-1)  # full_text_row_masked_out_mask
        h = rms_norm(x, self.w(p + "attention_norm.weight"), c.norm_eps)
        q = (h @ self.w(p + "attention.wq.weight").T).view(seq, c.n_heads, c.head_dim)
        q = rms_norm(q, self.w(p + "attention.q_norm.weight"), c.norm_eps)
        k = (vision @ self.w(p + "attention.wk.weight").T).view(-1, c.n_kv_heads, c.head_dim)
        k = rms_norm(k, self.w(p + "attention.k_norm.weight"), c.norm_eps)
        v = (vision @ self.w(p + "attention.wv.weight").T).view(-1, c.n_kv_heads, c.head_dim)
        k = k.repeat_interleave(group, dim=1)  # query head j reads kv head j // group
        v = v.repeat_interleave(group, dim=1)
        # A row that sees nothing has its mask row zeroed (cross_attention_masks *=
        # full_text_row_masked_out_mask): it attends to every vision token.
        allowed = seen | ~row_sees[:, None]
        attn = masked_attention(q, k, v, allowed)
        if self.variant.row_mask == "meta":
            attn = attn * row_sees[:, None, None].to(attn.dtype)  # CrossAttention: output * mask
        elif self.variant.row_mask != "hf":
            raise ValueError(f"unknown row mask style {self.variant.row_mask}")
        out = attn.reshape(seq, c.dim) @ self.w(p + "attention.wo.weight").T
        x = x + self.gate(p + "gate_attn") * out
        h = rms_norm(x, self.w(p + "ffn_norm.weight"), c.norm_eps)
        a = h @ self.w(p + "feed_forward.w1.weight").T
        b = h @ self.w(p + "feed_forward.w3.weight").T
        ffn = (a * torch.sigmoid(a) * b) @ self.w(p + "feed_forward.w2.weight").T
        ffn = ffn * row_sees[:, None].to(ffn.dtype)  # both Meta and HF zero the MLP of such rows
        return x + self.gate(p + "gate_ffwd") * ffn

    def forward(self, tokens: Sequence[int], images: Sequence[ImageInput]) -> dict:
        """Logits at every position of the whole sequence.

        Returns {"logits": float64 [T, vocab], "vision_tokens": [n_images, max_tiles, ntok, dim],
        "spans": [(start, end)] per image, "seen": bool [T, S]}. With no image, the
        cross-attention blocks are skipped (Meta's text_only_inference; they would be the
        identity anyway since every row is masked out)."""
        c = self.cfg
        if len(tokens) == 0:
            raise ValueError("empty token list")
        n_image_tokens = sum(1 for t in tokens if t == c.image_token_id)
        if n_image_tokens != len(images):
            raise ValueError(f"{n_image_tokens} image tokens but {len(images)} images")
        x = self.embed(tokens)
        angles = rope_angles(self.text.cfg, torch.arange(len(tokens)))
        schedule = c.fusion_schedule()
        vision = None
        seen = None
        if images:
            vision = torch.stack([self.vision_tokens(im) for im in images])
            seen = cross_attention_visibility(
                tokens, c.image_token_id, [im.aspect[0] * im.aspect[1] for im in images],
                c.vision_max_tiles, c.tokens_per_tile, self.variant.image_visibility)
            flat = vision.reshape(-1, c.dim)
        for layer in range(c.n_layers):
            if images and layer in schedule:
                x = self.cross_attention_block(x, schedule.index(layer), flat, seen)
            x = self.text.block(layer, x, angles)
        h = rms_norm(x, self.w("text_model.norm.weight"), c.norm_eps)
        logits = h @ self.w("text_model.output.weight").T
        return {"logits": logits,
                "vision_tokens": vision,
                "spans": image_spans(tokens, c.image_token_id),
                "seen": seen}

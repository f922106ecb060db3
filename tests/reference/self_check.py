#!/usr/bin/python3
"""Checks the reference against itself and against independent formulations of each piece, so
a disagreement with the engine can be blamed on the right side.

    /usr/bin/python3 tests/reference/self_check.py      (a few seconds; exit status 0 = pass)

The C++ suite runs this too (tests/model/reference_test.cpp).
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ggml_blocks import decode, encode  # noqa: E402
from gguf_file import GgufWriter, read_gguf  # noqa: E402
from llama_reference import (  # noqa: E402
    LlamaConfig, LlamaReference, apply_rope_interleaved, causal_attention, hf_permute,
    hf_unpermute, quantize_activations, rms_norm, rope_frequencies, silu)
from model_files import (  # noqa: E402
    converter_rope_factors, gguf_held_weights, hf_config, hf_name, hf_state, meta_ffn_dim,
    meta_params, meta_shard_axis, meta_weight_shapes, random_tokens, random_weights,
    read_safetensors, write_gguf, write_hf, write_meta)

torch.set_num_threads(2)

SMALL = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 96,
         "ffn_dim": 160, "rope_scaling_factor": 8, "tied": False}


def small(**overrides) -> LlamaConfig:
    return LlamaConfig.from_dict(dict(SMALL, **overrides))


def incremental_forward(ref: LlamaReference, tokens) -> torch.Tensor:
    """The same model written the other way round: one token at a time with explicit key/value
    lists, scalar loops over heads, Meta's complex-number RoPE. Slow, but shares no code path
    with LlamaReference.block beyond the weights."""
    c = ref.cfg
    freqs = rope_frequencies(c)
    group = c.n_heads // c.n_kv_heads
    keys = [[] for _ in range(c.n_layers)]
    values = [[] for _ in range(c.n_layers)]
    out = []

    def rotate(vec: torch.Tensor, pos: int) -> torch.Tensor:  # vec [heads, hd]
        z = torch.view_as_complex(vec.reshape(vec.shape[0], -1, 2).contiguous())
        z = z * torch.polar(torch.ones_like(freqs), pos * freqs)
        return torch.view_as_real(z).reshape(vec.shape)

    def norm(x, w):
        return x / math.sqrt(float((x * x).sum()) / x.numel() + c.norm_eps) * w

    for pos, tok in enumerate(tokens):
        x = ref.w("tok_embeddings.weight")[tok].clone()
        for n in range(c.n_layers):
            p = f"layers.{n}."
            h = norm(x, ref.w(p + "attention_norm.weight"))
            q = rotate((ref.w(p + "attention.wq.weight") @ h).view(c.n_heads, -1), pos)
            k = (ref.w(p + "attention.wk.weight") @ h).view(c.n_kv_heads, -1)
            keys[n].append(rotate(k, pos))
            values[n].append((ref.w(p + "attention.wv.weight") @ h).view(c.n_kv_heads, -1))
            heads = []
            for hq in range(c.n_heads):
                kv = hq // group
                scores = torch.stack([q[hq].dot(k[kv]) for k in keys[n]]) / math.sqrt(c.head_dim)
                weights = torch.exp(scores - scores.max())
                weights = weights / weights.sum()
                heads.append(sum(wt * v[kv] for wt, v in zip(weights, values[n])))
            x = x + ref.w(p + "attention.wo.weight") @ torch.cat(heads)
            h = norm(x, ref.w(p + "ffn_norm.weight"))
            a = ref.w(p + "feed_forward.w1.weight") @ h
            b = ref.w(p + "feed_forward.w3.weight") @ h
            x = x + ref.w(p + "feed_forward.w2.weight") @ (a * torch.sigmoid(a) * b)
        head = ref.w("tok_embeddings.weight" if c.tied else "output.weight")
        out.append(head @ norm(x, ref.w("norm.weight")))
    return torch.stack(out)


def meta_to_reference_from_hf(cfg: LlamaConfig, hf: dict) -> dict:
    """HF-named (and permuted) tensors back to Meta names and row order."""
    back = {}
    meta_names = {hf_name(n): n for n, _ in meta_weight_shapes(cfg)}
    for name, t in hf.items():
        meta = meta_names[name]
        if meta.endswith("attention.wq.weight"):
            t = hf_unpermute(t, cfg.n_heads)
        elif meta.endswith("attention.wk.weight"):
            t = hf_unpermute(t, cfg.n_kv_heads)
        back[meta] = t
    return back


class Pieces(unittest.TestCase):
    def test_rms_norm_matches_definition(self):
        x = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
        w = torch.tensor([1.0, 2.0], dtype=torch.float64)
        scale = 1.0 / math.sqrt((9 + 16) / 2 + 1e-5)
        self.assertTrue(torch.allclose(rms_norm(x, w, 1e-5),
                                       torch.tensor([[3 * scale, 8 * scale]], dtype=torch.float64)))

    def test_silu(self):
        x = torch.linspace(-5, 5, 11, dtype=torch.float64)
        self.assertTrue(torch.allclose(silu(x), x * torch.sigmoid(x)))

    def test_unscaled_frequencies(self):
        cfg = small(rope_scaling_factor=None, dim=128, n_heads=2, n_kv_heads=2)  # head_dim 64
        f = rope_frequencies(cfg)
        self.assertEqual(f.shape, (32,))
        self.assertEqual(float(f[0]), 1.0)
        self.assertAlmostEqual(float(f[1]), 500000.0 ** (-2 / 64), places=15)
        self.assertAlmostEqual(float(f[31]), 500000.0 ** (-62 / 64), places=18)

    def test_scaled_frequencies_follow_the_three_bands(self):
        for factor in (8.0, 32.0):
            cfg = small(rope_scaling_factor=factor, dim=128, n_heads=2, n_kv_heads=2)
            base = rope_frequencies(small(rope_scaling_factor=None, dim=128, n_heads=2,
                                          n_kv_heads=2))
            f = rope_frequencies(cfg)
            for i in range(32):
                wavelen = 2 * math.pi / float(base[i])
                ratio = float(f[i] / base[i])
                if wavelen < 2048:
                    self.assertEqual(ratio, 1.0, i)
                elif wavelen > 8192:
                    self.assertAlmostEqual(ratio, 1 / factor, places=14)
                else:  # a blend strictly between the two, moving smoothly
                    self.assertTrue(1 / factor < ratio < 1.0, (i, ratio))
            # At head_dim 64 and theta 500000 the three bands are all populated.
            wl = [2 * math.pi / float(b) for b in base]
            self.assertTrue(any(w < 2048 for w in wl) and any(w > 8192 for w in wl)
                            and any(2048 <= w <= 8192 for w in wl))
            # The blend formula is continuous at both band edges.
            for edge, want in ((2048.0, 1.0), (8192.0, 1 / factor)):
                smooth = (8192 / edge - 1) / 3
                self.assertAlmostEqual((1 - smooth) / factor + smooth, want, places=12)

    def test_rope_interleaved_is_complex_multiplication(self):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(5, 3, 8, generator=gen, dtype=torch.float64)
        angles = torch.randn(5, 4, generator=gen, dtype=torch.float64)
        z = torch.view_as_complex(x.reshape(5, 3, 4, 2).contiguous())
        want = torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)[:, None, :])
        self.assertTrue(torch.allclose(apply_rope_interleaved(x, angles), want.reshape(5, 3, 8),
                                       atol=1e-14))

    def test_attention_is_causal_and_grouped(self):
        gen = torch.Generator().manual_seed(1)
        q = torch.randn(6, 4, 8, generator=gen, dtype=torch.float64)
        k = torch.randn(6, 2, 8, generator=gen, dtype=torch.float64)
        v = torch.randn(6, 2, 8, generator=gen, dtype=torch.float64)
        out = causal_attention(q, k, v)
        for t in range(6):
            for h in range(4):
                kv = h // 2  # consecutive query heads share a kv head
                s = torch.stack([q[t, h].dot(k[u, kv]) for u in range(t + 1)]) / math.sqrt(8)
                p = torch.softmax(s, 0)
                want = sum(p[u] * v[u, kv] for u in range(t + 1))
                self.assertTrue(torch.allclose(out[t, h], want, atol=1e-13), (t, h))

    def test_meta_ffn_dims_of_released_models(self):
        self.assertEqual(meta_ffn_dim(2048, 256, 1.5), 8192)      # Llama 3.2 1B
        self.assertEqual(meta_ffn_dim(3072, 256, 1.0), 8192)      # Llama 3.2 3B
        self.assertEqual(meta_ffn_dim(4096, 1024, 1.3), 14336)    # Llama 3 8B
        self.assertEqual(meta_ffn_dim(8192, 4096, 1.3), 28672)    # Llama 3 70B


class Model(unittest.TestCase):
    def test_forward_matches_incremental_formulation(self):
        for cfg in (small(), small(tied=True, n_kv_heads=4, rope_scaling_factor=None),
                    small(n_kv_heads=1, rope_scaling_factor=32)):
            ref = LlamaReference(cfg, random_weights(cfg, 3))
            tokens = random_tokens(9, 4, cfg.vocab_size)
            got = ref.forward(tokens)
            want = incremental_forward(ref, tokens)
            self.assertLess(float((got - want).abs().max()), 1e-11, cfg)

    def test_deterministic(self):
        cfg = small()
        tokens = random_tokens(20, 5, cfg.vocab_size)
        a = LlamaReference(cfg, random_weights(cfg, 7)).forward(tokens)
        b = LlamaReference(cfg, random_weights(cfg, 7)).forward(tokens)
        self.assertTrue(torch.equal(a, b))
        c = LlamaReference(cfg, random_weights(cfg, 8)).forward(tokens)
        self.assertFalse(torch.equal(a, c))

    def test_greedy_is_argmax_of_recomputed_logits(self):
        cfg = small()
        ref = LlamaReference(cfg, random_weights(cfg, 9))
        tokens = random_tokens(5, 1, cfg.vocab_size)
        steps = ref.greedy(tokens, 4)
        seq = list(tokens)
        for s in steps:
            logits = ref.forward(seq)[-1]
            self.assertEqual(s["token"], int(logits.argmax()))
            seq.append(s["token"])
        self.assertEqual(ref.greedy(tokens, 4, ref.forward(tokens)[-1]), steps)

    def test_weights_are_bf16_and_f16_exact_with_the_stated_scales(self):
        cfg = small(dim=128, n_heads=2, n_kv_heads=2, ffn_dim=384, vocab_size=512)
        w = random_weights(cfg, 1)
        for name, t in w.items():
            self.assertEqual(t.dtype, torch.bfloat16, name)
            self.assertTrue(torch.equal(t.to(torch.float16).to(torch.float32),
                                        t.to(torch.float32)), name)
        std = lambda n: float(w[n].to(torch.float64).std())  # noqa: E731
        self.assertAlmostEqual(std("tok_embeddings.weight"), 1.0, delta=0.02)
        self.assertAlmostEqual(std("output.weight"), 1 / math.sqrt(128), delta=0.003)
        self.assertAlmostEqual(std("layers.0.feed_forward.w2.weight"), 1 / math.sqrt(384),
                               delta=0.002)
        norm = w["layers.1.ffn_norm.weight"].to(torch.float64)
        # 1 + 0.1 * U(-1, 1), then rounded to bf16 (spacing 2^-7 just above 1)
        self.assertTrue(bool(((norm - 1).abs() <= 0.1 + 2 ** -8).all()))
        self.assertGreater(float((norm - 1).abs().max()), 0.05)
        tied = random_weights(small(tied=True), 1)
        self.assertNotIn("output.weight", tied)

    def test_kv_rounding_is_small_and_only_where_asked(self):
        cfg = small()
        w = random_weights(cfg, 2)
        tokens = random_tokens(30, 2, cfg.vocab_size)
        exact = LlamaReference(cfg, w).forward(tokens)
        rounded = LlamaReference(cfg, w, kv_round=torch.bfloat16).forward(tokens)
        rel = float((exact - rounded).abs().max() / exact.abs().max())
        self.assertTrue(1e-5 < rel < 3e-2, rel)  # bf16 keeps 8 significant bits

    def test_rope_factor_changes_long_range_logits_only(self):
        w = random_weights(small(), 2)
        tokens = random_tokens(40, 2, SMALL["vocab_size"])
        a = LlamaReference(small(rope_scaling_factor=8), w).forward(tokens)
        b = LlamaReference(small(rope_scaling_factor=32), w).forward(tokens)
        self.assertTrue(torch.equal(a[0], b[0]))  # position 0 is never rotated
        self.assertGreater(float((a - b).abs().max()), 0.0)


class Files(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_permute_roundtrip(self):
        w = torch.arange(8 * 3, dtype=torch.float64).reshape(8, 3)
        p = hf_permute(w, 2)  # head_dim 4: rows (0,1,2,3) -> (0,2,1,3) within each head
        self.assertEqual(p[:, 0].tolist(), [0, 6, 3, 9, 12, 18, 15, 21])
        self.assertTrue(torch.equal(hf_unpermute(p, 2), w))

    def test_hf_permutation_turns_interleaved_rope_into_rotate_half(self):
        for cfg in (small(), small(n_kv_heads=1, tied=True)):
            w = random_weights(cfg, 4)
            hf = {}
            for name, t in w.items():
                if name.endswith("attention.wq.weight"):
                    t = hf_permute(t, cfg.n_heads)
                elif name.endswith("attention.wk.weight"):
                    t = hf_permute(t, cfg.n_kv_heads)
                hf[name] = t
            tokens = random_tokens(12, 3, cfg.vocab_size)
            meta = LlamaReference(cfg, w).forward(tokens)
            half = LlamaReference(cfg, hf, rope_style="half").forward(tokens)
            self.assertLess(float((meta - half).abs().max()), 1e-11)
            wrong = LlamaReference(cfg, w, rope_style="half").forward(tokens)
            self.assertGreater(float((meta - wrong).abs().max()), 1e-3)

    def test_hf_files_hold_the_meta_weights(self):
        for cfg in (small(), small(tied=True)):
            w = random_weights(cfg, 5)
            for dtype, shards in (("bf16", 1), ("f16", 1), ("f32", 1), ("bf16", 3)):
                folder = os.path.join(self.dir, f"hf-{cfg.tied}-{dtype}-{shards}")
                write_hf(folder, cfg, w, dtype, shards)
                files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
                self.assertEqual(len(files), shards)
                read = {}
                for f in files:
                    part = read_safetensors(os.path.join(folder, f))
                    self.assertTrue(part, f)  # no empty shard
                    read.update(part)
                if shards > 1:
                    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
                        index = json.load(f)["weight_map"]
                    self.assertEqual(set(index), set(read))
                self.assertEqual("lm_head.weight" in read, not cfg.tied)
                back = meta_to_reference_from_hf(cfg, read)
                self.assertEqual(set(back), set(w))
                for name in w:
                    self.assertTrue(torch.equal(back[name], w[name].to(torch.float32)), name)
            # The negative control really leaves q/k in Meta's order (and so differs from HF).
            raw = hf_state(cfg, w, permute=False)
            self.assertTrue(torch.equal(raw["model.layers.0.self_attn.q_proj.weight"],
                                        w["layers.0.attention.wq.weight"]))

    def test_meta_shards_concatenate_to_the_weights(self):
        for cfg in (small(), small(tied=True)):
            w = random_weights(cfg, 6)
            for shards in (1, 2, 4):
                folder = os.path.join(self.dir, f"meta-{cfg.tied}-{shards}")
                write_meta(folder, cfg, w, shards)
                parts = [torch.load(os.path.join(folder, f"consolidated.{s:02d}.pth"))
                         for s in range(shards)]
                names = set(w) | {"output.weight"}
                for name in names:
                    axis = meta_shard_axis(name)
                    pieces = [p[name] for p in parts]
                    whole = pieces[0] if axis is None else torch.cat(pieces, dim=axis)
                    src = w["tok_embeddings.weight" if name == "output.weight" and cfg.tied
                            else name]
                    self.assertTrue(torch.equal(whole, src), (name, shards))
                    for p in pieces:
                        self.assertEqual(p.dtype, torch.bfloat16)
                        self.assertTrue(p.is_contiguous())
                        # each piece is saved alone, not as a view of the whole tensor
                        self.assertEqual(p.storage().size(), p.numel(), name)
                if cfg.tied:
                    for p in parts:
                        self.assertEqual(p["output.weight"].data_ptr(),
                                         p["tok_embeddings.weight"].data_ptr())

    def test_params_json(self):
        p = meta_params(small(rope_scaling_factor=None))
        self.assertNotIn("use_scaled_rope", p)
        self.assertNotIn("rope_scaling_factor", p)
        p = meta_params(small(rope_scaling_factor=8))
        self.assertTrue(p["use_scaled_rope"])
        self.assertNotIn("rope_scaling_factor", p)
        p = meta_params(small(rope_scaling_factor=32))
        self.assertEqual(p["rope_scaling_factor"], 32.0)
        p = meta_params(small(rope_scaling_factor=32), rope_factor_key=False)
        self.assertTrue(p["use_scaled_rope"])
        self.assertNotIn("rope_scaling_factor", p)
        one_b = LlamaConfig.from_dict({"dim": 2048, "n_layers": 16, "n_heads": 32,
                                       "n_kv_heads": 8, "vocab_size": 128256, "ffn_dim": 8192,
                                       "multiple_of": 256, "ffn_dim_multiplier": 1.5})
        p = meta_params(one_b)
        self.assertEqual((p["multiple_of"], p["ffn_dim_multiplier"]), (256, 1.5))
        self.assertEqual(meta_ffn_dim(p["dim"], p["multiple_of"], p.get("ffn_dim_multiplier")),
                         8192)
        auto = meta_params(small())  # found automatically, must reproduce ffn_dim
        self.assertEqual(meta_ffn_dim(64, auto["multiple_of"], auto.get("ffn_dim_multiplier")),
                         SMALL["ffn_dim"])


class Gguf(unittest.TestCase):
    """The GGUF writer and the block math, against hand-made cases and the weights."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "model.gguf")

    def tearDown(self):
        self.tmp.cleanup()

    def test_q8_0_rounds_half_away_from_zero_with_fp16_scale(self):
        x = np.zeros(32, dtype=np.float32)
        x[:5] = [127.0, 2.5, -2.5, 0.5, -126.4]  # amax 127: d = 1, so q = roundf(x)
        raw = encode(x, "Q8_0")
        self.assertEqual(len(raw), 34)
        self.assertEqual(np.frombuffer(raw[:2], dtype=np.float16)[0], 1.0)
        self.assertEqual(list(np.frombuffer(raw[2:7], dtype=np.int8)), [127, 3, -3, 1, -126])
        y = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
        back = decode(encode(y, "Q8_0"), "Q8_0", y.shape)
        d = np.abs(y.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
        # half a step, plus the fp16 rounding of d (relative 2^-11) times |q| <= 127
        bound = (0.5 + 127 * 2.0 ** -11) * d
        self.assertTrue(np.all(np.abs(back - y).reshape(-1, 32) <= bound))

    def test_q4_0_scale_from_the_signed_maximum_and_nibble_order(self):
        x = np.zeros(32, dtype=np.float32)
        x[0], x[1], x[2], x[16], x[17] = -8.0, 7.0, 0.5, 0.49, 8.0  # |-8| first: d = -8/-8 = 1
        raw = encode(x, "Q4_0")
        self.assertEqual(len(raw), 18)
        self.assertEqual(np.frombuffer(raw[:2], dtype=np.float16)[0], 1.0)
        q = np.frombuffer(raw[2:], dtype=np.uint8)
        # q = min(15, trunc(x / d + 8.5)): -8 -> 0, 7 -> 15, 0.5 -> 9, 0.49 -> 8, 8 -> 15 (clamped)
        self.assertEqual([q[0] & 15, q[1] & 15, q[2] & 15, q[0] >> 4, q[1] >> 4], [0, 15, 9, 8, 15])
        self.assertEqual(list(decode(raw, "Q4_0", (32,))[[0, 1, 16]]), [-8.0, 7.0, 0.0])
        zero = encode(np.zeros(32, dtype=np.float32), "Q4_0")  # d = 0: every q is 8
        self.assertEqual(list(decode(zero, "Q4_0", (32,))), [0.0] * 32)

    def test_float_encodings_round_to_nearest_even(self):
        x = np.array([1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -3.0, 65504.0], dtype=np.float32)
        self.assertEqual(list(decode(encode(x, "BF16"), "BF16", x.shape)), [1.0, 1.0 + 2 ** -6, -3.0, 65536.0])
        self.assertEqual(list(decode(encode(x, "F16"), "F16", x.shape)), list(x))

    def test_container_reads_back(self):
        w = GgufWriter(alignment=64)
        w.add("general.architecture", 8, "llama")
        w.add("a.list", 9, (5, [1, -2, 3]))
        w.add_tensor("t", "F32", (3,), np.arange(3, dtype=np.float32).tobytes())
        w.add_tensor("u", "Q8_0", (32, 2), bytes(68))
        w.write(self.path)
        got = read_gguf(self.path)
        self.assertEqual(got.version, 3)
        self.assertEqual(got.metadata["general.alignment"], (4, 64))
        self.assertEqual(got.metadata["a.list"], (9, (5, [1, -2, 3])))
        self.assertEqual(got.tensors["t"][2], np.arange(3, dtype=np.float32).tobytes())
        self.assertEqual(got.tensors["u"][:2], ("Q8_0", (32, 2)))
        with self.assertRaises(ValueError):
            w.add_tensor("v", "Q8_0", (16,), bytes(17))  # not a whole block

    def test_gguf_holds_the_meta_weights_in_each_type(self):
        for cfg in (small(), small(tied=True, n_kv_heads=4, rope_scaling_factor=None)):
            w = random_weights(cfg, 8)
            for dtype in ("bf16", "f16", "f32", "q8_0", "q4_0"):
                write_gguf(self.path, cfg, w, dtype)
                got = read_gguf(self.path)
                meta = {k: v for k, (_, v) in got.metadata.items()}
                self.assertEqual(meta["llama.attention.head_count_kv"], cfg.n_kv_heads)
                self.assertEqual(meta["llama.block_count"], cfg.n_layers)
                self.assertEqual("output.weight" in got.tensors, not cfg.tied)
                self.assertEqual("rope_freqs.weight" in got.tensors, cfg.rope_scaling_factor is not None)
                held = gguf_held_weights(cfg, w, dtype) if dtype in ("q8_0", "q4_0") else w
                names = {"tok_embeddings.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
                         "output.weight": "output.weight"}
                for name, t in held.items():
                    if name not in names:
                        _, n, rest = name.split(".", 2)
                        short = {"attention.wq.weight": "attn_q", "attention.wk.weight": "attn_k",
                                 "attention.wv.weight": "attn_v", "attention.wo.weight": "attn_output",
                                 "feed_forward.w1.weight": "ffn_gate", "feed_forward.w3.weight": "ffn_up",
                                 "feed_forward.w2.weight": "ffn_down", "attention_norm.weight": "attn_norm",
                                 "ffn_norm.weight": "ffn_norm"}[rest]
                        names[name] = f"blk.{n}.{short}.weight"
                    type_name, dims, raw = got.tensors[names[name]]
                    self.assertEqual(dims, tuple(reversed(t.shape)), name)
                    self.assertEqual(type_name, dtype.upper() if t.dim() == 2 else "F32", name)
                    # Meta's row order: the converter's permutation undid HF's exactly.
                    values = torch.from_numpy(decode(raw, type_name, tuple(t.shape)))
                    self.assertTrue(torch.equal(values, t.to(torch.float32)), (dtype, name))

    def test_negative_control_keeps_hf_rows(self):
        cfg = small()
        w = random_weights(cfg, 9)
        write_gguf(self.path, cfg, w, "bf16", undo_permute=False)
        _, _, raw = read_gguf(self.path).tensors["blk.0.attn_k.weight"]
        got = torch.from_numpy(decode(raw, "BF16", (cfg.n_kv_heads * cfg.head_dim, cfg.dim)))
        self.assertTrue(torch.equal(got, hf_permute(w["layers.0.attention.wk.weight"], cfg.n_kv_heads).float()))

    def test_rope_factors_are_the_reference_scaling_in_float32(self):
        for factor in (8.0, 32.0):
            cfg = small(rope_scaling_factor=factor, dim=128, n_heads=2, n_kv_heads=2)  # head_dim 64
            factors = converter_rope_factors(hf_config(cfg, "bf16")).to(torch.float64)
            unscaled = rope_frequencies(small(rope_scaling_factor=None, dim=128, n_heads=2, n_kv_heads=2))
            want = unscaled / rope_frequencies(cfg)  # divisors
            self.assertLess(float(((factors - want) / want).abs().max()), 1e-6)
            self.assertEqual(float(factors[0]), 1.0)
            self.assertEqual(float(factors[-1]), factor)
            self.assertTrue(bool(((factors > 1) & (factors < factor)).any()))  # the blend band

    def test_activation_quantization(self):
        x = torch.linspace(-3, 5, 64, dtype=torch.float64).reshape(2, 32)
        q = quantize_activations(x)
        d = x.abs().amax(dim=-1, keepdim=True) / 127
        self.assertTrue(torch.allclose(q / d, torch.round(q / d), atol=1e-9))  # on the grid
        self.assertLessEqual(float(((q - x).abs() / d).max()), 0.5 + 1e-9)
        self.assertTrue(torch.equal(quantize_activations(torch.zeros(3, 32, dtype=torch.float64)),
                                    torch.zeros(3, 32, dtype=torch.float64)))


if __name__ == "__main__":
    unittest.main(verbosity=1)

#!/usr/bin/python3
"""llama.cpp (the peer's prebuilt libllama.v0.5.0.so, as node-llama-cpp 3.22.1 ships it) driven
through ctypes, with no node: quantize a GGUF with llama.cpp's own quantizer, and read llama.cpp's
logits, greedy tokens and tokens on a GGUF, for the tests and the side-by-side benchmark.

    /usr/bin/python3 bench/peer/llamacpp_ctypes.py quantize IN.gguf OUT.gguf --type Q4_K_M
    /usr/bin/python3 bench/peer/llamacpp_ctypes.py logits MODEL.gguf --tokens 1,2,3 [--tokens 4,5] --out L.f32
    /usr/bin/python3 bench/peer/llamacpp_ctypes.py greedy MODEL.gguf --tokens 1,2,3 [--tokens 4,5] --n 16
    /usr/bin/python3 bench/peer/llamacpp_ctypes.py tokenize MODEL.gguf --text "Hello" [--special]

Every command prints one JSON object on stdout. Each --tokens is one sequence, run in a fresh
context of the model loaded once. `logits` writes float32 [rows][vocab], row-major, little-endian
(numpy's tofile): the logits of every position of each sequence's teacher-forced pass, the
sequences one after the other. `greedy` gives, per sequence, the argmax continuation and, per
step, llama.cpp's lead of the top logit over the runner-up ("margins"), so a comparison can stop
at the first near tie: {"runs": [{"tokens": [...], "margins": [...]}, ...]}. --kv f32 (default f16, as
llama.cpp) chooses the KV cache type; --threads the CPU threads (default 2).

The libraries come from --lib-dir, else $LLAMA_CPP_LIB_DIR, else the peer's install under this
checkout (.cache/peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/, which
bench/peer/install.sh creates). The ctypes structures below are llama.h's of that exact release
(llama.cpp's tag v0.5.0 as node-llama-cpp names it); the defaults the library returns are checked
against the source's, so a layout that does not match fails loudly instead of passing garbage.
"""
from __future__ import annotations

import argparse
import ctypes as C
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_LIB_DIR = os.path.join(ROOT, ".cache/peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")

# llama_ftype values (llama.h) for the names llama-quantize uses.
FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
          "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
          "Q5_K_M": 17, "Q6_K": 18, "BF16": 32}
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_COUNT = 0, 1, 43


class ModelParams(C.Structure):  # struct llama_model_params
    _fields_ = [("devices", C.c_void_p), ("tensor_buft_overrides", C.c_void_p),
                ("n_gpu_layers", C.c_int32), ("split_mode", C.c_int), ("load_mode", C.c_int),
                ("lazy_mode", C.c_int), ("main_gpu", C.c_int32), ("tensor_split", C.c_void_p),
                ("progress_callback", C.c_void_p), ("progress_callback_user_data", C.c_void_p),
                ("kv_overrides", C.c_void_p), ("vocab_only", C.c_bool), ("check_tensors", C.c_bool),
                ("use_extra_bufts", C.c_bool), ("no_host", C.c_bool), ("no_alloc", C.c_bool),
                ("load_mtp", C.c_bool)]


class ContextParams(C.Structure):  # struct llama_context_params
    _fields_ = [("n_ctx", C.c_uint32), ("n_batch", C.c_uint32), ("n_ubatch", C.c_uint32),
                ("n_seq_max", C.c_uint32), ("n_rs_seq", C.c_uint32), ("n_outputs_max", C.c_uint32),
                ("n_outputs_max_per_seq", C.c_uint32), ("n_threads", C.c_int32),
                ("n_threads_batch", C.c_int32), ("ctx_type", C.c_int), ("rope_scaling_type", C.c_int),
                ("pooling_type", C.c_int), ("attention_type", C.c_int), ("flash_attn_type", C.c_int),
                ("rope_freq_base", C.c_float), ("rope_freq_scale", C.c_float),
                ("yarn_ext_factor", C.c_float), ("yarn_attn_factor", C.c_float),
                ("yarn_beta_fast", C.c_float), ("yarn_beta_slow", C.c_float),
                ("yarn_orig_ctx", C.c_uint32), ("defrag_thold", C.c_float), ("cb_eval", C.c_void_p),
                ("cb_eval_user_data", C.c_void_p), ("type_k", C.c_int), ("type_v", C.c_int),
                ("abort_callback", C.c_void_p), ("abort_callback_data", C.c_void_p),
                ("embeddings", C.c_bool), ("offload_kqv", C.c_bool), ("no_perf", C.c_bool),
                ("op_offload", C.c_bool), ("swa_full", C.c_bool), ("kv_unified", C.c_bool),
                ("samplers", C.c_void_p), ("n_samplers", C.c_size_t), ("ctx_other", C.c_void_p)]


class QuantizeParams(C.Structure):  # llama_model_quantize_params
    _fields_ = [("nthread", C.c_int32), ("ftype", C.c_int), ("output_tensor_type", C.c_int),
                ("token_embedding_type", C.c_int), ("allow_requantize", C.c_bool),
                ("quantize_output_tensor", C.c_bool), ("only_copy", C.c_bool), ("pure", C.c_bool),
                ("keep_split", C.c_bool), ("dry_run", C.c_bool), ("imatrix", C.c_void_p),
                ("kv_overrides", C.c_void_p), ("tt_overrides", C.c_void_p),
                ("prune_layers", C.c_void_p), ("max_buf_size", C.c_size_t)]


class Batch(C.Structure):  # struct llama_batch
    _fields_ = [("n_tokens", C.c_int32), ("token", C.POINTER(C.c_int32)), ("embd", C.c_void_p),
                ("pos", C.POINTER(C.c_int32)), ("n_seq_id", C.POINTER(C.c_int32)),
                ("seq_id", C.POINTER(C.POINTER(C.c_int32))), ("logits", C.POINTER(C.c_int8))]


LOG_CALLBACK = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)


def fail(message: str) -> None:
    print(f"llamacpp_ctypes: {message}", file=sys.stderr)
    sys.exit(2)


class Llama:
    """The library, its functions declared from llama.h, backends loaded, logs silenced."""

    def __init__(self, lib_dir: str, verbose: bool):
        lib = os.path.join(lib_dir, "libllama.v0.5.0.so")
        if not os.path.isfile(lib):
            fail(f"{lib} not found (bench/peer/install.sh installs the peer; or give --lib-dir)")
        ggml = C.CDLL(os.path.join(lib_dir, "libggml.v0.5.0.so"), mode=C.RTLD_GLOBAL)
        self.l = l = C.CDLL(lib, mode=C.RTLD_GLOBAL)
        def log(level, text, user_data):
            if verbose:
                sys.stderr.write(text.decode(errors="replace"))

        self._log = LOG_CALLBACK(log)  # kept alive as long as the library may call it
        for lib_handle, setter in ((ggml, "ggml_log_set"), (l, "llama_log_set")):
            getattr(lib_handle, setter).argtypes = [LOG_CALLBACK, C.c_void_p]
            getattr(lib_handle, setter)(self._log, None)
        ggml.ggml_backend_load_all_from_path.argtypes = [C.c_char_p]
        ggml.ggml_backend_load_all_from_path(lib_dir.encode())  # the CPU variants are plugins
        l.llama_backend_init()
        sig = {
            "llama_model_default_params": ([], ModelParams),
            "llama_context_default_params": ([], ContextParams),
            "llama_model_quantize_default_params": ([], QuantizeParams),
            "llama_model_quantize": ([C.c_char_p, C.c_char_p, C.POINTER(QuantizeParams)], C.c_uint32),
            "llama_model_load_from_file": ([C.c_char_p, ModelParams], C.c_void_p),
            "llama_model_free": ([C.c_void_p], None),
            "llama_init_from_model": ([C.c_void_p, ContextParams], C.c_void_p),
            "llama_free": ([C.c_void_p], None),
            "llama_model_get_vocab": ([C.c_void_p], C.c_void_p),
            "llama_vocab_n_tokens": ([C.c_void_p], C.c_int32),
            "llama_decode": ([C.c_void_p, Batch], C.c_int32),
            "llama_get_logits_ith": ([C.c_void_p, C.c_int32], C.POINTER(C.c_float)),
            "llama_tokenize": ([C.c_void_p, C.c_char_p, C.c_int32, C.POINTER(C.c_int32), C.c_int32,
                                C.c_bool, C.c_bool], C.c_int32),
        }
        for name, (args, res) in sig.items():
            f = getattr(l, name)
            f.argtypes, f.restype = args, res
        self._check_layouts()

    def _check_layouts(self) -> None:
        """The defaults llama.cpp's source gives: a struct declared wrong reads other values."""
        m = self.l.llama_model_default_params()
        c = self.l.llama_context_default_params()
        q = self.l.llama_model_quantize_default_params()
        got = [(m.n_gpu_layers, m.use_extra_bufts, m.vocab_only, m.load_mtp),
               (c.n_ctx, c.n_batch, c.n_ubatch, c.n_seq_max, c.n_outputs_max_per_seq, c.flash_attn_type,
                c.yarn_ext_factor, c.type_k, c.type_v, c.offload_kqv, c.no_perf, c.kv_unified, c.n_samplers),
               (q.ftype, q.output_tensor_type, q.token_embedding_type, q.quantize_output_tensor, q.pure,
                q.max_buf_size > 0)]
        want = [(-1, True, False, False), (512, 2048, 512, 1, 1, -1, -1.0, GGML_TYPE_F16, GGML_TYPE_F16,
                                           True, True, False, 0),
                (FTYPES["Q8_0"], GGML_TYPE_COUNT, GGML_TYPE_COUNT, True, False, True)]
        if got != want:
            fail(f"the library's default parameters {got} are not llama.h's {want}: "
                 "this script's structures do not match this libllama")

    def load(self, path: str):
        params = self.l.llama_model_default_params()
        params.n_gpu_layers = 0
        model = self.l.llama_model_load_from_file(path.encode(), params)
        if not model:
            fail(f"llama.cpp could not load {path} (rerun with --verbose for its log)")
        return model

    def context(self, model, n_ctx: int, n_batch: int, threads: int, kv: str):
        params = self.l.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = threads
        params.type_k = params.type_v = GGML_TYPE_F32 if kv == "f32" else GGML_TYPE_F16
        ctx = self.l.llama_init_from_model(model, params)
        if not ctx:
            fail("llama.cpp could not create a context")
        return ctx

    def decode(self, ctx, tokens, start: int, all_logits: bool) -> None:
        n = len(tokens)
        seq = (C.c_int32 * 1)(0)
        seq_ids = (C.POINTER(C.c_int32) * n)(*([C.cast(seq, C.POINTER(C.c_int32))] * n))
        out = [1] * n if all_logits else [0] * (n - 1) + [1]
        batch = Batch(n, (C.c_int32 * n)(*tokens), None, (C.c_int32 * n)(*range(start, start + n)),
                      (C.c_int32 * n)(*([1] * n)), seq_ids, (C.c_int8 * n)(*out))
        rc = self.l.llama_decode(ctx, batch)
        if rc != 0:
            fail(f"llama_decode returned {rc}")

    def logits_row(self, ctx, i: int, n_vocab: int) -> np.ndarray:
        ptr = self.l.llama_get_logits_ith(ctx, i)
        if not ptr:
            fail(f"no logits for batch row {i}")
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()


def top2(row: np.ndarray):
    i = int(np.argmax(row))
    rest = np.delete(row, i)
    return i, float(row[i] - rest.max())


def run(args) -> dict:
    ll = Llama(args.lib_dir, args.verbose)
    if args.command == "quantize":
        params = ll.l.llama_model_quantize_default_params()
        params.ftype = FTYPES[args.type]
        params.nthread = args.threads
        rc = ll.l.llama_model_quantize(args.model.encode(), args.out.encode(), C.byref(params))
        if rc != 0:
            fail(f"llama_model_quantize returned {rc}")
        return {"out": args.out, "type": args.type, "bytes": os.path.getsize(args.out)}
    model = ll.load(args.model)
    vocab = ll.l.llama_model_get_vocab(model)
    n_vocab = ll.l.llama_vocab_n_tokens(vocab)
    if args.command == "tokenize":
        raw = args.text.encode()
        buf = (C.c_int32 * (len(raw) + 16))()
        n = ll.l.llama_tokenize(vocab, raw, len(raw), buf, len(buf), args.special, args.special)
        if n < 0:
            fail(f"llama_tokenize returned {n}")
        return {"tokens": list(buf[:n])}
    sequences = []
    for text in args.tokens:
        tokens = [int(t) for t in text.split(",") if t.strip()]
        if not tokens or not all(0 <= t < n_vocab for t in tokens):
            fail(f"--tokens must be ids in 0..{n_vocab - 1}")
        sequences.append(tokens)
    steps = args.n if args.command == "greedy" else 0
    rows, runs = [], []
    for tokens in sequences:
        ctx = ll.context(model, len(tokens) + steps + 1, max(len(tokens), 32), args.threads, args.kv)
        if args.command == "logits":
            ll.decode(ctx, tokens, 0, True)
            rows += [ll.logits_row(ctx, i, n_vocab) for i in range(len(tokens))]
        else:
            ll.decode(ctx, tokens, 0, False)
            generated, margins = [], []
            for step in range(steps):
                token, margin = top2(ll.logits_row(ctx, -1, n_vocab))
                generated.append(token)
                margins.append(margin)
                if step + 1 < steps:
                    ll.decode(ctx, [token], len(tokens) + step, False)
            runs.append({"tokens": generated, "margins": margins})
        ll.l.llama_free(ctx)
    if args.command == "greedy":
        return {"runs": runs}
    np.stack(rows).astype("<f4").tofile(args.out)
    return {"out": args.out, "rows": [len(t) for t in sequences], "vocab": n_vocab}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib-dir", default=os.environ.get("LLAMA_CPP_LIB_DIR", DEFAULT_LIB_DIR))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="llama.cpp's log on stderr")
    sub = ap.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize", help="llama_model_quantize IN -> OUT")
    q.add_argument("model")
    q.add_argument("out")
    q.add_argument("--type", required=True, choices=sorted(FTYPES))
    for name in ("logits", "greedy"):
        p = sub.add_parser(name)
        p.add_argument("model")
        p.add_argument("--tokens", required=True, action="append", help="ids: 1,2,3 (repeatable)")
        p.add_argument("--kv", choices=["f16", "f32"], default="f16")
        if name == "logits":
            p.add_argument("--out", required=True, help="float32 [tokens][vocab] file")
        else:
            p.add_argument("--n", type=int, default=16, help="tokens to generate")
    t = sub.add_parser("tokenize")
    t.add_argument("model")
    t.add_argument("--text", required=True)
    t.add_argument("--special", action="store_true", help="add BOS and parse special tokens")
    args = ap.parse_args()
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()

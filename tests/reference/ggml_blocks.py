"""ggml's tensor encodings for the GGUF fixtures, in numpy, written from the block definitions
(ggml-common.h) and the reference quantizers' arithmetic (ggml-quants.c: quantize_row_q8_0_ref,
quantize_row_q4_0_ref), step for step in float32, so a file written here holds the very bytes
llama.cpp's own quantizer would produce from the same float32 values.

Q8_0 block (34 bytes, 32 values): fp16 d, then 32 int8 q; value = q * d.
  amax = max |x|; d = amax / 127; id = 1/d (0 if d is 0); q = roundf(x * id) (half away from 0);
  d is stored as fp16 (round to nearest even) after the q were computed with the float32 d.
Q4_0 block (18 bytes, 32 values): fp16 d, then 16 bytes; byte j holds q[j] in its low nibble
  and q[j + 16] in its high one; value = (q - 8) * d.
  max = the value of largest magnitude (the first one on ties), d = max / -8, id = 1/d (0 if d
  is 0), q = min(15, (int8)(x * id + 8.5f)) (truncation toward zero).
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=F32)
    if x.shape[-1] % 32:
        raise ValueError(f"rows of {x.shape[-1]} values do not split into blocks of 32")
    return x.reshape(-1, 32)


def _reciprocal(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, F32(0), F32(1) / d).astype(F32)


def _roundf(v: np.ndarray) -> np.ndarray:
    """C's roundf (half away from zero). |v| + 0.5 is exact in float64 for these float32 v."""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize_q8_0(x: np.ndarray) -> bytes:
    """Rows of float32 values (length a multiple of 32) -> Q8_0 blocks, row after row."""
    b = _blocks(x)
    d = (np.abs(b).max(axis=1, keepdims=True) / F32(127)).astype(F32)
    q = _roundf((b * _reciprocal(d)).astype(F32)).astype(np.int8)
    out = np.empty((b.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x: np.ndarray) -> bytes:
    b = _blocks(x)
    first_max = np.abs(b).argmax(axis=1)  # argmax returns the first of equal values, as ggml's strict <
    mx = b[np.arange(b.shape[0]), first_max][:, None]
    d = (mx / F32(-8)).astype(F32)
    v = ((b * _reciprocal(d)).astype(F32) + F32(8.5)).astype(F32)
    q = np.minimum(15, np.trunc(v).astype(np.int8)).astype(np.uint8)
    out = np.empty((b.shape[0], 18), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def dequantize_q8_0(raw: bytes, shape) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 34)
    d = b[:, :2].copy().view(np.float16).astype(F32)
    q = b[:, 2:].copy().view(np.int8).astype(F32)
    return (q * d).astype(F32).reshape(shape)


def dequantize_q4_0(raw: bytes, shape) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    d = b[:, :2].copy().view(np.float16).astype(F32)
    packed = b[:, 2:]
    q = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int32) - 8
    return (q.astype(F32) * d).astype(F32).reshape(shape)


def encode(x: np.ndarray, type_name: str) -> bytes:
    """float32 rows as F32, F16, BF16 (both round to nearest even), Q8_0 or Q4_0 bytes."""
    x = np.ascontiguousarray(x, dtype=F32)
    if type_name == "F32":
        return x.tobytes()
    if type_name == "F16":
        return x.astype(np.float16).tobytes()
    if type_name == "BF16":
        bits = x.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # finite values only
        return rounded.astype(np.uint16).tobytes()
    if type_name == "Q8_0":
        return quantize_q8_0(x)
    if type_name == "Q4_0":
        return quantize_q4_0(x)
    raise ValueError(f"cannot encode {type_name}")


def decode(raw: bytes, type_name: str, shape) -> np.ndarray:
    """The float32 values of bytes of any type encode() writes."""
    if type_name == "F32":
        return np.frombuffer(raw, dtype=F32).reshape(shape).copy()
    if type_name == "F16":
        return np.frombuffer(raw, dtype=np.float16).astype(F32).reshape(shape)
    if type_name == "BF16":
        bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(F32).reshape(shape)
    if type_name == "Q8_0":
        return dequantize_q8_0(raw, shape)
    if type_name == "Q4_0":
        return dequantize_q4_0(raw, shape)
    raise ValueError(f"cannot decode {type_name}")

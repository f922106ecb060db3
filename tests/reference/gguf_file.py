"""A small GGUF v3 writer and reader, written from the format's description (llama.cpp's
docs/gguf.md): not llama.cpp's gguf-py, so that the engine's reader is checked against an
independent implementation, and the tests run where gguf-py is not installed.

Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata (string key,
u32 value type, value); the tensor infos (string name, u32 n_dims, u64 dims innermost first,
u32 ggml type, u64 offset from the data section); padding to the alignment; the data section,
each tensor starting at a multiple of the alignment. Strings are a u64 byte length then UTF-8;
arrays a u32 element type, a u64 count, then the elements. Everything little-endian.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Tuple

# Metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

# ggml tensor types: id, elements per block, bytes per block (ggml-common.h).
GGML_TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210), "IQ2_XS": (17, 256, 74), "BF16": (30, 1, 2),
}
GGML_TYPE_NAMES = {v[0]: k for k, v in GGML_TYPES.items()}

DEFAULT_ALIGNMENT = 32


def tensor_bytes(type_name: str, dims: Tuple[int, ...]) -> int:
    _, block, size = GGML_TYPES[type_name]
    if dims[0] % block:
        raise ValueError(f"{type_name} needs the innermost dim {dims[0]} to be a multiple of {block}")
    n = 1
    for d in dims:
        n *= d
    return n // block * size


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: int, value) -> bytes:
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(_value(etype, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


@dataclass
class _Tensor:
    name: str
    type_name: str
    dims: Tuple[int, ...]  # ggml order: dims[0] is the contiguous one
    data: bytes


class GgufWriter:
    """Metadata and tensors in insertion order; write() lays them out."""

    def __init__(self, alignment: int = DEFAULT_ALIGNMENT):
        self.alignment = alignment
        self.kv: List[Tuple[str, int, object]] = []
        self.tensors: List[_Tensor] = []
        if alignment != DEFAULT_ALIGNMENT:
            self.add("general.alignment", U32, alignment)

    def add(self, key: str, vtype: int, value) -> None:
        """vtype: a scalar type, STRING, or ARRAY with value = (element type, list)."""
        if any(k == key for k, _, _ in self.kv):
            raise ValueError(f"duplicate key {key}")
        self.kv.append((key, vtype, value))

    def add_tensor(self, name: str, type_name: str, dims: Tuple[int, ...], data: bytes) -> None:
        if len(data) != tensor_bytes(type_name, dims):
            raise ValueError(f"{name}: {len(data)} bytes for {type_name} {dims}")
        self.tensors.append(_Tensor(name, type_name, tuple(dims), bytes(data)))

    def write(self, path: str) -> None:
        pad = lambda n: (self.alignment - n % self.alignment) % self.alignment  # noqa: E731
        head = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))]
        for key, vtype, value in self.kv:
            head += [_string(key), struct.pack("<I", vtype), _value(vtype, value)]
        offset = 0
        for t in self.tensors:
            head += [_string(t.name), struct.pack("<I", len(t.dims)),
                     struct.pack(f"<{len(t.dims)}Q", *t.dims),
                     struct.pack("<IQ", GGML_TYPES[t.type_name][0], offset)]
            offset += len(t.data) + pad(len(t.data))
        header = b"".join(head)
        with open(path, "wb") as f:
            f.write(header + b"\0" * pad(len(header)))
            for t in self.tensors:
                f.write(t.data + b"\0" * pad(len(t.data)))


@dataclass
class GgufContents:
    version: int
    metadata: Dict[str, Tuple[int, object]]          # key -> (type, value), in file order
    tensors: Dict[str, Tuple[str, Tuple[int, ...], bytes]]  # name -> (type, dims, bytes)


def read_gguf(path: str) -> GgufContents:
    """Reads a whole file (for the self-check and small fixtures; no bounds beyond Python's)."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        out = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return out[0] if len(out) == 1 else out

    def string() -> str:
        nonlocal pos
        n = take("<Q")
        pos += n
        return data[pos - n:pos].decode("utf-8")

    def value(vtype: int):
        if vtype == STRING:
            return string()
        if vtype == ARRAY:
            etype, count = take("<I"), take("<Q")
            return etype, [value(etype) for _ in range(count)]
        return take(_SCALAR[vtype])

    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = string()
        vtype = take("<I")
        metadata[key] = (vtype, value(vtype))
    infos = []
    for _ in range(n_tensors):
        name = string()
        n_dims = take("<I")
        dims = tuple(take("<Q") for _ in range(n_dims))
        infos.append((name, GGML_TYPE_NAMES[take("<I")], dims, take("<Q")))
    alignment = metadata.get("general.alignment", (U32, DEFAULT_ALIGNMENT))[1]
    base = pos + (alignment - pos % alignment) % alignment
    tensors = {}
    for name, type_name, dims, offset in infos:
        start = base + offset
        tensors[name] = (type_name, dims, data[start:start + tensor_bytes(type_name, dims)])
    return GgufContents(version, metadata, tensors)

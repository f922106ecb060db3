"""Writes the PyTorch checkpoint fixtures the io tests read, plus the values they must find.

    write_pth_fixtures.py OUT_DIR
        torch.save's state dicts (and broken variants) into OUT_DIR, and OUT_DIR/expected.json:
        {file: [{"name", "dtype", "shape", "hex"}]} with each tensor's row-major bytes, which the
        C++ side compares byte for byte.
    write_pth_fixtures.py --sparse-zip64 SRC DST GAP
        Re-packs the zip SRC as DST with a hole of GAP bytes before the first entry (a sparse
        file, so it costs no disk), pushing every offset past 4 GiB: ZIP64 the way a 70B shard
        needs it. Needs no torch.

Run with /usr/bin/python3 (Debian's python3-torch). Never loads a pickle: the malicious
fixture is written as raw bytes.
"""
import collections
import json
import os
import struct
import sys
import zipfile
import zlib


def zip_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, entries, zip64=False, gap=0, align=64):
    """A stored zip written by hand, so ZIP64 can be forced (zipfile only uses it when needed).

    With zip64 every size and offset in the central directory is 0xffffffff and the real value
    sits in the ZIP64 extra field; the archive ends with a ZIP64 end record and locator.
    Data is aligned to `align` bytes with padding in the local extra field, as torch does.
    """
    central = []
    with open(path, "wb") as f:
        if gap:
            f.seek(gap)  # leaves a hole: the file is sparse
        for name, data in entries:
            name_b = name.encode()
            offset = f.tell()
            crc = zlib.crc32(data)
            local_extra = b""
            if zip64:
                local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
            pad = (-(offset + 30 + len(name_b) + len(local_extra) + 4)) % align
            local_extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            size32 = 0xFFFFFFFF if zip64 else len(data)
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, 0, 0, 0,
                                crc, size32, size32, len(name_b), len(local_extra)))
            f.write(name_b + local_extra)
            assert f.tell() % align == 0
            f.write(data)
            central.append((name_b, crc, len(data), offset))
        cd_offset = f.tell()
        for name_b, crc, size, offset in central:
            if zip64:
                extra = struct.pack("<HHQQQ", 1, 24, size, size, offset)
                size32, offset32 = 0xFFFFFFFF, 0xFFFFFFFF
            else:
                extra, size32, offset32 = b"", size, offset
            f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45 if zip64 else 20, 0, 0,
                                0, 0, crc, size32, size32, len(name_b), len(extra), 0, 0, 0, 0,
                                offset32))
            f.write(name_b + extra)
        cd_size = f.tell() - cd_offset
        n = len(central)
        if zip64:
            end64 = f.tell()
            f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size,
                                cd_offset))
            f.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
            f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                                0xFFFFFFFF, 0))
        else:
            f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, 0))


def write_plain_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries:
            z.writestr(name, data)


# Protocol 2 pickle of `os.system('echo pwned')`: GLOBAL os.system, a 1-tuple, REDUCE, STOP.
# Written by hand and never unpickled by anything but the reader under test.
MALICIOUS_PICKLE = (b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")


def main_torch(out):
    import pickletools
    import torch

    torch.manual_seed(0)
    expected = {}

    def record(file, sd):
        rows = []
        for name, t in sd.items():
            c = t.detach().contiguous().reshape(-1)
            raw = c.view(torch.uint8) if c.dtype != torch.bool else c.to(torch.uint8)
            rows.append({"name": name, "dtype": str(t.dtype).replace("torch.", ""),
                         "shape": list(t.shape), "hex": raw.numpy().tobytes().hex()})
        expected[file] = rows

    def save(file, sd, check=True, **kwargs):
        torch.save(sd, os.path.join(out, file), **kwargs)
        if check:
            record(file, sd)

    inf, nan = float("inf"), float("nan")
    for dtype, tag in [(torch.bfloat16, "bf16"), (torch.float16, "f16"), (torch.float32, "f32")]:
        save(f"{tag}.pth", {
            "tok_embeddings.weight": torch.randn(7, 5).to(dtype),
            "layers.0.attention.wq.weight": torch.randn(4, 4).to(dtype),
            "norm.weight": torch.randn(5).to(dtype),
            "scalar": torch.tensor(3.5, dtype=dtype),
            "empty": torch.zeros(0, 3, dtype=dtype),
            "special": torch.tensor([inf, -inf, nan, -0.0, 1e-8, 65504.0], dtype=dtype),
        })
    save("ints.pth", {
        "i64": torch.tensor([-(2**62), -1, 0, 2**62 + 5], dtype=torch.int64),
        "i32": torch.tensor([[-(2**31), 7], [2**31 - 1, 0]], dtype=torch.int32),
        "i8": torch.tensor([-128, 127, 3], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
    })
    # Insertion order differs from sorted order: the reader must keep the dict's order.
    save("odict.pth", collections.OrderedDict(
        [("zeta", torch.randn(2, 2)), ("alpha", torch.randn(3)), ("mid", torch.randn(1, 2, 3))]))
    # A Module's state_dict carries _metadata, pickled through BUILD.
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    save("module.pth", module.state_dict())
    save("params.pth", {"w": torch.nn.Parameter(torch.randn(2, 3)),
                        "frozen": torch.nn.Parameter(torch.randn(3), requires_grad=False)})
    # Tied and sliced tensors: all views of one storage, several at non-zero offsets.
    base = torch.randn(6, 4).to(torch.bfloat16)
    shared = {"embed": base, "lm_head": base, "rows_2_to_5": base[2:], "row_1": base[1],
              "flat_5_to_9": base.view(-1)[5:9], "row_3_kept_2d": base[3:4]}
    save("shared.pth", shared)
    # Over 256 memo entries (LONG_BINPUT/LONG_BINGET) and sizes needing BININT2 and BININT.
    many = {f"layers.{i}.w": torch.full((2,), i % 100, dtype=torch.int8) for i in range(300)}
    many["mid"] = torch.arange(300, dtype=torch.int8)
    many["wide"] = torch.arange(70000, dtype=torch.int32).to(torch.int8)
    save("many.pth", many)
    ops = {op.name for op, _, _ in pickletools.genops(
        zipfile.ZipFile(os.path.join(out, "many.pth")).read("many/data.pkl"))}
    assert {"LONG_BINPUT", "BININT2", "BININT"} <= ops, ops

    # Checkpoints the reader must refuse.
    save("noncontig.pth", {"t": torch.randn(3, 4).t()}, check=False)
    save("nested.pth", {"model": {"w": torch.randn(2)}}, check=False)
    save("nontensor.pth", {"w": torch.randn(2), "step": 5}, check=False)
    save("float64.pth", {"d": torch.zeros(2, dtype=torch.float64)}, check=False)
    save("list_root.pth", [torch.randn(2)], check=False)
    save("legacy.pth", {"w": torch.randn(2)}, check=False, _use_new_zipfile_serialization=False)

    # Zip variants of bf16.pth: same tensors, other packaging.
    entries = zip_entries(os.path.join(out, "bf16.pth"))
    expected["zip64.pth"] = expected["bf16.pth"]
    write_zip(os.path.join(out, "zip64.pth"), entries, zip64=True)
    expected["unaligned.pth"] = expected["bf16.pth"]
    write_plain_zip(os.path.join(out, "unaligned.pth"), entries)
    write_plain_zip(os.path.join(out, "deflated.pth"), entries, zipfile.ZIP_DEFLATED)
    write_zip(os.path.join(out, "missing_storage.pth"),
              [(n, d) for n, d in entries if n != "bf16/data/0"])
    write_zip(os.path.join(out, "short_storage.pth"),
              [(n, d[:-2] if n == "bf16/data/0" else d) for n, d in entries])
    write_zip(os.path.join(out, "bigendian.pth"), entries + [("bf16/byteorder", b"big")])
    expected["littleendian.pth"] = expected["bf16.pth"]
    write_zip(os.path.join(out, "littleendian.pth"), entries + [("bf16/byteorder", b"little")])
    write_zip(os.path.join(out, "two_pickles.pth"), entries + [("other/data.pkl", b"\x80\x02}.")])
    write_zip(os.path.join(out, "no_pickle.pth"), [e for e in entries if not e[0].endswith(".pkl")])
    write_zip(os.path.join(out, "malicious.pth"),
              [("archive/data.pkl", MALICIOUS_PICKLE), ("archive/version", b"3\n")])

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--sparse-zip64":
        write_zip(sys.argv[3], zip_entries(sys.argv[2]), zip64=True, gap=int(sys.argv[4]))
    elif len(sys.argv) == 2:
        main_torch(sys.argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

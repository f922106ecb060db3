#!/usr/bin/python3
"""Meta's image input for Llama 3.2 Vision, with Pillow and torch, as the reference of
src/vision/ (image_decode.h, image_preprocess.h) and of the model references.

Written from llama-models:
  - models/llama3/chat_format.py: the image bytes go through PIL.Image.open and
    image.convert("RGB") (alpha dropped, not composited);
  - models/llama3/multimodal/image_transform.py, VariableSizeImageTransform(size=tile_size),
    called by models/llama3/multimodal/model.py with max_num_chunks=max_tiles and the defaults
    normalize_img=True, resize_to_max_canvas=False.
torchvision is not installed here; what Meta calls from it is, for a PIL image:
  F.resize(img, (h, w), BILINEAR) -> img unchanged when the size is, else img.resize((w, h), BILINEAR)
  ToTensor()  -> uint8 HWC -> CHW float32 divided by 255
  Normalize(mean, std, inplace=True) -> tensor.sub_(mean[:, None, None]).div_(std[:, None, None])
with mean and std float32 tensors.

    preprocess(path, tile_size, max_tiles) -> (tiles float32 [n, 3, T, T], (tiles_h, tiles_w))

`(tiles_h, tiles_w)` is Meta's `ar`. CLI (the C++ tests call `fixtures`):
    mllama_image.py reference OUT_DIR TILE_SIZE MAX_TILES IMAGE...   # .canvas, .tiles; JSON on stdout
    mllama_image.py fixtures OUT_DIR                                  # test images + references
"""
import io
import json
import math
import os
import struct
import sys
import zlib
from collections import OrderedDict
from typing import List, Tuple

import numpy as np
import torch
from PIL import Image

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def load_rgb(path: str) -> Image.Image:
    """The image as chat_format.py hands it to the transform."""
    with open(path, "rb") as f:
        data = f.read()
    return Image.open(io.BytesIO(data)).convert("RGB")


def supported_resolutions(max_tiles: int, tile_size: int) -> List[Tuple[int, int]]:
    """find_supported_resolutions: pairs (a, b) * tile_size, in Meta's order. get_best_fit, _pad
    and the resize read a pair as (width, height)."""
    groups = OrderedDict()
    for n in range(max_tiles, 0, -1):
        for f in sorted({d for d in range(1, n + 1) if n % d == 0}):
            groups.setdefault(f / (n // f), []).append((f, n // f))
    return [(a * tile_size, b * tile_size) for pairs in groups.values() for a, b in pairs]


def best_fit(width: int, height: int, resolutions: List[Tuple[int, int]]) -> Tuple[int, int]:
    """get_best_fit with resize_to_max_canvas=False: torch float32 scales, least upscaling
    (scale >= 1) else least downscaling, least area among equal scales (argmin: the first)."""
    res = torch.tensor(resolutions)
    scale_w = res[:, 0] / width
    scale_h = res[:, 1] / height
    scales = torch.where(scale_w > scale_h, scale_h, scale_w)
    up = scales[scales >= 1]
    selected = torch.min(up) if len(up) > 0 else torch.max(scales[scales < 1])
    chosen = res[scales == selected]
    if len(chosen) > 1:
        return tuple(chosen[torch.argmin(chosen[:, 0] * chosen[:, 1])].tolist())
    return tuple(chosen[0].tolist())


def resized_size(width: int, height: int, canvas: Tuple[int, int], tile_size: int) -> Tuple[int, int]:
    """resize_without_distortion (max_upscaling_size = tile_size) + get_max_res_without_distortion:
    (new_width, new_height), Python float arithmetic."""
    target_w = min(max(width, tile_size), canvas[0])
    target_h = min(max(height, tile_size), canvas[1])
    scale_w = target_w / width
    scale_h = target_h / height
    if scale_w < scale_h:
        return target_w, min(math.floor(height * scale_w), target_h)
    return min(math.floor(width * scale_h), target_w), target_h


def resize_and_pad(image: Image.Image, tile_size: int, max_tiles: int):
    """Steps up to _pad: (the padded RGB canvas, (tiles_h, tiles_w), (resized_w, resized_h))."""
    w, h = image.size
    canvas = best_fit(w, h, supported_resolutions(max_tiles, tile_size))
    new_w, new_h = resized_size(w, h, canvas, tile_size)
    if (new_w, new_h) != (w, h):  # torchvision's F.resize returns the image itself then
        image = image.resize((new_w, new_h), Image.BILINEAR)  # raises for a 0 side, as Meta's does
    padded = Image.new(mode="RGB", size=canvas, color=(0, 0, 0))
    padded.paste(image)
    return padded, (canvas[1] // tile_size, canvas[0] // tile_size), (new_w, new_h)


def to_tiles(padded: Image.Image, tile_size: int, tiles_h: int, tiles_w: int) -> torch.Tensor:
    """ToTensor, Normalize, _split: [tiles_h * tiles_w, 3, T, T], tiles row-major."""
    x = torch.from_numpy(np.array(padded, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()
    x = x.to(torch.float32).div(255)
    x.sub_(torch.tensor(MEAN, dtype=torch.float32)[:, None, None])
    x.div_(torch.tensor(STD, dtype=torch.float32)[:, None, None])
    c, height, width = x.shape
    x = x.view(c, tiles_h, height // tiles_h, tiles_w, width // tiles_w)
    return x.permute(1, 3, 0, 2, 4).contiguous().view(tiles_h * tiles_w, c, height // tiles_h, width // tiles_w)


def preprocess(path: str, tile_size: int, max_tiles: int):
    """Meta's transform of the image file at `path`: (tiles [n, 3, T, T] float32, (tiles_h, tiles_w))."""
    padded, (tiles_h, tiles_w), _ = resize_and_pad(load_rgb(path), tile_size, max_tiles)
    return to_tiles(padded, tile_size, tiles_h, tiles_w), (tiles_h, tiles_w)


def reference(out_dir: str, path: str, tile_size: int, max_tiles: int, tiles: bool) -> dict:
    """Writes <name>.T<t>M<m>.canvas (uint8 HWC) and, with `tiles`, .tiles (float32); returns
    what the C++ test checks."""
    name = os.path.basename(path)
    entry = {"image": name, "tile_size": tile_size, "max_tiles": max_tiles}
    try:
        padded, (th, tw), resized = resize_and_pad(load_rgb(path), tile_size, max_tiles)
    except ValueError as e:  # Pillow refuses a 0-pixel side
        entry["error"] = str(e)
        return entry
    stem = os.path.join(out_dir, f"{name}.T{tile_size}M{max_tiles}")
    with open(stem + ".canvas", "wb") as f:
        f.write(padded.tobytes())
    entry.update(tiles_h=th, tiles_w=tw, resized=list(resized), canvas=os.path.basename(stem + ".canvas"))
    if tiles:
        to_tiles(padded, tile_size, th, tw).numpy().astype("<f4").tofile(stem + ".tiles")
        entry["tiles"] = os.path.basename(stem + ".tiles")
    return entry


# ---- Test images: smooth gradients with noise (resampling errors show), written with Pillow or,
# for what Pillow does not write (16-bit colour, 2-bit grey, interlacing, a short palette), with
# a small PNG writer.

def pattern(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:, :, 0] = 255 * x / max(width - 1, 1)
    image[:, :, 1] = 255 * y / max(height - 1, 1)
    image[:, :, 2] = 127.5 + 127.5 * np.sin((x + 2 * y) / 37.0)
    image += rng.integers(-30, 31, size=image.shape, dtype=np.int16)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: str, samples: np.ndarray, bit_depth: int, color_type: int, extra: bytes = b"",
              interlace: bool = False) -> None:
    """samples: [h, w, channels] of ints < 2**bit_depth (palette indices for type 3)."""
    h, w = samples.shape[:2]
    samples = samples.reshape(h, w, -1)

    def rows(img: np.ndarray) -> bytes:
        out = b""
        for row in img:
            if bit_depth == 16:
                data = row.astype(">u2").tobytes()
            elif bit_depth == 8:
                data = row.astype(np.uint8).tobytes()
            else:
                data = np.packbits(np.unpackbits(row.astype(np.uint8).reshape(-1, 1), axis=1)[:, 8 - bit_depth:]).tobytes()
            out += b"\0" + data
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            part = samples[y0::dy, x0::dx]
            if part.size:
                raw += rows(part)
    else:
        raw = rows(samples)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw))
                + png_chunk(b"IEND", b""))


def test_images(out_dir: str) -> List[str]:
    """Writes the test images; returns their file names."""
    names = []

    def save(name: str, image: Image.Image, **options) -> None:
        image.save(os.path.join(out_dir, name), **options)
        names.append(name)

    def craft(name: str, *args, **kwargs) -> None:
        write_png(os.path.join(out_dir, name), *args, **kwargs)
        names.append(name)

    # Sizes for the transform (RGB PNG) and some as JPEG.
    sizes = [(1, 1), (560, 560), (1000, 300), (300, 1000), (2000, 2000), (561, 17), (57, 1123), (100, 50),
             (3000, 1000), (1234, 1500), (4000, 30), (37, 600), (1, 5000)]
    for i, (w, h) in enumerate(sizes):
        save(f"rgb_{w}x{h}.png", Image.fromarray(pattern(w, h, i)), compress_level=1)
    for i, (w, h) in enumerate([(1, 1), (2000, 2000), (57, 1123), (203, 157)]):
        save(f"rgb_{w}x{h}.jpg", Image.fromarray(pattern(w, h, 100 + i)), quality=90)
    rgb = pattern(203, 157, 7)
    base = Image.fromarray(rgb)
    save("rgb444.jpg", base, quality=95, subsampling=0)
    save("rgb422.jpg", base, quality=80, subsampling=1)
    save("progressive.jpg", base, quality=85, progressive=True, optimize=True)
    save("grey.jpg", base.convert("L"), quality=90)
    save("cmyk.jpg", base.convert("CMYK"), quality=90)
    # Pillow's PNG modes.
    save("grey.png", base.convert("L"))
    save("bilevel.png", base.convert("1"))
    alpha = Image.fromarray(pattern(203, 157, 8)[:, :, 0])
    la = base.convert("L")
    la.putalpha(alpha)
    save("grey_alpha.png", la)
    rgba = base.copy()
    rgba.putalpha(alpha)
    save("rgba.png", rgba)
    save("palette.png", base.quantize(200), transparency=3)
    save("palette4.png", base.quantize(16), bits=4)
    grey16 = (pattern(203, 157, 9)[:, :, 0].astype(np.uint16) * 257 // 3)  # mostly above 255
    grey16[:20] //= 256  # a band under 256, which survives Pillow's clipping
    save("grey16.png", Image.frombytes("I;16", (203, 157), grey16.astype("<u2").tobytes()))
    # What Pillow does not write.
    # High byte: the picture; low byte: a ramp, which Pillow drops (it does not round).
    wide = rgb.astype(np.uint16) * 256 + (np.arange(203, dtype=np.uint16) % 256)[None, :, None]
    craft("rgb16.png", wide, 16, 2)
    craft("rgba16.png", np.concatenate([wide, wide[:, :, :1]], 2), 16, 6)
    craft("grey_alpha16.png", np.stack([wide[:, :, 1], wide[:, :, 2]], 2), 16, 4)
    craft("grey2.png", rgb[:, :, 0] >> 6, 2, 0)
    craft("interlaced.png", rgb, 8, 2, interlace=True)
    craft("interlaced_palette2.png", rgb[:, :, 1] >> 6, 2, 3, png_chunk(b"PLTE", bytes(range(12))), interlace=True)
    # Indices past a 3-entry palette read Pillow's grey ramp.
    craft("short_palette.png", rgb[:, :, 2], 8, 3, png_chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])))
    craft("trns_gama.png", rgb, 8, 2, png_chunk(b"gAMA", struct.pack(">I", 100000)) +
          png_chunk(b"tRNS", struct.pack(">HHH", *map(int, rgb[0, 0]))))
    return names


def exact_best_fit(width: int, height: int, resolutions: List[Tuple[int, int]]) -> Tuple[int, int]:
    """get_best_fit in exact rational arithmetic, to tell which sizes float32 decides."""
    from fractions import Fraction
    scales = [min(Fraction(a, width), Fraction(b, height)) for a, b in resolutions]
    up = [x for x in scales if x >= 1]
    selected = min(up) if up else max(x for x in scales if x < 1)
    return min((r for r, x in zip(resolutions, scales) if x == selected), key=lambda r: r[0] * r[1])


def plans(count: int = 3000, seed: int = 0) -> List[dict]:
    """Steps 1-3 for image sizes without pixels: ordinary, extreme and huge sizes (where the
    float32 scales of get_best_fit pick another canvas than exact arithmetic would), over several
    tile sizes and tile counts. resized has a 0 side where Pillow would refuse the resize."""
    rng = np.random.default_rng(seed)
    settings = [(560, 4), (56, 4), (448, 1), (224, 6), (336, 8), (14, 9)]
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            w, h = (int(v) for v in rng.integers(1, 4000, 2))
        elif kind == 1:
            w, h = int(rng.integers(1, 20)), int(10 ** rng.uniform(1, 7))
            if rng.integers(2):
                w, h = h, w
        else:  # near a canvas's aspect ratio, huge: float32 rounding ties scales
            a, b = (int(v) for v in rng.integers(1, 5, 2))
            w = int(rng.integers(10 ** 6, 10 ** 8))
            h = max(1, w * b // a + int(rng.integers(-2, 3)))
        tile_size, max_tiles = settings[i % len(settings)]
        res = supported_resolutions(max_tiles, tile_size)
        canvas = best_fit(w, h, res)
        out.append({"size": [w, h], "tile_size": tile_size, "max_tiles": max_tiles,
                    "tiles_h": canvas[1] // tile_size, "tiles_w": canvas[0] // tile_size,
                    "resized": list(resized_size(w, h, canvas, tile_size)),
                    "float32_decides": canvas != exact_best_fit(w, h, res)})
    return out


# Images the transform is checked on, and those whose float tiles are compared at tile size 560
# (the uint8 canvas is compared for all; tiles at 560 are large files).
def fixtures(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    names = test_images(out_dir)
    manifest = {"images": [], "preprocess": []}
    for name in names:
        path = os.path.join(out_dir, name)
        image = load_rgb(path)
        with open(path + ".rgb", "wb") as f:
            f.write(image.tobytes())
        manifest["images"].append({"file": name, "width": image.width, "height": image.height, "rgb": name + ".rgb"})
    big_tiles = {"rgb_2000x2000.png", "rgb_3000x1000.png", "rgb_100x50.png"}
    for name in names:
        if not name.startswith("rgb_") or not name.endswith(".png"):
            continue
        for tile_size in (560, 56):
            manifest["preprocess"].append(reference(out_dir, os.path.join(out_dir, name), tile_size, 4,
                                                    tile_size == 56 or name in big_tiles))
    manifest["plans"] = plans()
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main(argv: List[str]) -> int:
    if len(argv) == 2 and argv[0] == "fixtures":
        fixtures(argv[1])
        return 0
    if len(argv) >= 5 and argv[0] == "reference":
        out_dir, tile_size, max_tiles = argv[1], int(argv[2]), int(argv[3])
        os.makedirs(out_dir, exist_ok=True)
        entries = [reference(out_dir, p, tile_size, max_tiles, True) for p in argv[4:]]
        print(json.dumps(entries, indent=1))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

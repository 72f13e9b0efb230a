"""Writes the data pipeline's test references (native/data/tests/refs/*.safetensors) from
torchvision + Pillow, on images this script synthesises. Run with the venv that has torch:

    /tmp/tv/bin/python tools/data/make_refs.py

Every tensor is keyed "<group>/<case>/<field>"; native/data/tests/*_test.cc read them. Files are
small (a few MB in all) and committed, so tests never need torch."""
from __future__ import annotations

import io
import math
import os
import random
import sys

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from safetensors.numpy import save_file
from torchvision import transforms as T
from torchvision.transforms import functional as F

sys.path.insert(0, os.path.dirname(__file__))
from reference import MEAN, STD, apply_view, validation_transform  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "native", "data", "tests", "refs")
BIL = T.InterpolationMode.BILINEAR


def synth(h: int, w: int, seed: int) -> np.ndarray:
    """A 'natural-ish' test image: smooth colour waves, flat saturated shapes, noise, clipping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64) / max(h, w)
    img = np.empty((h, w, 3))
    for c in range(3):
        a = rng.uniform(0, 1, 3)
        img[..., c] = 127 + 110 * np.sin(2 * np.pi * (a[0] * 3 * x + a[1] * 3 * y) + a[2] * 6)
    for _ in range(5):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.1, 0.3) * max(h, w)
        col = rng.choice([0, 255], 3) if rng.uniform() < 0.5 else rng.uniform(0, 255, 3)
        mask = (y * max(h, w) - cy) ** 2 + (x * max(h, w) - cx) ** 2 < r * r
        img[mask] = col
    img += rng.normal(0, 10, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).contiguous().numpy().astype(np.float32)


def rrc_cases(out: dict) -> None:
    """RandomResizedCrop.get_params with its torch draws recorded, so C++ can replay them.
    Row: W, H, scale_lo, scale_hi, ratio_lo, ratio_hi, tries, s[10], r[10], i_draw, j_draw, i, j, h, w."""
    rng = random.Random(7)
    sizes = [(500, 375), (375, 500), (64, 48), (28, 28), (33, 17), (500, 40), (40, 500), (224, 224), (1, 1), (3, 200)]
    configs = [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.9, 1.0), (3 / 4, 4 / 3)), ((0.2, 0.5), (0.5, 2.0)), ((0.999, 1.0), (1.0, 1.0))]
    rows = []
    for n in range(2000):
        W, H = sizes[n % len(sizes)] if n < 400 else (rng.randint(1, 600), rng.randint(1, 600))
        scale, ratio = configs[(n // len(sizes)) % len(configs)] if n < 400 else configs[n % len(configs)]
        img = Image.new("RGB", (W, H))
        seed = 1000 + n
        torch.manual_seed(seed)
        expect = T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
        # Replay the same torch calls, recording each draw.
        torch.manual_seed(seed)
        log_ratio = torch.log(torch.tensor(ratio))
        s_draws, r_draws, ij = [], [], [-1, -1]
        got = None
        for _ in range(10):
            s = torch.empty(1).uniform_(scale[0], scale[1]).item()
            r = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
            s_draws.append(s)
            r_draws.append(r)
            w = int(round(math.sqrt(W * H * s * r)))
            h = int(round(math.sqrt(W * H * s / r)))
            if 0 < w <= W and 0 < h <= H:
                ij = [torch.randint(0, H - h + 1, size=(1,)).item(), torch.randint(0, W - w + 1, size=(1,)).item()]
                got = (ij[0], ij[1], h, w)
                break
        if got is not None:
            assert got == tuple(expect), (got, expect)
        tries = len(s_draws)
        s_draws += [0.0] * (10 - tries)
        r_draws += [0.0] * (10 - tries)
        rows.append([W, H, scale[0], scale[1], ratio[0], ratio[1], tries, *s_draws, *r_draws, *ij, *expect])
    out["rrc/table"] = np.array(rows, dtype=np.float64)

    # Distribution reference: 20000 draws on a 500x375 image with the default parameters.
    torch.manual_seed(123)
    img = Image.new("RGB", (500, 375))
    out["rrc/samples_500x375"] = np.array(
        [T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(20000)], dtype=np.int32)


def resize_cases(out: dict) -> None:
    """img.crop(box).resize(size, BILINEAR) — and resize with a fractional box."""
    rng = random.Random(11)
    k = 0
    for (w, h), seed in [((37, 29), 1), ((64, 48), 2), ((120, 90), 3), ((301, 217), 4)]:
        src = synth(h, w, seed)
        im = Image.fromarray(src)
        out[f"resize/src{seed}"] = src
        for _ in range(6):
            cw, ch = rng.randint(1, w), rng.randint(1, h)
            j, i = rng.randint(0, w - cw), rng.randint(0, h - ch)
            ow, oh = rng.choice([(cw, ch), (24, 24), (32, 40), (max(1, cw // 3), max(1, ch // 2)), (2 * cw, ch + 5), (1, 1)])
            res = F.resized_crop(im, i, j, ch, cw, [oh, ow], BIL)
            out[f"resize/{k:03d}/params"] = np.array([seed, i, j, ch, cw, oh, ow], dtype=np.int32)
            out[f"resize/{k:03d}/expected"] = arr(res)
            k += 1
        for _ in range(3):  # fractional boxes (the scaled-JPEG path)
            x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
            x1, y1 = rng.uniform(x0 + 0.5, w), rng.uniform(y0 + 0.5, h)
            ow, oh = rng.randint(1, 40), rng.randint(1, 40)
            res = im.resize((ow, oh), Image.BILINEAR, box=(x0, y0, x1, y1))
            out[f"resize/{k:03d}/box"] = np.array([x0, y0, x1, y1], dtype=np.float32)
            out[f"resize/{k:03d}/params"] = np.array([seed, -1, -1, -1, -1, oh, ow], dtype=np.int32)
            out[f"resize/{k:03d}/expected"] = arr(res)
            k += 1


def resize_random_cases(out: dict) -> None:
    """Many small random resizes: both pass orders of Pillow 13, up- and downscaling."""
    rng = random.Random(12)
    nrng = np.random.default_rng(12)
    for k in range(80):
        w, h = rng.randint(1, 24), rng.randint(1, 24)
        ow, oh = rng.randint(1, 30), rng.randint(1, 30)
        src = nrng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out[f"resize_rand/{k:03d}/input"] = src
        out[f"resize_rand/{k:03d}/expected"] = arr(Image.fromarray(src).resize((ow, oh), Image.BILINEAR))


def validation_cases(out: dict) -> None:
    """Resize(shorter side) + CenterCrop + ToTensor + Normalize."""
    cases = [((70, 50), 40, 32), ((50, 70), 40, 32), ((64, 64), 40, 32), ((33, 90), 40, 32), ((91, 33), 36, 30),
             ((150, 100), 128, 112), ((45, 60), 24, 32), ((60, 45), 0, 20)]
    for k, ((w, h), resize, crop) in enumerate(cases):
        src = synth(h, w, 50 + k)
        im = Image.fromarray(src)
        tf = T.Compose(([T.Resize(resize, interpolation=BIL)] if resize else []) +
                       [T.CenterCrop(crop), T.ToTensor(), T.Normalize(MEAN, STD)])
        out[f"val/{k:03d}/input"] = src
        out[f"val/{k:03d}/params"] = np.array([resize, crop], dtype=np.int32)
        out[f"val/{k:03d}/expected"] = hwc(tf(im))
    # The reference's own transform object, at full size, agrees with the composition above.
    src = synth(200, 300, 49)
    assert torch.equal(validation_transform()(Image.fromarray(src)),
                       T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])(Image.fromarray(src)))


def color_cases(out: dict) -> None:
    imgs = [synth(40, 48, 21), synth(33, 27, 22)]
    rng = np.random.default_rng(5)
    imgs.append(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))  # all kinds of colours
    f32 = lambda v: float(np.float32(v))  # torch draws factors in float32
    ops = {
        "brightness": (F.adjust_brightness, [0.6, 0.77, 1.0, 1.23, 1.4]),
        "contrast": (F.adjust_contrast, [0.6, 0.81, 1.0, 1.17, 1.4]),
        "saturation": (F.adjust_saturation, [0.8, 0.93, 1.0, 1.2]),
        "hue": (F.adjust_hue, [-0.1, -0.05, -0.0039, 0.0, 0.02, 0.0999]),
    }
    for g, src in enumerate(imgs):
        im = Image.fromarray(src)
        out[f"color/img{g}/input"] = src
        for name, (fn, factors) in ops.items():
            for k, f in enumerate(factors):
                f = f32(f)
                out[f"color/img{g}/{name}/{k}/factor"] = np.array([f], dtype=np.float64)
                out[f"color/img{g}/{name}/{k}/expected"] = arr(fn(im, f))
        out[f"color/img{g}/gray/expected"] = arr(F.rgb_to_grayscale(im, num_output_channels=3))
        out[f"color/img{g}/solarize/expected"] = arr(ImageOps.solarize(im))
        out[f"color/img{g}/flip/expected"] = arr(F.hflip(im))
        out[f"color/img{g}/normalize/expected"] = hwc(F.normalize(F.to_tensor(im), MEAN, STD))
        for k, sigma in enumerate([0.1, 0.35, 0.9, 1.37, 2.0, 1.9999]):
            if g == 2 and k > 1:
                break
            out[f"color/img{g}/blur/{k}/sigma"] = np.array([sigma], dtype=np.float64)
            out[f"color/img{g}/blur/{k}/expected"] = arr(im.filter(ImageFilter.GaussianBlur(radius=sigma)))
    tiny = synth(3, 4, 23)  # box wider than the image
    out["color/tiny/input"] = tiny
    out["color/tiny/blur/0/sigma"] = np.array([2.0], dtype=np.float64)
    out["color/tiny/blur/0/expected"] = arr(Image.fromarray(tiny).filter(ImageFilter.GaussianBlur(radius=2.0)))


def pipeline_cases(out: dict) -> None:
    """Whole views with explicit parameters. Row: i, j, h, w, jitter, order[4], b, c, s, hue,
    blur, sigma, gray, flip, solarize, out_h, out_w."""
    rng = random.Random(3)
    for k in range(24):
        w, h = rng.randint(40, 120), rng.randint(40, 120)
        src = synth(h, w, 300 + k)
        im = Image.fromarray(src)
        i, j, ch, cw = T.RandomResizedCrop.get_params(im, [0.08, 1.0], [3 / 4, 4 / 3])
        order = list(range(4))
        rng.shuffle(order)
        p = dict(crop=(i, j, ch, cw), jitter=rng.random() < 0.8, order=order,
                 brightness=float(np.float32(rng.uniform(0.6, 1.4))), contrast=float(np.float32(rng.uniform(0.6, 1.4))),
                 saturation=float(np.float32(rng.uniform(0.8, 1.2))), hue=float(np.float32(rng.uniform(-0.1, 0.1))),
                 blur=rng.random() < 0.6, sigma=rng.uniform(0.1, 2.0), gray=rng.random() < 0.25,
                 flip=rng.random() < 0.5, solarize=rng.random() < 0.3)
        size = (rng.choice([32, 40]), rng.choice([32, 40]))
        out[f"view/{k:03d}/input"] = src
        out[f"view/{k:03d}/params"] = np.array(
            [i, j, ch, cw, p["jitter"], *order, p["brightness"], p["contrast"], p["saturation"], p["hue"],
             p["blur"], p["sigma"], p["gray"], p["flip"], p["solarize"], size[0], size[1]], dtype=np.float64)
        out[f"view/{k:03d}/expected"] = hwc(apply_view(im, p, size))


def decode_cases(out: dict) -> None:
    src = synth(47, 61, 400)
    im = Image.fromarray(src)
    files = {}

    def save(name, image, fmt, **kw):
        b = io.BytesIO()
        image.save(b, fmt, **kw)
        files[name] = b.getvalue()

    save("jpeg420", im, "JPEG", quality=90)
    save("jpeg444", im, "JPEG", quality=95, subsampling=0)
    save("jpeg422", im, "JPEG", quality=85, subsampling=1)
    save("jpegprog", im, "JPEG", quality=90, progressive=True)
    save("jpeggray", im.convert("L"), "JPEG", quality=90)
    save("jpegcmyk", im.convert("CMYK"), "JPEG", quality=95)
    save("pngrgb", im, "PNG")
    save("pngrgba", Image.fromarray(np.dstack([src, (np.arange(47 * 61) % 256).reshape(47, 61).astype(np.uint8)])), "PNG")
    save("pngl", im.convert("L"), "PNG")
    save("pngla", im.convert("LA"), "PNG")
    save("pngp", im.convert("P", palette=Image.ADAPTIVE, colors=37), "PNG")
    pt = im.convert("P", palette=Image.ADAPTIVE, colors=16)
    save("pngptrns", pt, "PNG", transparency=3)
    save("png1", im.convert("1"), "PNG")
    for k, (name, b) in enumerate(sorted(files.items())):
        out[f"decode/{name}/file"] = np.frombuffer(b, dtype=np.uint8).copy()
        out[f"decode/{name}/expected"] = arr(Image.open(io.BytesIO(b)))
    # JPEG DCT-domain scaling: PIL's draft mode asks libjpeg for the same 1/2, 1/4, 1/8 scales.
    big = Image.fromarray(synth(203, 257, 401))
    b = io.BytesIO()
    big.save(b, "JPEG", quality=90)
    out["scaled/file"] = np.frombuffer(b.getvalue(), dtype=np.uint8).copy()
    for d in (1, 2, 4, 8):
        j = Image.open(io.BytesIO(b.getvalue()))
        j.draft("RGB", (257 // d, 203 // d))
        a = arr(j)
        assert a.shape[:2] == (math.ceil(203 / d), math.ceil(257 / d)), a.shape
        out[f"scaled/{d}/expected"] = a
    # Broken files: PIL refuses each; so must we.
    trunc = files["jpeg420"][: len(files["jpeg420"]) // 2]
    broken = {"jpegtrunc": trunc, "pngtrunc": files["pngrgb"][: len(files["pngrgb"]) * 2 // 3],
              "text": b"this is not an image\n", "empty": b"", "jpeghead": files["jpeg420"][:200]}
    for name, b in broken.items():
        try:
            Image.open(io.BytesIO(b)).convert("RGB")
            raise AssertionError(f"PIL decoded {name}")
        except (OSError, SyntaxError, ValueError):
            pass
        out[f"broken/{name}/file"] = np.frombuffer(b, dtype=np.uint8).copy() if b else np.zeros(0, np.uint8)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    groups = {"geometry": [rrc_cases, resize_cases, resize_random_cases, validation_cases], "color": [color_cases],
              "view": [pipeline_cases], "decode": [decode_cases]}
    meta = {"torch": torch.__version__, "torchvision": __import__("torchvision").__version__,
            "pillow": Image.__version__, "numpy": np.__version__}
    for name, fns in groups.items():
        out: dict = {}
        for fn in fns:
            fn(out)
        path = os.path.join(OUT, f"{name}.safetensors")
        save_file(out, path, metadata=meta)
        print(f"{path}: {len(out)} tensors, {os.path.getsize(path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

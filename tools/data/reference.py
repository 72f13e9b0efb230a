"""The reference's data pipeline (spec §7) in torchvision + Pillow: what native/data reproduces.

Used by make_refs.py (test references) and bench_torchvision.py (the speed baseline)."""
from __future__ import annotations

import random

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T
from torchvision.transforms import functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class GaussianBlur:
    """BYOL/M2T blur: σ ~ U(lo, hi) with Python's random, PIL's GaussianBlur(radius=σ)."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, img: Image.Image) -> Image.Image:
        s = random.uniform(self.sigma[0], self.sigma[1])
        return img.filter(ImageFilter.GaussianBlur(radius=s))


class Solarize:
    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img)


def view_transform(view: int, size: int = 224) -> T.Compose:
    """View 1 (blur p 1.0, no solarize) or view 2 (blur p 0.1, solarize p 0.2)."""
    ops = [
        T.RandomResizedCrop(size, interpolation=T.InterpolationMode.BILINEAR),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomApply([GaussianBlur((0.1, 2.0))], p=1.0 if view == 1 else 0.1),
        T.RandomGrayscale(p=0.2),
        T.RandomHorizontalFlip(),
    ]
    if view == 2:
        ops.append(T.RandomApply([Solarize()], p=0.2))
    ops += [T.ToTensor(), T.Normalize(MEAN, STD)]
    return T.Compose(ops)


def validation_transform(resize: int = 256, size: int = 224) -> T.Compose:
    return T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(), T.Normalize(MEAN, STD)])


def apply_view(img: Image.Image, p: dict, size, mean=MEAN, std=STD) -> torch.Tensor:
    """One view with explicit parameters (no randomness), in the reference's order:
    crop+resize → jitter ops in p['order'] → blur → grayscale → flip → solarize → normalise."""
    i, j, h, w = p["crop"]
    img = F.resized_crop(img, i, j, h, w, [size[0], size[1]], T.InterpolationMode.BILINEAR)
    if p["jitter"]:
        for op in p["order"]:
            if op == 0:
                img = F.adjust_brightness(img, p["brightness"])
            elif op == 1:
                img = F.adjust_contrast(img, p["contrast"])
            elif op == 2:
                img = F.adjust_saturation(img, p["saturation"])
            else:
                img = F.adjust_hue(img, p["hue"])
    if p["blur"]:
        img = img.filter(ImageFilter.GaussianBlur(radius=p["sigma"]))
    if p["gray"]:
        img = F.rgb_to_grayscale(img, num_output_channels=3)
    if p["flip"]:
        img = F.hflip(img)
    if p["solarize"]:
        img = ImageOps.solarize(img)
    return F.normalize(F.to_tensor(img), mean, std)

"""Loads an mt-export file in PyTorch and compares its features with the package's.

    python tools/export/check_export.py --check enc.safetensors io.safetensors [--check ...] [--timm]

For each pair, io.safetensors holds `input` [N, 3, H, W] float32 (normalised) and `features` [N, D], the
package's own features of that input. Loads torchvision's `<arch>()` with fc = Identity and
strict=True (and, with --timm, timm.create_model(arch, num_classes=0, checkpoint_path=...)),
runs them in eval mode and prints one JSON line per pair: max |ours - theirs| / max |ours| per model.
"""
import argparse
import json

import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def check(export: str, io_file: str, use_timm: bool) -> dict:
    with safe_open(export, "pt") as f:
        arch = f.metadata()["arch"]
    io = load_file(io_file)
    x, want = io["input"], io["features"].double()
    out = {"export": export, "arch": arch, "n": int(x.shape[0]), "dim": int(want.shape[1])}

    m = getattr(torchvision.models, arch)()
    m.fc = torch.nn.Identity()
    res = m.load_state_dict(load_file(export), strict=True)
    out["torchvision_strict"] = not res.missing_keys and not res.unexpected_keys
    m.eval()
    with torch.no_grad():
        out["torchvision_rel_err"] = rel(m(x).double(), want)

    if use_timm:
        import timm

        t = timm.create_model(arch, pretrained=False, num_classes=0, checkpoint_path=export)
        t.eval()
        with torch.no_grad():
            out["timm_rel_err"] = rel(t(x).double(), want)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", nargs=2, action="append", required=True, metavar=("EXPORT", "IO"))
    ap.add_argument("--timm", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    for export, io_file in a.check:
        print(json.dumps(check(export, io_file, a.timm)))


if __name__ == "__main__":
    main()

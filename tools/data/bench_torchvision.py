"""Throughput of the reference's two-view pipeline in torchvision + Pillow (tools/data/reference.py)
on an image folder, with a given number of DataLoader worker processes. Prints one JSON line.

    /tmp/tv/bin/python tools/data/bench_torchvision.py --dir /tmp/m2t-bench-images --workers 2"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

sys.path.insert(0, os.path.dirname(__file__))
from reference import view_transform  # noqa: E402


class TwoViews:
    def __init__(self, size: int):
        self.v1, self.v2 = view_transform(1, size), view_transform(2, size)

    def __call__(self, img):
        return self.v1(img), self.v2(img)


def one_thread(_: int) -> None:
    torch.set_num_threads(1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--images", type=int, default=640, help="images to time (after one warm-up batch)")
    a = p.parse_args()
    torch.set_num_threads(1)

    def cpu() -> float:  # this process and its (finished) workers
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    cpu0 = cpu()
    ds = ImageFolder(a.dir, transform=TwoViews(a.size))
    dl = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True,
                    persistent_workers=a.workers > 0, worker_init_fn=one_thread, prefetch_factor=2 if a.workers > 0 else None)
    seen, t0, first = 0, 0.0, True
    while seen < a.images:
        for (v1, v2), _ in dl:
            if first:  # worker start-up and the first batch are not timed
                first, t0 = False, time.perf_counter()
                continue
            seen += v1.shape[0]
            if seen >= a.images:
                break
    dt = time.perf_counter() - t0
    del dl  # workers exit, so their CPU time is counted
    cpu_s = cpu() - cpu0
    print(json.dumps({"workers": a.workers, "images": seen, "seconds": dt, "images_per_s": seen / dt,
                      "images_per_cpu_s": (seen + a.batch) / cpu_s, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch side of the benchmark: the full Momentum^2 Teacher training step on CPU.

One step = EMA of the teacher, student forward on both views (two calls, per-view BN),
teacher forward on both views (momentum BN), loss, backward, SGD step (spec §3), using the
reference model of tools/golden/reference.py.

    python3 tools/bench/torch_step.py --arch resnet18 --small-stem --size 32 --batch 64 --threads 2
    python3 tools/bench/torch_step.py --arch resnet50 --size 112 --batch 16 --threads 2
    python3 tools/bench/torch_step.py --arch resnet50 --size 112 --batch 16 --threads 2 --precision bf16

--precision bf16 runs the iteration under torch.autocast("cpu", dtype=torch.bfloat16): PyTorch's
CPU mixed precision (convolutions and linear layers in bf16, fp32 master weights and optimizer).
--channels-last puts the model and images in torch.channels_last (NHWC). With both, PyTorch runs
this model fastest on CPU (on an AMX CPU, bf16 channels_last is ~1.15x bf16 NCHW).

Prints the iteration counts on stderr and one JSON line on stdout:
{"impl":"pytorch","arch":...,"size":...,"batch":...,"threads":...,"images_per_s":...}
(images = batch: one image is one pair of views).
By default the number of timed steps is chosen from the (last) warm-up step's time to fill
--budget seconds (at least --min-iters): on 2 busy cores both configs above take ~60 s in all.
"""
import argparse
import json
import resource
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import reference as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet18", choices=sorted(R.ARCHS))
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--small-stem", action="store_true", help="3x3/1 stem, no maxpool")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--batch", type=int, default=64, help="images per step (each a pair of views)")
    ap.add_argument("--hidden", type=int, default=4096, help="head hidden width")
    ap.add_argument("--out", type=int, default=256, help="head output width")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up steps (not timed, at least 1)")
    ap.add_argument("--iters", type=int, default=0, help="timed steps (0: fill --budget seconds)")
    ap.add_argument("--budget", type=float, default=30.0, help="target seconds of timed steps when --iters 0")
    ap.add_argument("--min-iters", type=int, default=2, help="floor on the automatic --iters")
    ap.add_argument("--max-iters", type=int, default=200, help="cap on the automatic --iters")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--total-iters", type=int, default=100000, help="K for the tau / alpha schedules")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: torch.autocast on CPU")
    ap.add_argument("--channels-last", action="store_true",
                    help="model and images in torch.channels_last (NHWC, oneDNN's preferred layout on CPU)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = R.Momentum2Teacher(args.arch, width=args.width, small_stem=args.small_stem, hidden=args.hidden,
                               out=args.out, total_iters=args.total_iters)
    opt = R.SGD(model.student_parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    shape = (args.batch, 3, args.size, args.size)
    x1 = torch.randn(shape)
    x2 = torch.randn(shape)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x1 = x1.contiguous(memory_format=torch.channels_last)
        x2 = x2.contiguous(memory_format=torch.channels_last)

    def iteration(k):
        if args.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return R.m2t_iteration(model, opt, x1, x2, k)
        return R.m2t_iteration(model, opt, x1, x2, k)

    k = 0
    t_last = None
    for _ in range(max(1, args.warmup)):
        t0 = time.perf_counter()
        iteration(k)
        t_last = time.perf_counter() - t0
        k += 1
    iters = args.iters if args.iters > 0 else int(max(args.min_iters, min(args.max_iters, args.budget // max(t_last, 1e-9))))
    print(f"[torch_step] {args.precision} {args.arch} size {args.size} batch {args.batch} threads {args.threads}: "
          f"warm-up {max(1, args.warmup)} steps (last {t_last:.3f} s), timing {iters} steps", file=sys.stderr)

    t0 = time.perf_counter()
    for _ in range(iters):
        loss, _ = iteration(k)
        k += 1
    elapsed = time.perf_counter() - t0
    if not (loss == loss):  # NaN guard
        raise SystemExit("loss is NaN")

    print(json.dumps({
        "impl": "pytorch",
        "arch": args.arch,
        "size": args.size,
        "batch": args.batch,
        "threads": args.threads,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "images_per_s": round(args.batch * iters / elapsed, 3),
        "small_stem": args.small_stem,
        "width": args.width,
        "hidden": args.hidden,
        "out": args.out,
        "warmup": max(1, args.warmup),
        "iters": iters,
        "sec_per_step": round(elapsed / iters, 5),
        "torch": torch.__version__,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # Linux: kB
    }))


if __name__ == "__main__":
    main()

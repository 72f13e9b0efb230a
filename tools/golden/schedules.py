#!/usr/bin/env python3
"""Learning-rate schedule goldens (spec §5), plain Python, no dependencies.

Reproduces the reference's per-iteration formulas (momentum_teacher/utils: adjust_learning_rate_iter)
as the spec states them, for a set of configurations, and writes test/goldens/schedules.json.
test/schedules.test.ts compares lib/schedules.ts against it.

    python3 tools/golden/schedules.py            # rewrites test/goldens/schedules.json
"""
import json
import math
import os


def warmcos(iters, lr_base, ipe, total_epochs, warmup_epochs, warmup_lr=1e-6):
    T = ipe * total_epochs
    W = ipe * warmup_epochs
    if W > 0 and iters <= W:
        return (lr_base - warmup_lr) * iters / W + warmup_lr
    return lr_base * 0.5 * (1 + math.cos(math.pi * (iters - W) / (T - W)))


def cos(iters, lr_base, ipe, total_epochs):
    T = ipe * total_epochs
    return lr_base * 0.5 * (1 + math.cos(math.pi * iters / T))


def multistep(iters, lr_base, ipe, milestones, gamma=0.1):
    n = sum(1 for m in milestones if iters >= ipe * m)
    return lr_base * gamma ** n


def linear(iters, lr_base, ipe, total_epochs):
    # Ours (the reference raises for "linear"): linear decay to 0 over the run.
    T = ipe * total_epochs
    return lr_base * max(0.0, 1 - iters / T)


def step_milestones(total_epochs, step_epochs):
    # Ours (the reference raises for "step"): multistep with evenly spaced milestones.
    return list(range(step_epochs, total_epochs, step_epochs))


CASES = [
    # name, scheduler, lr_base, ipe, total_epochs, extra
    ("warmcos_8v100_100e", "warmcos", 0.05 / 256 * 1024, 1251, 100, {"warmup_epochs": 10}),
    ("warmcos_4096_lars_300e", "warmcos", 0.3 / 256 * 4096, 312, 300, {"warmup_epochs": 10}),
    ("warmcos_tiny", "warmcos", 0.05 / 256 * 8, 4, 5, {"warmup_epochs": 2}),
    ("warmcos_no_warmup", "warmcos", 0.1, 7, 3, {"warmup_epochs": 0}),
    ("cos_byol_80e", "cos", 0.2 / 256 * 256, 5004, 80, {}),
    ("cos_tiny", "cos", 0.5, 3, 4, {}),
    ("multistep_moco_100e", "multistep", 30.0 / 256 * 256, 5004, 100, {"milestones": [60, 80]}),
    ("multistep_tiny", "multistep", 1.0, 2, 10, {"milestones": [3, 6, 9]}),
    ("linear_tiny", "linear", 0.4, 3, 5, {}),
    ("step_tiny", "step", 0.3, 2, 9, {"step_epochs": 3}),
]


def sample_iters(T):
    if T <= 200:
        return list(range(0, T + 1))
    pts = set(range(0, 50)) | set(range(T - 50, T + 1))
    pts |= {int(T * f / 97) for f in range(98)}
    return sorted(pts)


def main():
    out = []
    for name, sched, lr_base, ipe, total_epochs, extra in CASES:
        T = ipe * total_epochs
        iters = sample_iters(T)
        if sched == "warmcos":
            lrs = [warmcos(i, lr_base, ipe, total_epochs, extra["warmup_epochs"]) for i in iters]
        elif sched == "cos":
            lrs = [cos(i, lr_base, ipe, total_epochs) for i in iters]
        elif sched == "multistep":
            lrs = [multistep(i, lr_base, ipe, extra["milestones"]) for i in iters]
        elif sched == "linear":
            lrs = [linear(i, lr_base, ipe, total_epochs) for i in iters]
        elif sched == "step":
            ms = step_milestones(total_epochs, extra["step_epochs"])
            lrs = [multistep(i, lr_base, ipe, ms) for i in iters]
        else:
            raise ValueError(sched)
        case = {
            "name": name,
            "scheduler": sched,
            "lrBase": lr_base,
            "itersPerEpoch": ipe,
            "totalEpochs": total_epochs,
            "iters": iters,
            "lr": lrs,
        }
        if "warmup_epochs" in extra:
            case["warmupEpochs"] = extra["warmup_epochs"]
            case["warmupLr"] = 1e-6
        if "milestones" in extra:
            case["milestones"] = extra["milestones"]
        if "step_epochs" in extra:
            case["stepEpochs"] = extra["step_epochs"]
        out.append(case)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "test", "goldens", "schedules.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"generator": "tools/golden/schedules.py", "cases": out}, f, indent=1)
        f.write("\n")
    print("wrote", path, sum(len(c["iters"]) for c in out), "points in", len(out), "cases")


if __name__ == "__main__":
    main()

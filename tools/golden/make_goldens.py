#!/usr/bin/env python3
"""Write the golden files of tools/golden/SCHEMA.md into native/tests/goldens/.

    python3 tools/golden/make_goldens.py [--out DIR] [--skip-checks]

Deterministic: float32, one thread, deterministic algorithms, every input and initial
value from the SCHEMA.md generator (no RNG). Runs self-checks first and fails loudly.
"""
import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "native", "tests", "goldens")

# --------------------------------------------------------------------------------------
# The deterministic generator (SCHEMA.md)
# --------------------------------------------------------------------------------------
MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(name):
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def splitmix64_np(x):
    """Vectorised splitmix64 on a uint64 array (wraps modulo 2^64)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def splitmix64_py(x):
    """Scalar reference with Python ints (used by the self-check)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def gen_u(name, n):
    """u(name, i) for i in [0, n): float64 in [0, 1), 24 bits."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
    return (splitmix64_np(x) >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def gen(name, shape, offset, scale):
    shape = [int(s) for s in shape]
    n = int(np.prod(shape)) if shape else 1
    u = gen_u(name, n)
    return (float(offset) + float(scale) * (2.0 * u - 1.0)).astype(np.float32).reshape(shape)


def gen_t(name, shape, offset, scale, dtype=torch.float32):
    """gen as a torch tensor (values are float32; dtype only widens them for the precision check)."""
    return torch.from_numpy(gen(name, shape, offset, scale)).to(dtype)


BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, R._MomentumBatchNorm)


@torch.no_grad()
def init_from_gen(module, prefix):
    """Initialise every parameter of `module` from gen under prefix + its state-dict name
    (roles per SCHEMA.md). Buffers keep their defaults (running stats 0 / 1)."""
    done = set()
    for mname, m in module.named_modules():
        full = prefix + mname
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(gen_t(full + ".weight", m.weight.shape, 0.0, math.sqrt(6.0 / fan_out)))
            done.add(id(m.weight))
            assert m.bias is None
        elif isinstance(m, nn.Linear):
            s = 1.0 / math.sqrt(m.in_features)
            m.weight.copy_(gen_t(full + ".weight", m.weight.shape, 0.0, s))
            m.bias.copy_(gen_t(full + ".bias", m.bias.shape, 0.0, s))
            done.update({id(m.weight), id(m.bias)})
        elif isinstance(m, BN_TYPES):
            m.weight.copy_(gen_t(full + ".weight", m.weight.shape, 1.0, 0.1))
            m.bias.copy_(gen_t(full + ".bias", m.bias.shape, 0.0, 0.1))
            done.update({id(m.weight), id(m.bias)})
    missing = [n for n, p in module.named_parameters() if id(p) not in done]
    assert not missing, f"parameters without a gen role: {missing}"


def np32(t):
    return t.detach().to(torch.float32).contiguous().cpu().numpy().copy()


def state_dict_np(module, key_prefix):
    """Full state dict (params and buffers) as float32 numpy, keys key_prefix + name."""
    return {key_prefix + n: np32(t) for n, t in module.state_dict().items()}


# --------------------------------------------------------------------------------------
# Golden configurations (SCHEMA.md)
# --------------------------------------------------------------------------------------
WIDTH = 0.125
HIDDEN, OUT = 64, 32
M2T_B, M2T_SIZE, M2T_K, M2T_TAU_BASE = 8, 32, 10, 0.99
M2T_STEPS = 3
# Learning rates are small on purpose (see SCHEMA.md, "Numerical robustness"): larger ones make
# the three steps chaotic, i.e. float32 rounding noise grows to percent-level differences.
SGD_CFG = dict(momentum=0.9, weight_decay=1e-4, lr=[0.005, 0.004, 0.003])
LARS_CFG = dict(momentum=0.9, weight_decay=1e-5, eta=0.001, lr=[0.04, 0.03, 0.02])
# Minimum distance of every student ReLU input from 0 and of every max-pool winner from the
# runner-up along the golden trajectory: an implementation whose activations are within this
# of ours routes every gradient the same way.
MIN_DECISION_MARGIN = 5e-6
# Mathematically zero gradients (Linear biases followed, up to linear maps, by a BatchNorm):
# the stored values are float rounding noise; compare them with an absolute tolerance.
ZERO_GRAD_PARAMS = ("student_encoder.fc.0.bias", "student_encoder.fc.3.bias", "student_encoder.fc.4.bias")


def make_resnet_forward(dtype=torch.float32):
    out = {}
    for arch in ("resnet18", "resnet50"):
        net = R.ResNet(arch, width=WIDTH, small_stem=False)
        init_from_gen(net, "encoder.")
        net.to(dtype)
        x = gen_t("input", [4, 3, 64, 64], 0.0, 1.0, dtype)
        net.train()
        with torch.no_grad():
            train_out = net(x)
        net.eval()
        with torch.no_grad():
            eval_out = net(x)
        out[f"{arch}.train_out"] = np32(train_out)
        out[f"{arch}.eval_out"] = np32(eval_out)
        for mname, m in net.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                assert int(m.num_batches_tracked) == 1
                out[f"{arch}.buffer.{mname}.running_mean"] = np32(m.running_mean)
                out[f"{arch}.buffer.{mname}.running_var"] = np32(m.running_var)
        assert train_out.shape == (4, net.feat_dim)
    return out


def build_m2t(dtype=torch.float32):
    model = R.Momentum2Teacher("resnet18", width=WIDTH, small_stem=False, hidden=HIDDEN, out=OUT,
                               total_iters=M2T_K, tau_base=M2T_TAU_BASE, quirk=True)
    init_from_gen(model.student_encoder, "student_encoder.")
    model.to(dtype)
    model.copy_student_to_teacher()
    return model


def m2t_views(t, dtype=torch.float32):
    shape = [M2T_B, 3, M2T_SIZE, M2T_SIZE]
    return gen_t(f"view1.it{t}", shape, 0.0, 1.0, dtype), gen_t(f"view2.it{t}", shape, 0.0, 1.0, dtype)


class DecisionMargins:
    """Records, for the student's forward passes, min |ReLU input| and the min gap between the
    largest and second-largest input of every max-pool window (windows with a positive max)."""

    def __init__(self, module):
        self.relu = float("inf")
        self.pool = float("inf")
        self.hooks = []
        for m in module.modules():
            if isinstance(m, nn.ReLU):
                self.hooks.append(m.register_forward_pre_hook(self._relu))
            elif isinstance(m, nn.MaxPool2d):
                assert (m.kernel_size, m.stride, m.padding) == (3, 2, 1)
                self.hooks.append(m.register_forward_pre_hook(self._pool))

    def _relu(self, m, inp):
        if torch.is_grad_enabled():
            self.relu = min(self.relu, inp[0].detach().abs().min().item())

    def _pool(self, m, inp):
        if torch.is_grad_enabled():
            x = inp[0].detach()
            assert (x >= 0).all()  # after ReLU, so zero padding cannot win
            cols = F.unfold(x.reshape(-1, 1, *x.shape[2:]), kernel_size=3, padding=1, stride=2)
            top = cols.topk(2, dim=1).values
            gap = (top[:, 0] - top[:, 1])[top[:, 0] > 0]
            if gap.numel():
                self.pool = min(self.pool, gap.min().item())

    def remove(self):
        for h in self.hooks:
            h.remove()


def make_m2t(kind, dtype=torch.float32):
    model = build_m2t(dtype)
    margins = DecisionMargins(model.student_encoder)
    params = model.student_parameters()
    if kind == "sgd":
        cfg = SGD_CFG
        opt = R.SGD(params, lr=cfg["lr"][0], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    else:
        cfg = LARS_CFG
        opt = R.LARS(params, lr=cfg["lr"][0], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                     eta=cfg["eta"])
    out = {}
    grads = {}

    def grab(m):
        for n, p in m.student_parameters():
            assert p.grad is not None, n
            grads["grad." + n] = np32(p.grad)

    losses, taus, alphas = [], [], []
    for t in range(M2T_STEPS):
        x1, x2 = m2t_views(t, dtype)
        loss, tau = R.m2t_iteration(model, opt, x1, x2, k=t, lr=cfg["lr"][t], on_grads=grab if t == 0 else None)
        assert math.isfinite(loss) and 0.0 <= loss <= 8.0, loss
        a = model.teacher_alpha()
        assert all(v == a[0] for v in a), "momentum-BN layers disagree on alpha"
        losses.append(loss)
        taus.append(tau)
        alphas.append(a[0])

    # self-checks on the run
    for t in range(M2T_STEPS):
        assert taus[t] == 1 - (1 - M2T_TAU_BASE) * (math.cos(math.pi * t / M2T_K) + 1) / 2
        assert abs(alphas[t] - (math.cos(math.pi * (t + 1) / M2T_K) + 1) / 2) < 1e-15
    assert abs(alphas[2] - (math.cos(math.pi * 3 / 10) + 1) / 2) < 1e-15
    for m in R.momentum_bn_modules(model.teacher_encoder):
        assert m.pairs == M2T_STEPS and m.stash is None and int(m.num_batches_tracked) == 0
    for m in model.student_encoder.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            assert int(m.num_batches_tracked) == 2 * M2T_STEPS

    margins.remove()
    out["lr"] = np.asarray(cfg["lr"], dtype=np.float32)
    out["loss"] = np.asarray(losses, dtype=np.float32)
    out["tau"] = np.asarray(taus, dtype=np.float32)
    out["alpha"] = np.asarray(alphas, dtype=np.float32)
    assert len(grads) == len(params)
    out.update(grads)
    out.update(state_dict_np(model.student_encoder, "student.student_encoder."))
    out.update(state_dict_np(model.teacher_encoder, "teacher.teacher_encoder."))
    for n, _ in params:
        out["momentum." + n] = np32(opt.state[n])
    return out, losses, (margins.relu, margins.pool)


def build_probe(dtype=torch.float32):
    probe = R.LinearProbe("resnet18", width=WIDTH, small_stem=False, num_classes=10)
    init_from_gen(probe.teacher_encoder, "teacher_encoder.")
    with torch.no_grad():
        for mname, m in probe.teacher_encoder.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                full = "teacher_encoder." + mname
                m.running_mean.copy_(gen_t(full + ".running_mean", m.running_mean.shape, 0.0, 0.1))
                m.running_var.copy_(gen_t(full + ".running_var", m.running_var.shape, 1.0, 0.5))
        fc0, fc1 = probe.fc[0], probe.fc[1]
        fc0.weight.copy_(gen_t("fc.0.weight", fc0.weight.shape, 0.0, 0.125))
        fc0.bias.copy_(gen_t("fc.0.bias", fc0.bias.shape, 0.0, 0.125))
        fc1.weight.copy_(gen_t("fc.1.weight", fc1.weight.shape, 1.0, 0.1))
        fc1.bias.copy_(gen_t("fc.1.bias", fc1.bias.shape, 0.0, 0.1))
    assert probe.teacher_encoder.feat_dim == 64
    return probe.to(dtype)


def make_linear_probe(dtype=torch.float32):
    probe = build_probe(dtype)
    enc_before = {n: t.clone() for n, t in probe.teacher_encoder.state_dict().items()}
    x = gen_t("probe.input", [8, 3, 32, 32], 0.0, 1.0, dtype)
    y = torch.tensor([i % 10 for i in range(8)], dtype=torch.long)
    lrs = [0.1, 0.05]
    opt = R.SGD(probe.classifier_parameters(), lr=lrs[0], momentum=0.9, weight_decay=0.0)
    losses, train_logits = [], None
    for s, lr in enumerate(lrs):
        loss, logits = R.linear_probe_step(probe, opt, x, y, lr=lr)
        losses.append(loss)
        if s == 0:
            train_logits = logits
    probe.eval()
    with torch.no_grad():
        eval_logits = probe(x)
        feats = probe.features(x)
    for n, t in probe.teacher_encoder.state_dict().items():
        assert torch.equal(t, enc_before[n]), f"frozen encoder changed: {n}"
    assert int(probe.fc[1].num_batches_tracked) == 2
    out = {
        "lr": np.asarray(lrs, dtype=np.float32),
        "loss": np.asarray(losses, dtype=np.float32),
        "train_logits": np32(train_logits),
        "eval_logits": np32(eval_logits),
        "features": np32(feats),
    }
    out.update(state_dict_np(probe.fc, "fc."))
    for n, _ in probe.classifier_parameters():
        out["momentum." + n] = np32(opt.state[n])
    return out, losses


def make_gen_check():
    return {
        "check": gen("check", [16], 0.0, 1.0),
        "student_encoder.conv1.weight": gen("student_encoder.conv1.weight", [8, 3, 7, 7], 0.0,
                                            math.sqrt(6.0 / (8 * 49))),
    }


# --------------------------------------------------------------------------------------
# Self-checks
# --------------------------------------------------------------------------------------
def close(a, b, rtol=1e-5, atol=1e-6):
    return torch.allclose(a, b, rtol=rtol, atol=atol)


def check_generator():
    # vectorised numpy == scalar Python ints, including values that wrap modulo 2^64
    xs = [0, 1, 2, 0x9E3779B97F4A7C15, MASK64, MASK64 - 5, 1 << 63, 0x61C8864680B583EB, 12345678901234567890]
    got = splitmix64_np(np.asarray(xs, dtype=np.uint64))
    assert [int(v) for v in got] == [splitmix64_py(x) for x in xs], "splitmix64 numpy != python"
    for name in ["check", "student_encoder.conv1.weight", "view1.it0", "ü-utf8"]:
        u = gen_u(name, 37)
        h = fnv1a64(name)
        ref = [(splitmix64_py((h + i) & MASK64) >> 40) / 2.0 ** 24 for i in range(37)]
        assert u.tolist() == ref, f"gen_u mismatch for {name}"
        assert (u >= 0).all() and (u < 1).all()
    # wrap of fnv(name) + i: evaluate at an offset pushed past 2^64
    h = MASK64 - 3
    with np.errstate(over="ignore"):
        x = np.uint64(h) + np.arange(8, dtype=np.uint64)
    assert [int(v) for v in splitmix64_np(x)] == [splitmix64_py((h + i) & MASK64) for i in range(8)]
    assert fnv1a64("") == FNV_OFFSET and fnv1a64("a") == 0xAF63DC4C8601EC8C  # FNV-1a 64 test vectors
    g = gen("check", [16], 0.0, 1.0)
    assert np.all(g == (2.0 * gen_u("check", 16) - 1.0).astype(np.float32))


def check_archs_against_torchvision():
    try:
        import torchvision.models as tvm
    except Exception as e:  # torchvision is optional
        print(f"  [skip] torchvision not available ({type(e).__name__})")
        return
    for arch in R.ARCHS:
        with torch.device("meta"):
            ours = R.ResNet(arch, width=1.0).state_dict()
            theirs = {k: v for k, v in getattr(tvm, arch)().state_dict().items() if not k.startswith("fc.")}
        assert list(ours) == list(theirs), f"{arch}: state-dict names differ from torchvision"
        assert all(ours[k].shape == theirs[k].shape for k in ours), f"{arch}: shapes differ"
    torch.manual_seed(0)
    for arch in ("resnet18", "resnet50"):
        ours = R.ResNet(arch, width=1.0)
        tv = getattr(tvm, arch)()
        tv.fc = nn.Identity()
        tv.load_state_dict(ours.state_dict())
        x = torch.randn(2, 3, 64, 64)
        ours.train(), tv.train()
        with torch.no_grad():
            assert close(ours(x), tv(x)), f"{arch}: forward differs from torchvision"
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), tv.state_dict().values()))


def check_width_and_stem():
    net = R.ResNet("resnet50", width=WIDTH, small_stem=True)
    assert net.conv1.weight.shape == (8, 3, 3, 3) and isinstance(net.maxpool, nn.Identity)
    assert net.layer1[0].conv3.weight.shape == (32, 8, 1, 1) and net.feat_dim == 256
    assert R.ResNet("resnet18", width=WIDTH).feat_dim == 64
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 256)


def check_momentum_bn_unit():
    # hand computation of one pair for BN1d, quirk on and off
    for quirk in (True, False):
        bn = R.MomentumBatchNorm1d(3, total_iters=10, quirk=quirk)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
            bn.bias.copy_(torch.tensor([0.0, 0.1, -0.1]))
            bn.running_mean.copy_(torch.tensor([0.3, -0.2, 0.1]))
            bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
        bn.alpha = 0.7
        xa = torch.arange(15, dtype=torch.float64).reshape(5, 3).float().sin()
        xb = torch.arange(15, dtype=torch.float64).reshape(5, 3).float().cos() * 2
        n = 5
        f = n / (n - 1) if quirk else 1.0
        rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
        ya, yb = bn(xa), bn(xb)
        for x, y in ((xa, ya), (xb, yb)):
            mu, v = x.mean(0), x.var(0, unbiased=True)
            mt, vt = 0.7 * mu + 0.3 * rm0, 0.7 * v * f + 0.3 * rv0
            assert close(y, (x - mt) / torch.sqrt(vt + 1e-5) * bn.weight + bn.bias)
        rm = 0.7 * (xa.mean(0) + xb.mean(0)) / 2 + 0.3 * rm0
        rv = 0.7 * (xa.var(0) + xb.var(0)) / 2 * f + 0.3 * rv0
        assert close(bn.running_mean, rm) and close(bn.running_var, rv)
        assert bn.pairs == 1 and abs(bn.alpha - (math.cos(math.pi / 10) + 1) / 2) < 1e-15
    # alpha after 3 pairs with K = 10
    bn = R.MomentumBatchNorm2d(2, total_iters=10)
    x = torch.randn(4, 2, 3, 3)
    for _ in range(6):
        bn(x)
    assert bn.pairs == 3 and bn.alpha == (math.cos(math.pi * 3 / 10) + 1) / 2


def check_teacher_grouped():
    """teacher(cat[x2, x1]) with per-view statistics == teacher(x2), teacher(x1)."""
    model = build_m2t()
    opt = R.SGD(model.student_parameters(), lr=0.05)
    x1, x2 = m2t_views(0)
    R.m2t_iteration(model, opt, x1, x2, k=0)  # so that alpha < 1 and running stats are non-trivial
    x1, x2 = m2t_views(1)
    model.ema(R.tau_schedule(1, model.total_iters))
    grouped = copy.deepcopy(model)
    k1, k2 = model.teacher(x2), model.teacher(x1)
    grouped.set_teacher_groups(2)
    kk = grouped.teacher(torch.cat([x2, x1]))
    assert close(kk[:M2T_B], k1) and close(kk[M2T_B:], k2), "grouped teacher outputs differ"
    for a, b in zip(R.momentum_bn_modules(model.teacher_encoder), R.momentum_bn_modules(grouped.teacher_encoder)):
        assert a.pairs == b.pairs == 2 and a.alpha == b.alpha and b.stash is None
        assert close(a.running_mean, b.running_mean) and close(a.running_var, b.running_var)
    # the student, on its own, per view (two calls) must differ from one batched call
    # with shared statistics, which is what the spec forbids:
    with torch.no_grad():
        s = copy.deepcopy(model)
        sep = torch.cat([s.student(x1), s.student(x2)])
        joint = copy.deepcopy(model).student(torch.cat([x1, x2]))
    assert not close(sep, joint), "per-view and shared student statistics coincide (test is vacuous)"


def check_optimizers():
    torch.manual_seed(1)
    p0 = torch.randn(6, 5)
    b0 = torch.randn(5)
    grads = [(torch.randn(6, 5), torch.randn(5)) for _ in range(3)]
    lr, mu, wd = 0.1, 0.9, 1e-4

    def run(make_opt, per_step=None):
        w = nn.Parameter(p0.clone())
        b = nn.Parameter(b0.clone())
        opt = make_opt([("w", w), ("b", b)])
        for gw, gb in grads:
            w.grad, b.grad = gw.clone(), gb.clone()
            if per_step:
                per_step(opt, w, b)
            opt.step()
        return w.detach(), b.detach(), opt

    # our SGD == torch.optim.SGD
    w1, b1, _ = run(lambda ps: R.SGD(ps, lr=lr, momentum=mu, weight_decay=wd))
    w = nn.Parameter(p0.clone())
    b = nn.Parameter(b0.clone())
    topt = torch.optim.SGD([w, b], lr=lr, momentum=mu, weight_decay=wd)
    for gw, gb in grads:
        w.grad, b.grad = gw.clone(), gb.clone()
        topt.step()
    assert torch.equal(w1, w.detach()) and torch.equal(b1, b.detach()), "SGD differs from torch.optim.SGD"

    # LARS with eta chosen so that the trust ratio is 1 for w, and the bias (excluded from
    # adaptation) always at lr: identical to SGD (buffer scaled by lr, constant lr).
    def trust_one(opt, w_, b_):
        opt.eta = ((w_.grad.norm() + wd * w_.detach().norm()) / w_.detach().norm()).item()

    w2, b2, lopt = run(lambda ps: R.LARS(ps, lr=lr, momentum=mu, weight_decay=wd, eta=1.0), trust_one)
    assert close(w2, w1, rtol=1e-5, atol=1e-6) and close(b2, b1, rtol=1e-6, atol=1e-7), "LARS(trust 1) != SGD"
    # LARS trust ratio by hand for one step
    w = nn.Parameter(p0.clone())
    w.grad = grads[0][0].clone()
    lo = R.LARS([("w", w)], lr=2.0, momentum=mu, weight_decay=wd, eta=0.001)
    lo.step()
    pn, gn = p0.norm(), grads[0][0].norm()
    expect = p0 - 2.0 * 0.001 * pn / (gn + wd * pn) * (grads[0][0] + wd * p0)
    assert close(w.detach(), expect), "LARS single step"


def norm_rel(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check_precision(name, f32, f64, noise_keys=(), limit=1e-3):
    """The float32 goldens against the same computation in float64 (inputs identical): a
    large difference means the configuration is chaotic and no float32 implementation could
    be expected to reproduce the file. Returns the worst norm-relative difference."""
    assert f32.keys() == f64.keys()
    worst, where = 0.0, ""
    for k in f32:
        if k.endswith(noise_keys) and k.split(".", 1)[0] in ("grad", "momentum"):
            # true gradient 0: only an absolute comparison makes sense
            d = float(np.abs(f64[k].astype(np.float64) - f32[k]).max())
            assert d < 1e-6, f"{name}: {k} differs by {d:.2e} (absolute)"
            continue
        r = norm_rel(f32[k], f64[k])
        if r > worst:
            worst, where = r, k
    assert worst <= limit, f"{name}: float32 vs float64 differ by {worst:.2e} in {where}"
    print(f"  precision {name:14s} float32 vs float64 worst norm-relative diff {worst:.1e} ({where})")
    return worst


def self_check():
    t0 = time.time()
    check_generator()
    check_width_and_stem()
    check_archs_against_torchvision()
    check_momentum_bn_unit()
    check_teacher_grouped()
    check_optimizers()
    print(f"self-checks passed ({time.time() - t0:.1f} s)")


# --------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default native/tests/goldens)")
    ap.add_argument("--skip-checks", action="store_true", help="skip the self-checks")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)

    if not args.skip_checks:
        self_check()

    os.makedirs(args.out, exist_ok=True)
    # one metadata key only: safetensors writes metadata from a hash map, so several keys
    # come out in a random order and the files would not be byte-for-byte reproducible.
    meta = {"generator": f"tools/golden/make_goldens.py (SCHEMA.md; torch {torch.__version__})"}
    files = {}
    files["resnet_forward.safetensors"] = make_resnet_forward()
    sgd, sgd_losses, sgd_margins = make_m2t("sgd")
    files["m2t_sgd.safetensors"] = sgd
    lars, lars_losses, lars_margins = make_m2t("lars")
    files["m2t_lars.safetensors"] = lars
    probe, probe_losses = make_linear_probe()
    files["linear_probe.safetensors"] = probe
    files["gen_check.safetensors"] = make_gen_check()

    for name, (relu, pool) in (("m2t_sgd", sgd_margins), ("m2t_lars", lars_margins)):
        print(f"  margins   {name:14s} min |ReLU input| {relu:.1e}, min max-pool gap {pool:.1e}")
        assert min(relu, pool) >= MIN_DECISION_MARGIN, f"{name}: decision margin below {MIN_DECISION_MARGIN}"
    if not args.skip_checks:
        t0 = time.time()
        check_precision("resnet_forward", files["resnet_forward.safetensors"], make_resnet_forward(torch.float64))
        check_precision("m2t_sgd", sgd, make_m2t("sgd", torch.float64)[0], ZERO_GRAD_PARAMS)
        check_precision("m2t_lars", lars, make_m2t("lars", torch.float64)[0], ZERO_GRAD_PARAMS)
        check_precision("linear_probe", probe, make_linear_probe(torch.float64)[0], ("fc.0.bias",))
        print(f"precision checks passed ({time.time() - t0:.1f} s)")

    for fname, tensors in files.items():
        for k, v in tensors.items():
            assert v.dtype == np.float32 and np.isfinite(v).all(), f"{fname}: {k}"
        save_file(tensors, os.path.join(args.out, fname), metadata=meta)

    print("m2t_sgd  loss per step: " + ", ".join(f"{v:.6f}" for v in sgd_losses)
          + "   tau: " + ", ".join(f"{v:.6f}" for v in sgd["tau"])
          + "   alpha: " + ", ".join(f"{v:.6f}" for v in sgd["alpha"]))
    print("m2t_lars loss per step: " + ", ".join(f"{v:.6f}" for v in lars_losses))
    print("linear_probe loss per step: " + ", ".join(f"{v:.6f}" for v in probe_losses))
    total = 0
    for fname, tensors in files.items():
        size = os.path.getsize(os.path.join(args.out, fname))
        total += size
        print(f"  {fname:28s} {size:>9d} bytes  {len(tensors):4d} tensors")
    print(f"  {'total':28s} {total:>9d} bytes  -> {args.out}")


if __name__ == "__main__":
    main()

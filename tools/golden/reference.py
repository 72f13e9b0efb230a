"""From-the-spec PyTorch reference of Momentum^2 Teacher.

Written from /work/shared/spec/momentum2-teacher.md (the contract); section numbers
below refer to it. Used by tools/golden/make_goldens.py (golden files for the C++
tests) and tools/bench/torch_step.py (the PyTorch side of the benchmark).

Contents
- ResNet-18/34/50/101/152, torchvision v1.5 topology, `width` multiplier, optional
  small stem (spec §1). State-dict names are torchvision's.
- Student heads (projector + predictor) and teacher head (projector) (spec §1).
- Momentum BN 1d/2d for the teacher (spec §2), quirk 1 as an option (default on),
  with an optional grouped mode (several views in one batch, per-view statistics).
- Momentum2Teacher: student_encoder.* / teacher_encoder.* with the heads under fc.*,
  EMA with tau_k, one full iteration (spec §3).
- SGD (torch.optim.SGD semantics) and LARS (spec §4).
- LinearProbe: frozen encoder in eval mode -> Linear -> BatchNorm1d, cross-entropy (spec §6).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}

BN_EPS = 1e-5


def scaled(channels, width):
    """Channel count times the width multiplier, rounded to int (at least 1)."""
    return max(1, int(round(channels * width)))


def l2_normalize(x):
    """y = x / max(||x||_2, 1e-12) per row (spec §1)."""
    return x / torch.clamp(x.norm(p=2, dim=1, keepdim=True), min=1e-12)


# --------------------------------------------------------------------------------------
# Momentum BN (spec §2, teacher only)
# --------------------------------------------------------------------------------------
class _MomentumBatchNorm(nn.Module):
    """Teacher "momentum BN".

    State: running_mean (0), running_var (1), alpha (1.0), pairs (0), one-slot stash.
    Each call normalises with alpha*batch + (1-alpha)*running statistics; the second call
    of a pair updates the running statistics from the mean of both calls' batch statistics,
    then pairs += 1 and alpha = (cos(pi*pairs/K) + 1)/2.

    `quirk` (spec quirk 1, default on): the already unbiased batch variance is multiplied
    by n/(n-1) once more, both when normalising and when updating running_var.

    `groups` (default 1): with groups = G the input batch holds G views stacked along dim 0
    (equal sizes); each view gets its own statistics and the views act as G consecutive
    calls (e.g. teacher(cat[x2, x1]) with G = 2 == teacher(x2), teacher(x1)).

    The state dict holds weight, bias, running_mean, running_var and num_batches_tracked
    (the last one for checkpoint-name compatibility with BatchNorm; momentum BN never
    increments it). alpha / pairs / stash are not in the state dict.
    """

    _expected_dim = None

    def __init__(self, num_features, total_iters, eps=BN_EPS, quirk=True):
        super().__init__()
        self.num_features = num_features
        self.total_iters = int(total_iters)
        self.eps = eps
        self.quirk = quirk
        self.groups = 1
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.alpha = 1.0
        self.pairs = 0
        self.stash = None

    def extra_repr(self):
        return (f"{self.num_features}, total_iters={self.total_iters}, eps={self.eps}, "
                f"quirk={self.quirk}, alpha={self.alpha:.6f}, pairs={self.pairs}")

    def reset_state(self):
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()
        self.alpha = 1.0
        self.pairs = 0
        self.stash = None

    def _var_factor(self, n):
        return n / (n - 1) if self.quirk else 1.0

    def _accumulate(self, mu_b, v_b, n):
        """Stash logic (spec §2 step 3)."""
        if self.stash is None:
            self.stash = (mu_b.clone(), v_b.clone())
            return
        mu_s, v_s = self.stash
        a = self.alpha
        f = self._var_factor(n)
        self.running_mean.copy_(a * ((mu_b + mu_s) / 2) + (1 - a) * self.running_mean)
        self.running_var.copy_(a * ((v_b + v_s) / 2) * f + (1 - a) * self.running_var)
        self.stash = None
        self.pairs += 1
        self.alpha = (math.cos(math.pi * self.pairs / self.total_iters) + 1) / 2

    def forward(self, x):
        if x.dim() != self._expected_dim:
            raise ValueError(f"{type(self).__name__} expects {self._expected_dim}-d input, got {x.dim()}-d")
        with torch.no_grad():
            if self.groups == 1:
                return self._forward_single(x)
            return self._forward_grouped(x, self.groups)

    def _forward_single(self, x):
        c = x.size(1)
        dims = [d for d in range(x.dim()) if d != 1]
        n = x.numel() // c
        shape = [1, c] + [1] * (x.dim() - 2)
        mu_b = x.mean(dim=dims)
        v_b = x.var(dim=dims, unbiased=True)
        a = self.alpha
        mu_t = a * mu_b + (1 - a) * self.running_mean
        v_t = a * v_b * self._var_factor(n) + (1 - a) * self.running_var
        y = (x - mu_t.view(shape)) / torch.sqrt(v_t.view(shape) + self.eps)
        y = y * self.weight.view(shape) + self.bias.view(shape)
        self._accumulate(mu_b, v_b, n)
        return y

    def _forward_grouped(self, x, g):
        # x: [g*N, C, ...] -> [g, N, C, ...]; statistics per group, all groups normalised
        # with the state before this call; then the groups are accumulated in order.
        if x.size(0) % g:
            raise ValueError("batch not divisible by groups")
        c = x.size(1)
        xg = x.reshape(g, x.size(0) // g, *x.shape[1:])
        dims = [d for d in range(1, xg.dim()) if d != 2]
        n = xg[0].numel() // c
        shape = [g, 1, c] + [1] * (x.dim() - 2)
        mu_b = xg.mean(dim=dims)  # [g, C]
        v_b = xg.var(dim=dims, unbiased=True)  # [g, C]
        a = self.alpha
        mu_t = a * mu_b + (1 - a) * self.running_mean
        v_t = a * v_b * self._var_factor(n) + (1 - a) * self.running_var
        y = (xg - mu_t.view(shape)) / torch.sqrt(v_t.view(shape) + self.eps)
        y = y * self.weight.view([1] + shape[1:]) + self.bias.view([1] + shape[1:])
        for i in range(g):
            self._accumulate(mu_b[i], v_b[i], n)
        return y.reshape(x.shape)


class MomentumBatchNorm1d(_MomentumBatchNorm):
    _expected_dim = 2


class MomentumBatchNorm2d(_MomentumBatchNorm):
    _expected_dim = 4


def momentum_bn_modules(module):
    return [m for m in module.modules() if isinstance(m, _MomentumBatchNorm)]


# --------------------------------------------------------------------------------------
# ResNet (spec §1)
# --------------------------------------------------------------------------------------
def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, norm2d):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4  # stays 4 under the width multiplier

    def __init__(self, inplanes, planes, stride, downsample, norm2d):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)  # v1.5: stride on the 3x3
        self.bn2 = norm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision v1.5 ResNet without the classifier: returns self.fc(pooled features).

    fc is nn.Identity() by default; Momentum2Teacher replaces it with the heads.
    """

    def __init__(self, arch="resnet50", width=1.0, small_stem=False, norm2d=nn.BatchNorm2d):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; one of {sorted(ARCHS)}")
        kind, blocks = ARCHS[arch]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.arch, self.width, self.small_stem = arch, width, small_stem
        stem = scaled(64, width)
        if small_stem:
            self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = norm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        inplanes = stem
        for i, (base, nblocks, stride) in enumerate(zip([64, 128, 256, 512], blocks, [1, 2, 2, 2])):
            planes = scaled(base, width)
            layers = []
            for b in range(nblocks):
                s = stride if b == 0 else 1
                down = None
                if s != 1 or inplanes != planes * block.expansion:
                    down = nn.Sequential(conv1x1(inplanes, planes * block.expansion, s),
                                         norm2d(planes * block.expansion))
                layers.append(block(inplanes, planes, s, down, norm2d))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feat_dim = inplanes
        self.fc = nn.Identity()
        self.reference_init()

    def reference_init(self):
        """Spec §1 init: conv normal(0, sqrt(2/fan_out)), BN 1/0, Linear PyTorch default."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, _MomentumBatchNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def student_head(feat, hidden, out):
    """fc.0 Linear, fc.1 BN1d, fc.2 ReLU, fc.3 Linear (projector); fc.4..fc.7 predictor."""
    return nn.Sequential(
        nn.Linear(feat, hidden), nn.BatchNorm1d(hidden, eps=BN_EPS, momentum=0.1), nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
        nn.Linear(out, hidden), nn.BatchNorm1d(hidden, eps=BN_EPS, momentum=0.1), nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
    )


def teacher_head(feat, hidden, out, total_iters, quirk=True):
    """fc.0 Linear, fc.1 momentum BN1d, fc.2 ReLU, fc.3 Linear (projector only)."""
    return nn.Sequential(
        nn.Linear(feat, hidden), MomentumBatchNorm1d(hidden, total_iters, quirk=quirk), nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
    )


# --------------------------------------------------------------------------------------
# Momentum^2 Teacher (spec §1-§3)
# --------------------------------------------------------------------------------------
def tau_schedule(k, total_iters, tau_base=0.99):
    """tau_k = 1 - (1 - tau_base) * (cos(pi*k/K) + 1)/2, k 0-based."""
    return 1 - (1 - tau_base) * (math.cos(math.pi * k / total_iters) + 1) / 2


class Momentum2Teacher(nn.Module):
    def __init__(self, arch="resnet50", width=1.0, small_stem=False, hidden=4096, out=256,
                 total_iters=1000, tau_base=0.99, quirk=True):
        super().__init__()
        self.total_iters = int(total_iters)
        self.tau_base = tau_base
        self.student_encoder = ResNet(arch, width, small_stem, norm2d=lambda c: nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.1))
        feat = self.student_encoder.feat_dim
        self.student_encoder.fc = student_head(feat, hidden, out)
        self.teacher_encoder = ResNet(arch, width, small_stem,
                                      norm2d=lambda c: MomentumBatchNorm2d(c, total_iters, quirk=quirk))
        self.teacher_encoder.fc = teacher_head(feat, hidden, out, total_iters, quirk=quirk)
        for p in self.teacher_encoder.parameters():
            p.requires_grad_(False)
        self.copy_student_to_teacher()

    # -- teacher bookkeeping
    def teacher_param_pairs(self):
        """(name, teacher param, student param) for every teacher parameter (encoder + projector)."""
        sp = dict(self.student_encoder.named_parameters())
        return [(n, p, sp[n]) for n, p in self.teacher_encoder.named_parameters()]

    @torch.no_grad()
    def copy_student_to_teacher(self):
        """Teacher = exact copy of the student (parameters); momentum-BN state reset (0 / 1, alpha 1)."""
        for _, pt, ps in self.teacher_param_pairs():
            pt.copy_(ps)
        for m in momentum_bn_modules(self.teacher_encoder):
            m.reset_state()

    @torch.no_grad()
    def ema(self, tau):
        """p_t <- tau*p_t + (1-tau)*p_s for every teacher parameter (BN buffers excluded)."""
        for _, pt, ps in self.teacher_param_pairs():
            pt.copy_(pt * tau + ps * (1 - tau))

    def set_teacher_groups(self, groups):
        for m in momentum_bn_modules(self.teacher_encoder):
            m.groups = groups

    def teacher_alpha(self):
        return [m.alpha for m in momentum_bn_modules(self.teacher_encoder)]

    # -- forward pieces
    def student(self, x):
        return l2_normalize(self.student_encoder(x))

    @torch.no_grad()
    def teacher(self, x):
        return l2_normalize(self.teacher_encoder(x))

    def student_parameters(self):
        """(full name, param) of every trainable student parameter, in state-dict order."""
        return [(n, p) for n, p in self.named_parameters() if n.startswith("student_encoder.")]

    def forward(self, x1, x2):
        """Spec §3 steps 2-4 (EMA not included): returns the loss."""
        q1 = self.student(x1)
        q2 = self.student(x2)
        k1 = self.teacher(x2)
        k2 = self.teacher(x1)
        return m2t_loss(q1, q2, k1, k2)


def m2t_loss(q1, q2, k1, k2):
    """L = mean over the batch of [4 - 2(<q1,k1> + <q2,k2>)]."""
    return (4 - 2 * ((q1 * k1).sum(dim=1) + (q2 * k2).sum(dim=1))).mean()


def m2t_iteration(model, optimizer, x1, x2, k, lr=None, on_grads=None):
    """One pre-training iteration (spec §3). k is the 0-based iteration index.

    If lr is given it is used for this step's optimizer update. on_grads(model) is called
    after backward and before the optimizer step. Returns (loss float, tau).
    """
    tau = tau_schedule(k, model.total_iters, model.tau_base)
    model.ema(tau)
    model.student_encoder.train()
    model.teacher_encoder.train()
    loss = model(x1, x2)
    optimizer.zero_grad()
    loss.backward()
    if on_grads is not None:
        on_grads(model)
    if lr is not None:
        optimizer.lr = lr
    optimizer.step()
    return loss.item(), tau


# --------------------------------------------------------------------------------------
# Optimisers (spec §4)
# --------------------------------------------------------------------------------------
class _Optimizer:
    def __init__(self, named_params, lr, momentum, weight_decay):
        self.named_params = list(named_params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.state = {}  # name -> momentum buffer

    def zero_grad(self):
        for _, p in self.named_params:
            p.grad = None


class SGD(_Optimizer):
    """torch.optim.SGD semantics (no dampening, no Nesterov):
    d = g + wd*p; buf = mu*buf + d (buf = d on the first step); p <- p - lr*buf."""

    def __init__(self, named_params, lr, momentum=0.9, weight_decay=1e-4):
        super().__init__(named_params, lr, momentum, weight_decay)

    @torch.no_grad()
    def step(self):
        for name, p in self.named_params:
            if p.grad is None:
                continue
            d = p.grad
            if self.weight_decay != 0:
                d = d.add(p, alpha=self.weight_decay)
            buf = self.state.get(name)
            if self.momentum != 0:
                if buf is None:
                    buf = torch.clone(d).detach()
                    self.state[name] = buf
                else:
                    buf.mul_(self.momentum).add_(d)
                d = buf
            p.add_(d, alpha=-self.lr)


class LARS(_Optimizer):
    """Spec §4 LARS. actual_lr = lr, except for conv/linear weights (ndim > 1) where, if
    ||p||*||g|| > 1e-8, actual_lr = lr * eta*||p|| / (||g|| + wd*||p||).
    buf <- mu*buf + actual_lr*(g + wd*p) (buf starts at zeros, holds lr-scaled updates);
    p <- p - buf. Weight decay applies to every parameter (excluded ones too)."""

    def __init__(self, named_params, lr, momentum=0.9, weight_decay=1e-6, eta=0.001):
        super().__init__(named_params, lr, momentum, weight_decay)
        self.eta = eta

    @staticmethod
    def adapted(p):
        return p.dim() > 1

    @torch.no_grad()
    def step(self):
        for name, p in self.named_params:
            if p.grad is None:
                continue
            g = p.grad
            actual_lr = torch.tensor(self.lr, dtype=p.dtype, device=p.device)
            if self.adapted(p):
                pn = p.norm(p=2)
                gn = g.norm(p=2)
                if (pn * gn).item() > 1e-8:
                    actual_lr = self.lr * self.eta * pn / (gn + self.weight_decay * pn)
            d = g.add(p, alpha=self.weight_decay) if self.weight_decay != 0 else g.clone()
            buf = self.state.get(name)
            if buf is None:
                buf = torch.zeros_like(p)
                self.state[name] = buf
            buf.mul_(self.momentum).add_(actual_lr * d)
            p.sub_(buf)


# --------------------------------------------------------------------------------------
# Linear evaluation (spec §6)
# --------------------------------------------------------------------------------------
class LinearProbe(nn.Module):
    """Frozen encoder (BN in inference mode) -> fc.0 Linear(feat, classes) -> fc.1 BatchNorm1d(classes)."""

    def __init__(self, arch="resnet50", width=1.0, small_stem=False, num_classes=1000):
        super().__init__()
        self.teacher_encoder = ResNet(arch, width, small_stem)
        for p in self.teacher_encoder.parameters():
            p.requires_grad_(False)
        feat = self.teacher_encoder.feat_dim
        self.fc = nn.Sequential(nn.Linear(feat, num_classes), nn.BatchNorm1d(num_classes, eps=BN_EPS, momentum=0.1))
        nn.init.normal_(self.fc[0].weight, 0.0, 0.01)
        nn.init.zeros_(self.fc[0].bias)

    def train(self, mode=True):
        super().train(mode)
        self.teacher_encoder.eval()  # always frozen, inference-mode BN
        return self

    def features(self, x):
        with torch.no_grad():
            self.teacher_encoder.eval()
            return self.teacher_encoder(x)

    def forward(self, x):
        return self.fc(self.features(x))

    def classifier_parameters(self):
        return [(n, p) for n, p in self.named_parameters() if n.startswith("fc.")]


def linear_probe_step(probe, optimizer, images, labels, lr=None):
    """One linear-eval SGD step (classifier BN in training mode). Returns (loss, logits)."""
    probe.train()
    logits = probe(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    if lr is not None:
        optimizer.lr = lr
    optimizer.step()
    return loss.item(), logits.detach()

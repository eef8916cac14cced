"""Small stochastic neural operators on 2-D fields, rolled out over time.

Each operator is a random convolutional update rule on a C-channel periodic field,

    u[t+1] = (1 - decay) * u[t] + dt * gain * tanh(W * u[t] + b) + noise * sqrt(dt) * eps,

with its own kernel W (C x C x k x k), bias, time step, gain, decay and noise level, all sampled
from documented ranges. Batches of operators run at once as one grouped convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

PARAMETER_NAMES = ("kernel_scale", "kernel_smoothness", "bias_scale", "dt", "gain", "decay", "noise", "init_scale", "init_smoothness")
RANGES = {  # uniform sampling ranges of each operator parameter
    "kernel_scale": (0.3, 2.5),
    "kernel_smoothness": (0.0, 1.0),
    "bias_scale": (0.0, 0.5),
    "dt": (0.05, 0.5),
    "gain": (0.5, 2.0),
    "decay": (0.0, 0.2),
    "noise": (0.0, 0.3),
    "init_scale": (0.1, 1.5),
    "init_smoothness": (0.0, 1.0),
}


@dataclass(frozen=True)
class RolloutSpec:
    channels: int = 3
    size: int = 32
    steps: int = 48
    kernel: int = 5


def sample_parameters(n: int, rng: np.random.Generator) -> np.ndarray:
    low = np.array([RANGES[k][0] for k in PARAMETER_NAMES])
    high = np.array([RANGES[k][1] for k in PARAMETER_NAMES])
    return (low + (high - low) * rng.random((n, len(PARAMETER_NAMES)))).astype(np.float32)


def _smooth(field: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Blend each sample with a blurred copy of itself: amount in [0, 1] per sample."""
    blurred = F.avg_pool2d(F.pad(field, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    blurred = F.avg_pool2d(F.pad(blurred, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    a = amount.view(-1, *([1] * (field.dim() - 1)))
    return (1 - a) * field + a * blurred


def operator_seeds(seed: int, start: int, stop: int) -> list[int]:
    """One seed per operator index: a dataset's rows do not depend on how it was batched."""
    return [seed * 1_000_003 + i for i in range(start, stop)]


def rollout(params: np.ndarray, spec: RolloutSpec, seeds: list[int]) -> torch.Tensor:
    """Trajectories (B, T, C, H, W) of the B operators described by ``params`` (B, P).

    Operator i draws its kernel, bias, initial field and noise from its own generator seeded
    with ``seeds[i]``.
    """
    p = {name: torch.from_numpy(params[:, i].copy()) for i, name in enumerate(PARAMETER_NAMES)}
    b, c, k, s = len(params), spec.channels, spec.kernel, spec.size
    gens = [torch.Generator().manual_seed(int(x)) for x in seeds]

    def draw(*shape: int) -> torch.Tensor:
        return torch.stack([torch.randn(*shape, generator=g) for g in gens])

    weights = draw(c, c, k, k) / (c * k)
    weights = _smooth(weights.view(b * c, c, k, k), p["kernel_smoothness"].repeat_interleave(c)).view(b, c, c, k, k)
    weights = weights * p["kernel_scale"].view(b, 1, 1, 1, 1) * 4
    bias = draw(c) * p["bias_scale"].view(b, 1)
    u = draw(c, s, s)
    u = _smooth(u, p["init_smoothness"]) * p["init_scale"].view(b, 1, 1, 1)
    dt, gain, decay, noise = (p[n].view(b, 1, 1, 1) for n in ("dt", "gain", "decay", "noise"))
    kernel = weights.reshape(b * c, c, k, k)
    frames = [u]
    for _ in range(spec.steps - 1):
        padded = F.pad(u.reshape(1, b * c, s, s), (k // 2,) * 4, mode="circular")
        drive = F.conv2d(padded, kernel, groups=b).view(b, c, s, s) + bias.view(b, c, 1, 1)
        eps = draw(c, s, s)
        u = (1 - decay) * u + dt * gain * torch.tanh(drive) + noise * dt.sqrt() * eps
        frames.append(u)
    return torch.stack(frames, dim=1)

"""Torch pieces of data-parallel runs that torch itself lacks on CPU (imported only when used).

torch's ``SyncBatchNorm`` normalises over the global batch, but only on CUDA (and a few
accelerators): on CPU it raises. :func:`sync_batchnorm` converts a model's batch norms to it on
CUDA and to :class:`GlobalBatchNorm` on CPU: the same statistics, summed over the ranks with
``torch.distributed.nn.functional.all_reduce`` (autograd flows through the sum, so the gradient
is the global batch's). Outside a multi-rank training step both behave as plain batch norm.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over every rank's share of the batch (any input rank >= 2, channels on dim 1)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels, dims = input.shape[1], [0, *range(2, input.dim())]
        count = input.new_tensor([input.numel() / channels])
        stats = all_reduce(torch.cat([input.sum(dims), (input * input).sum(dims), count]))
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels : 2 * channels] / total - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * total / (total - 1).clamp_min(1), alpha=factor)
        shape = [1, channels] + [1] * (input.dim() - 2)
        out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def sync_batchnorm(module: nn.Module, device: Any = "cpu") -> nn.Module:
    """``module`` with its batch norms normalising over the global batch: torch's SyncBatchNorm on
    CUDA, :class:`GlobalBatchNorm` elsewhere (parameters and running statistics kept)."""
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        return converted
    for name, child in module.named_children():
        module.add_module(name, sync_batchnorm(child, device))
    return module

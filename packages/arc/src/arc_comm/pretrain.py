"""Encoder pretraining: two games that train an ``ARCEncoder`` alone before the main training.

* ``binary``: are two grids from the same ARC task? (half the pairs are, half are not; a small
  head reads ``[a * b, |a - b|]`` of the two latents). Validated on the evaluation split's tasks,
  which training never saw.
* ``selection``: the selection game with a continuous channel (no discrete message): each grid's
  latent must pick the grid out of every other grid of the batch. Validated with 3 distractors on
  held-out grids.

The result is saved as ``pretrained_encoder_<task>.pth`` (encoder weights and architecture) and
named in a training config as ``pretrained_encoder`` to initialise the encoder.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from arc_comm.model import ARCEncoder


class PretrainHeads(nn.Module):
    def __init__(self, encoder: ARCEncoder, task: str):
        super().__init__()
        self.encoder, self.task = encoder, task
        d = encoder.latent_dim
        if task == "binary":
            self.head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 1))
        else:
            self.query, self.key = nn.Linear(d, d), nn.Linear(d, d)


def _task_members(task_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid indices sorted by task, start offset of each task's run) for same-task sampling."""
    order = torch.argsort(task_index, stable=True)
    counts = torch.bincount(task_index)
    return order, torch.cumsum(counts, 0) - counts


def binary_batch(task_index: torch.Tensor, n: int, generator: torch.Generator):
    """(first indices, second indices, 1 if same task) with half the pairs from the same task."""
    order, starts = _task_members(task_index)
    counts = torch.bincount(task_index)
    first = torch.randint(len(task_index), (n,), generator=generator)
    task = task_index[first]
    same = torch.rand(n, generator=generator) < 0.5
    same &= counts[task] > 1
    offset = (torch.rand(n, generator=generator) * counts[task]).long().clamp_max(counts[task] - 1)
    second_same = order[starts[task] + offset]
    second_any = torch.randint(len(task_index), (n,), generator=generator)
    second = torch.where(same, second_same, second_any)
    return first, second, (task_index[first] == task_index[second]).float()


def pretrain_step(heads: PretrainHeads, grids: torch.Tensor, task_index: torch.Tensor, n: int, generator: torch.Generator):
    """(loss, accuracy) of one pretraining batch."""
    if heads.task == "binary":
        a, b, label = binary_batch(task_index, n, generator)
        logit = _pair_logit(heads, grids[a], grids[b])
        return F.binary_cross_entropy_with_logits(logit, label), ((logit > 0).float() == label).float().mean()
    pick = torch.randperm(len(grids), generator=generator)[:n]
    latent = heads.encoder(grids[pick])
    scores = heads.query(latent) @ heads.key(latent).T
    answer = torch.arange(len(pick))
    return F.cross_entropy(scores, answer), (scores.argmax(1) == answer).float().mean()


def _pair_logit(heads: PretrainHeads, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    za, zb = heads.encoder(a), heads.encoder(b)
    return heads.head(torch.cat([za * zb, (za - zb).abs()], 1)).squeeze(1)


@torch.no_grad()
def evaluate_pretraining(heads: PretrainHeads, grids: torch.Tensor, task_index: torch.Tensor, games: int = 2000, seed: int = 1234):
    from arc_comm.games import selection_batch

    was = heads.training
    heads.eval()
    generator = torch.Generator().manual_seed(seed)
    if heads.task == "binary":
        a, b, label = binary_batch(task_index, games, generator)
        logit = _pair_logit(heads, grids[a], grids[b])
        result = {
            "val_loss": F.binary_cross_entropy_with_logits(logit, label).item(),
            "val_acc": ((logit > 0).float() == label).float().mean().item(),
        }
    else:
        targets, candidates, answer = selection_batch(grids, games, 3, generator)
        b, k = candidates.shape[:2]
        keys = heads.key(heads.encoder(candidates.reshape(b * k, *candidates.shape[2:]))).view(b, k, -1)
        scores = torch.einsum("bh,bkh->bk", heads.query(heads.encoder(targets)), keys)
        result = {"val_loss": F.cross_entropy(scores, answer).item(), "val_acc": (scores.argmax(1) == answer).float().mean().item()}
    heads.train(was)
    return result

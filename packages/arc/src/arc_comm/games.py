"""Sampling games and computing their losses and accuracies (one place for training and validation)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from arc_comm.model import ARCAutoencoder


def selection_batch(grids: torch.Tensor, n: int, distractors: int, generator: torch.Generator):
    """(targets (n, S, S), candidates (n, 1 + distractors, S, S), index of the target among them).

    Distractors are other grids of the same split, drawn without the target; positions shuffled."""
    target = torch.randint(len(grids), (n,), generator=generator)
    others = torch.randint(len(grids) - 1, (n, distractors), generator=generator)
    others = others + (others >= target[:, None]).long()
    candidates = torch.cat([target[:, None], others], 1)
    order = torch.argsort(torch.rand(n, distractors + 1, generator=generator), 1)
    candidates = torch.gather(candidates, 1, order)
    answer = (order == 0).long().argmax(1)
    return grids[target], grids[candidates], answer


def selection_step(model: ARCAutoencoder, grids: torch.Tensor, n: int, distractors: int, temperature: float, generator: torch.Generator):
    targets, candidates, answer = selection_batch(grids, n, distractors, generator)
    vector, message = model.communicate(targets, temperature)
    scores = model.select(vector, candidates)
    loss = F.cross_entropy(scores, answer)
    accuracy = (scores.argmax(1) == answer).float().mean()
    return loss, accuracy, message


@torch.no_grad()
def evaluate_selection(
    model: ARCAutoencoder, grids: torch.Tensor, games: int, distractors: int, seed: int = 1234, shuffle_messages: bool = False
) -> dict[str, float]:
    """Held-out accuracy (and loss) on ``games`` fixed games; ``shuffle_messages`` pairs each
    receiver with another game's message (a control: it must fall to chance)."""
    was = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses, correct = [], 0
    for start in range(0, games, 500):
        n = min(500, games - start)
        targets, candidates, answer = selection_batch(grids, n, distractors, generator)
        latent = model.encoder(targets)
        if model.bottleneck_type == "communication":
            message, _ = model.sender(latent, 1.0)
            if shuffle_messages:
                message = message[torch.randperm(n, generator=generator)]
            vector = model.receiver(message)
        else:
            vector = model.channel(latent)
        scores = model.select(vector, candidates)
        losses.append(F.cross_entropy(scores, answer, reduction="sum").item())
        correct += (scores.argmax(1) == answer).sum().item()
    model.train(was)
    return {"val_loss": sum(losses) / games, "val_acc": correct / games}

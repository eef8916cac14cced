"""The games: one training step and one held-out evaluation per task, in one place.

* selection: the sender sees a grid; the receiver scores candidates. Training plays against every
  other grid of the batch (``in_batch_negatives``: batch_size - 1 distractors, a harder game that
  teaches finer distinctions) or against ``num_distractors`` sampled grids; evaluation always plays
  the configured number of distractors on fixed held-out games.
* reconstruction: the receiver rebuilds the grid's height, width and every cell's colour.
* puzzle_classification: the receiver names the ARC task the grid comes from.

Under torchrun (``world``: core's World of several ranks) every rank draws the same global batch
(the batch generator is the same on every rank) and plays its share of the games (core's
``BatchShare``); what depends on the whole batch is computed on the gathered batch: the in-batch
candidates, the symbol-diversity term and REINFORCE's baseline. With gradients averaged over the
ranks a step then has the single-process objective (the Gumbel noise differs: each rank draws its own).

Communication is trained with straight-through Gumbel-softmax; ``method="reinforce"`` trains the
sender with the score-function estimator instead (reward = the receiver's log-likelihood of the
right answer, batch-mean baseline, entropy bonus), kept for the comparison the README reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from arc_comm.model import PAD, ARCAutoencoder


@dataclass
class StepOptions:
    temperature: float = 1.0
    diversity_weight: float = 1.0
    method: str = "gumbel"  # gumbel | reinforce
    entropy_weight: float = 0.01  # REINFORCE only


def selection_indices(count: int, n: int, distractors: int, generator: torch.Generator):
    """(target indices (n,), candidate indices (n, 1 + distractors), index of the target among them)
    for games over ``count`` grids: distractors are other grids, drawn without the target; positions shuffled."""
    target = torch.randint(count, (n,), generator=generator)
    others = torch.randint(count - 1, (n, distractors), generator=generator)
    others = others + (others >= target[:, None]).long()
    candidates = torch.cat([target[:, None], others], 1)
    order = torch.argsort(torch.rand(n, distractors + 1, generator=generator), 1)
    candidates = torch.gather(candidates, 1, order)
    answer = (order == 0).long().argmax(1)
    return target, candidates, answer


def selection_batch(grids: torch.Tensor, n: int, distractors: int, generator: torch.Generator):
    """(targets (n, S, S), candidates (n, 1 + distractors, S, S), index of the target among them)."""
    target, candidates, answer = selection_indices(len(grids), n, distractors, generator)
    return grids[target], grids[candidates], answer


def _diversity(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of each position's batch-averaged symbol distribution (to be maximised):
    without it the sender settles on a few symbols early and never leaves them."""
    p = logits.softmax(-1).mean(0)
    return -(p * p.clamp_min(1e-9).log()).sum(-1).mean()


def _speak(model: ARCAutoencoder, latent: torch.Tensor, options: StepOptions):
    """(receiver vector, logits, REINFORCE terms or None)."""
    if options.method == "reinforce":
        message, log_prob, entropy = model.sender.sample(latent)
        return model.receiver(message), model.sender.logits(latent), (log_prob, entropy)
    message, logits = model.sender(latent, options.temperature)
    return model.receiver(message), logits, None


def _communication_loss(task_loss: torch.Tensor, logits, reinforce, options: StepOptions, share=None) -> torch.Tensor:
    """Mean task loss plus the sender's terms: Gumbel gradients flow through the message already.
    With ``share`` (a rank's part of the batch) the baseline and the diversity are the whole batch's."""
    loss = task_loss.mean()
    if reinforce is not None:
        log_prob, entropy = reinforce
        reward = -task_loss.detach()
        baseline = reward.mean() if share is None else share.total(reward.sum()) / share.batch_len
        loss = loss - ((reward - baseline) * log_prob).mean() - options.entropy_weight * entropy.mean()
    if logits is not None and options.diversity_weight:
        loss = loss - options.diversity_weight * _diversity(logits if share is None else share.gather(logits))
    return loss


def _share(world, rows: int):
    """This rank's part of a global batch of ``rows`` games (None in a single process)."""
    if world is None or not world.multi:
        return None
    from trainer_core import BatchShare

    return BatchShare(world, rows)


def _mine(share, *tensors: torch.Tensor):
    """This rank's rows of global-batch tensors (all of them in a single process)."""
    return tensors if share is None else tuple(share.local(t) for t in tensors)


def selection_step(
    model: ARCAutoencoder, grids: torch.Tensor, n: int, distractors: int | None, options: StepOptions, generator: torch.Generator,
    world=None,
):  # fmt: skip
    """(loss, accuracy) of one training batch; ``distractors=None`` plays against the whole batch."""
    if distractors is None:
        pick = torch.randperm(len(grids), generator=generator)[:n]
        share = _share(world, len(pick))
        (mine,) = _mine(share, pick)
        latent = model.encoder(grids[mine])
        candidates = model.candidate(latent)
        if share is not None:  # every rank's candidates: the whole batch's negatives
            candidates = share.gather(candidates)
        answer = torch.arange(len(pick)) if share is None else share.mine
    else:
        targets, cand_grids, answer = selection_batch(grids, n, distractors, generator)
        share = _share(world, len(targets))
        targets, cand_grids, answer = _mine(share, targets, cand_grids, answer)
        latent = model.encoder(targets)
        b, k = cand_grids.shape[:2]
        candidates = model.candidate(model.encoder(cand_grids.reshape(b * k, *cand_grids.shape[2:]))).view(b, k, -1)
    if model.bottleneck_type == "communication":
        vector, logits, reinforce = _speak(model, latent, options)
    else:
        vector, logits, reinforce = model.channel(latent), None, None
    scores = vector @ candidates.T if distractors is None else torch.einsum("bh,bkh->bk", vector, candidates)
    task_loss = F.cross_entropy(scores, answer, reduction="none")
    loss = _communication_loss(task_loss, logits, reinforce, options, share)
    return loss, (scores.argmax(1) == answer).float().mean()


def _vector(model: ARCAutoencoder, grids: torch.Tensor, options: StepOptions):
    latent = model.encoder(grids)
    if model.bottleneck_type == "communication":
        return _speak(model, latent, options)
    return model.channel(latent), None, None


def reconstruction_targets(grids: torch.Tensor):
    """(heights-1, widths-1, inside mask) of padded grids."""
    inside = grids != PAD
    return inside.any(2).sum(1) - 1, inside.any(1).sum(1) - 1, inside


def reconstruction_scores(model: ARCAutoencoder, vector: torch.Tensor, grids: torch.Tensor):
    """(per-grid loss, per-grid correct cells, per-grid cell count, size right) of reconstructions."""
    height, width, cells = model.reconstruct(vector)
    s = grids.shape[1]
    h, w, inside = reconstruction_targets(grids)
    cells = cells[:, :s, :s]
    colours = grids.clamp_max(model.num_colors - 1)
    cell_loss = F.cross_entropy(cells.permute(0, 3, 1, 2), colours, reduction="none")
    count = inside.sum((1, 2))
    loss = F.cross_entropy(height, h, reduction="none") + F.cross_entropy(width, w, reduction="none")
    loss = loss + (cell_loss * inside).sum((1, 2)) / count
    correct = ((cells.argmax(-1) == grids) & inside).sum((1, 2))
    size_right = (height.argmax(1) == h) & (width.argmax(1) == w)
    return loss, correct, count, size_right


def reconstruction_step(model: ARCAutoencoder, grids: torch.Tensor, n: int, options: StepOptions, generator: torch.Generator, world=None):
    pick = torch.randperm(len(grids), generator=generator)[:n]
    share = _share(world, len(pick))
    (pick,) = _mine(share, pick)
    vector, logits, reinforce = _vector(model, grids[pick], options)
    task_loss, correct, count, _ = reconstruction_scores(model, vector, grids[pick])
    return _communication_loss(task_loss, logits, reinforce, options, share), correct.sum() / count.sum()


def classification_step(
    model: ARCAutoencoder, grids: torch.Tensor, labels: torch.Tensor, n: int, options: StepOptions, generator: torch.Generator,
    world=None,
):  # fmt: skip
    pick = torch.randperm(len(grids), generator=generator)[:n]
    share = _share(world, len(pick))
    (pick,) = _mine(share, pick)
    vector, logits, reinforce = _vector(model, grids[pick], options)
    scores = model.classify(vector)
    task_loss = F.cross_entropy(scores, labels[pick], reduction="none")
    return _communication_loss(task_loss, logits, reinforce, options, share), (scores.argmax(1) == labels[pick]).float().mean()


def _eval_vector(model: ARCAutoencoder, grids: torch.Tensor) -> torch.Tensor:
    """The receiver's vector for each grid, from the sender's greedy message (or the continuous channel)."""
    latent = model.encoder(grids)
    if model.bottleneck_type != "communication":
        return model.channel(latent)
    return model.receiver(F.one_hot(model.sender.greedy(latent), model.vocab_size).float())


@torch.no_grad()
def evaluate_selection(
    model: ARCAutoencoder, grids: torch.Tensor, games: int, distractors: int, seed: int = 1234, shuffle_messages: bool = False
) -> dict[str, float]:
    """Held-out accuracy (and loss) on ``games`` fixed games; ``shuffle_messages`` pairs each
    receiver with another game's message (a control: it must fall to chance).

    Each grid is encoded once (as a sender's grid and as a candidate) and games index into those
    encodings: the 99-distractor curve costs one pass over the grids, not 100 per game."""
    was = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.cat([_eval_vector(model, grids[i : i + 500]) for i in range(0, len(grids), 500)])
    keys = torch.cat([model.candidate(model.encoder(grids[i : i + 500])) for i in range(0, len(grids), 500)])
    target, candidates, answer = selection_indices(len(grids), games, distractors, generator)
    heard = vectors[target]
    if shuffle_messages:
        heard = heard[torch.randperm(games, generator=generator)]
    scores = torch.einsum("bh,bkh->bk", heard, keys[candidates])
    model.train(was)
    return {"val_loss": F.cross_entropy(scores, answer).item(), "val_acc": (scores.argmax(1) == answer).float().mean().item()}


@torch.no_grad()
def evaluate_reconstruction(model: ARCAutoencoder, grids: torch.Tensor) -> dict[str, float]:
    """Held-out loss, cell accuracy (cells of the true grid given the right colour; the metric the
    dashboard calls val_acc), size accuracy and whole-grid accuracy."""
    was = model.training
    model.eval()
    loss = correct = cells = size_right = exact = 0.0
    for start in range(0, len(grids), 500):
        chunk = grids[start : start + 500]
        part_loss, c, n, s = reconstruction_scores(model, _eval_vector(model, chunk), chunk)
        loss, correct, cells = loss + part_loss.sum().item(), correct + c.sum().item(), cells + n.sum().item()
        size_right, exact = size_right + s.sum().item(), exact + ((c == n) & s).sum().item()
    model.train(was)
    total = len(grids)
    return {"val_loss": loss / total, "val_acc": correct / cells, "size_acc": size_right / total, "grid_acc": exact / total}


@torch.no_grad()
def evaluate_classification(model: ARCAutoencoder, grids: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    was = model.training
    model.eval()
    loss = correct = 0.0
    for start in range(0, len(grids), 500):
        scores = model.classify(_eval_vector(model, grids[start : start + 500]))
        y = labels[start : start + 500]
        loss += F.cross_entropy(scores, y, reduction="sum").item()
        correct += (scores.argmax(1) == y).sum().item()
    model.train(was)
    return {"val_loss": loss / len(grids), "val_acc": correct / len(grids)}

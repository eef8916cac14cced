"""What the emergent language looks like on held-out grids.

* the accuracy-vs-distractors curve (selection at 1, 3, 7, 15, 99 distractors);
* the shuffled-messages control (each receiver hears another game's message: chance if the
  receiver really reads the message);
* the number of distinct messages the sender uses;
* topographic similarity: Spearman correlation between pairwise distances of grids (fraction of
  differing cells, the padding counting as a colour so that sizes matter) and of their messages
  (Hamming distance between symbol sequences). Positive means similar grids get similar messages.
"""

from __future__ import annotations

import numpy as np
import torch

from arc_comm.games import evaluate_selection
from arc_comm.model import ARCAutoencoder

CURVE = (1, 3, 7, 15, 99)


@torch.no_grad()
def messages(model: ARCAutoencoder, grids: torch.Tensor) -> np.ndarray:
    """Greedy symbol ids (N, L) for every grid."""
    was = model.training
    model.eval()
    out = torch.cat([model.sender.greedy(model.encoder(grids[i : i + 500])) for i in range(0, len(grids), 500)])
    model.train(was)
    return out.numpy()


def topographic_similarity(grids: np.ndarray, ids: np.ndarray, sample: int = 400, seed: int = 0) -> float:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(grids))[:sample]
    g = grids[pick].reshape(len(pick), -1)
    m = ids[pick]
    upper = np.triu_indices(len(pick), 1)
    grid_distance = (g[:, None, :] != g[None, :, :]).mean(-1)[upper]
    message_distance = (m[:, None, :] != m[None, :, :]).mean(-1)[upper]
    return float(spearmanr(grid_distance, message_distance).statistic)


def language_report(model: ARCAutoencoder, grids: torch.Tensor, games: int = 2000, curve=CURVE) -> dict:
    """Everything above for a selection model on the held-out grids."""
    usable = [d for d in curve if d < len(grids)]
    report = {
        "held_out_grids": len(grids),
        "accuracy_vs_distractors": {str(d): evaluate_selection(model, grids, games, d)["val_acc"] for d in usable},
        "chance": {str(d): 1 / (d + 1) for d in usable},
        "shuffled_messages_3": evaluate_selection(model, grids, games, 3, shuffle_messages=True)["val_acc"]
        if model.bottleneck_type == "communication"
        else None,
    }
    if model.bottleneck_type == "communication":
        ids = messages(model, grids)
        report["distinct_messages"] = len({tuple(row) for row in ids.tolist()})
        report["possible_messages"] = model.vocab_size**model.max_length
        report["topographic_similarity"] = topographic_similarity(grids.numpy(), ids)
    return report

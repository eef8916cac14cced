"""Category discovery and the EMA quantiser, against the pitfalls of the original implementation."""

from __future__ import annotations

import numpy as np
import torch

from spinlock_vqvae.categories import discover
from spinlock_vqvae.quantizer import EMAQuantizer


def planted(groups=5, per_group=8, samples=2000, seed=0):
    rng = np.random.default_rng(seed)
    columns, truth = [], []
    for g in range(groups):
        latent = rng.normal(size=(samples, 1))
        for _ in range(per_group):
            sign = rng.choice([-1.0, 1.0])  # anti-correlated features belong together too
            columns.append(sign * latent[:, 0] + 0.4 * rng.normal(size=samples))
            truth.append(g)
    order = rng.permutation(len(truth))
    return np.stack(columns, 1)[:, order], np.array(truth)[order]


def test_planted_groups_are_recovered_pure():
    x, truth = planted()
    found = discover(x, max_clusters=20)
    assert found.count <= 2 * 5
    for group in found.groups:
        assert len(set(truth[group])) == 1, "a discovered category mixes planted groups"
    assert found.count == 5 and found.silhouette > 0.5


def test_num_categories_forces_k():
    x, _ = planted()
    assert discover(x, num_categories=3).count == 3


def test_ema_step_with_decay_0_gives_cluster_means():
    torch.manual_seed(0)
    q = EMAQuantizer(num_codes=4, dim=2, decay=0.0)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]]))
    q.initialized.fill_(True)
    z = torch.cat([torch.randn(30, 2), torch.randn(20, 2) + torch.tensor([10.0, 0.0]), torch.randn(25, 2) + torch.tensor([0.0, 10.0])])
    indices = q.assign(z)
    q.ema_update(z, indices)
    for code in range(3):
        assert torch.allclose(q.codebook[code], z[indices == code].mean(0), atol=1e-4)
    assert torch.equal(q.codebook[3], torch.tensor([50.0, 50.0]))  # unused code keeps its place


def test_codebook_is_not_an_optimizer_parameter_and_commitment_trains_the_encoder():
    q = EMAQuantizer(num_codes=8, dim=3)
    assert list(q.parameters()) == []
    z = torch.randn(64, 3, requires_grad=True)
    out, _, loss = q(z)
    (out.sum() + loss).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_after_a_reset_no_code_is_below_the_threshold():
    torch.manual_seed(0)
    q = EMAQuantizer(num_codes=32, dim=4, decay=0.9, dead_threshold=10.0)
    z = torch.randn(256, 4)
    q(z)
    skewed = torch.randn(256, 4) * 0.05 + 3.0  # everything lands on a few codes
    for _ in range(30):
        q(skewed)
    threshold = q.usage.mean() * 0.10
    assert (q.usage < threshold).any()
    reset = q.reset_dead_codes(skewed, torch.Generator().manual_seed(1))
    assert reset > 0
    assert not (q.usage < q.usage.mean() * 0.10).any()


def test_a_healthy_codebook_is_left_alone():
    torch.manual_seed(0)
    q = EMAQuantizer(num_codes=8, dim=2, decay=0.9)
    centers = torch.tensor([[float(i), float(j)] for i in range(4) for j in range(2)]) * 10
    data = centers.repeat(32, 1) + 0.1 * torch.randn(256, 2)
    for _ in range(20):
        q(data)
    before = q.codebook.clone()
    assert q.reset_dead_codes(data) == 0 and torch.equal(before, q.codebook)


def test_fast_tokenizer_gives_the_models_tokens():
    """encode-to-tokens' batched path (categories stacked by width, zero-padded) gives exactly the
    tokens of the model's own per-category path, whatever the category widths."""
    import numpy as np

    from spinlock_vqvae.model import CategoricalVQVAE
    from spinlock_vqvae.tokenizer import Tokenizer

    torch.manual_seed(0)
    sizes = [3, 40, 10, 5]
    model = CategoricalVQVAE(sizes, latent=8, codes=[8, 16, 24], hidden=64)
    assert len({coder.encoder[0].out_features for coder in model.coders}) == 2  # two width buckets
    order = np.random.default_rng(0).permutation(sum(sizes))  # categories take scattered columns
    groups = np.split(order, np.cumsum(sizes)[:-1])
    rows = np.random.default_rng(1).normal(3.0, 2.0, size=(500, sum(sizes))).astype(np.float32)
    means = [rows[:, g].mean(0) for g in groups]
    stds = [rows[:, g].std(0) for g in groups]
    parts = [torch.from_numpy((rows[:, g] - m) / s) for g, m, s in zip(groups, means, stds, strict=True)]
    model.train()
    model(parts)  # k-means initialisation of every codebook
    model.eval()
    expected = model.tokenize(parts).numpy()
    got = Tokenizer(model, groups, means, stds)(rows)
    assert got.shape == (500, 4, 3) and len(np.unique(got[:, :, 2])) > 4
    np.testing.assert_array_equal(got, expected)


def test_a_wide_category_is_cut_into_equal_parts_that_keep_correlated_features_together():
    rng = np.random.default_rng(1)
    n = 3000
    wide, narrow = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
    columns, part = [], []
    for p in range(3):  # one wide family of 24 features made of 3 tighter sub-families of 8
        sub = wide + 0.6 * rng.normal(size=(n, 1))
        columns += [sub[:, 0] + 0.3 * rng.normal(size=n) for _ in range(8)]
        part += [p] * 8
    columns += [narrow[:, 0] + 0.4 * rng.normal(size=n) for _ in range(4)]
    part += [3] * 4
    order = rng.permutation(len(part))
    x, part = np.stack(columns, 1)[:, order], np.array(part)[order]
    assert sorted(len(g) for g in discover(x, num_categories=2).groups) == [4, 24]
    found = discover(x, num_categories=2, max_category_features=8)
    assert sorted(len(g) for g in found.groups) == [4, 8, 8, 8]  # ceil(24 / 8) = 3 equal parts; the narrow one untouched
    assert sorted(np.concatenate(found.groups).tolist()) == list(range(28))  # every feature once
    for group in found.groups:
        assert len(set(part[group])) == 1, "a part mixes sub-families"
    assert [g[0] for g in found.groups] == sorted(g[0] for g in found.groups)  # ordered by first feature, as without the cut

"""The distributed sampler: the global sample order is a function of (seed, epoch) whatever the
world size, every rank takes an equal share of each global batch, and a run resumes mid-epoch
from the global batch index."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trainer_core import GlobalBatches, World, epoch_permutation, uneven_share_warning  # noqa: E402


def _shares(size: int, **kw):
    return [list(GlobalBatches(100, 12, seed=7, epoch=3, world=World(rank=r, size=size), **kw)) for r in range(size)]


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_the_ranks_together_see_each_global_batch_of_one_order(size):
    order = epoch_permutation(100, 3, 7)
    shares = _shares(size)
    assert all(len(s) == 9 for s in shares)  # 8 full batches and the partial last one
    for index in range(9):
        together = sorted(torch.cat([shares[r][index] for r in range(size)]).tolist())
        assert together == sorted(order[index * 12 : (index + 1) * 12].tolist())
    if 12 % size == 0:
        assert len({len(shares[r][0]) for r in range(size)}) == 1


def test_resume_from_a_global_batch_index_at_another_world_size():
    two = _shares(2)
    three_from_5 = _shares(3, start=5)
    assert len(three_from_5[0]) == 4
    for offset, index in enumerate(range(5, 9)):
        assert sorted(torch.cat([s[offset] for s in three_from_5]).tolist()) == sorted(torch.cat([s[index] for s in two]).tolist())


def test_drop_last_and_another_epoch_or_seed_change_the_order():
    assert len(GlobalBatches(100, 12, seed=7, epoch=3, drop_last=True)) == 8
    first = next(iter(GlobalBatches(100, 12, seed=7, epoch=3)))
    assert not torch.equal(first, next(iter(GlobalBatches(100, 12, seed=7, epoch=4))))
    assert not torch.equal(first, next(iter(GlobalBatches(100, 12, seed=8, epoch=3))))


def test_an_uneven_share_is_named():
    assert uneven_share_warning(64, World(rank=0, size=2)) is None
    assert "use a multiple of 3" in uneven_share_warning(64, World(rank=0, size=3))
    assert uneven_share_warning(63, World()) is None

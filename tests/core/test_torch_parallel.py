"""core's batch norm over the global batch: in one process (or in evaluation) it is batch norm."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trainer_core import sync_batchnorm  # noqa: E402
from trainer_core.torch_parallel import GlobalBatchNorm  # noqa: E402


def test_conversion_keeps_parameters_statistics_and_outputs():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(32, 6)
    plain(x)  # some running statistics
    expected_train, weight = plain(x), plain[1].weight
    converted = sync_batchnorm(plain)
    assert isinstance(converted[1], GlobalBatchNorm) and converted[1].weight is weight  # the optimiser's parameter
    assert torch.allclose(converted(x), expected_train)
    converted.eval()
    reference = torch.nn.BatchNorm1d(8).eval()
    reference.load_state_dict(converted[1].state_dict())
    assert torch.allclose(converted[1](converted[0](x)), reference(converted[0](x)))
    assert int(converted[1].num_batches_tracked) == 3

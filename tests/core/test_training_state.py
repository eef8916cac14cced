"""RNG capture/restore: every generator continues exactly; without torch the state is plain JSON."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from trainer_core.training_state import capture_rng_state, epoch_permutation, restore_rng_state


def _draws():
    import torch

    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_every_generator_resumes_exactly():
    pytest.importorskip("torch")
    random.seed(1)
    np.random.seed(1)
    __import__("torch").manual_seed(1)
    _draws()
    state = capture_rng_state()
    expected = [_draws() for _ in range(3)]
    _draws()
    restore_rng_state(state)
    assert [_draws() for _ in range(3)] == expected


def test_without_torch_the_state_is_json_and_carries_a_jax_key():
    code = (
        "import json, sys, jax; from trainer_core.training_state import capture_rng_state, restore_rng_state\n"
        "s = capture_rng_state(jax_key=jax.random.PRNGKey(7)); text = json.dumps(s)\n"
        "key = restore_rng_state(json.loads(text)); print('torch' in sys.modules, key.tolist() == jax.random.PRNGKey(7).tolist())"
    )
    pytest.importorskip("jax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_epoch_order_is_a_function_of_seed_and_epoch():
    pytest.importorskip("torch")
    assert epoch_permutation(100, 3, 0).tolist() == epoch_permutation(100, 3, 0).tolist()
    assert epoch_permutation(100, 3, 0).tolist() != epoch_permutation(100, 4, 0).tolist()
    assert sorted(epoch_permutation(100, 3, 0).tolist()) == list(range(100))
    json.dumps(epoch_permutation(5, 0, 0).tolist())

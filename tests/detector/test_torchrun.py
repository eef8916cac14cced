"""`torchrun --nproc_per_node=2` runs the detector pipeline: rank 0 generates the data, trains the
shape classifier and evaluates; both ranks train the detector (DDP) into one checkpoint series."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bongard_detector.training import loader, shuffled_order  # noqa: E402
from trainer_core import World, list_committed, verify_checkpoint  # noqa: E402

BIN = Path(sys.executable).parent

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from bongard_detector.pipeline import Pipeline, make_config
    config = make_config("quick", dataset_size=24, test_size=8, real_size=8, image_size=128, epochs=2, classifier_steps=4, workers=0)
    result = Pipeline(config, sys.argv[1], echo=lambda line: None, progress=False).run()
    print("RESULT" + os.environ["RANK"], json.dumps({k: result.get(k) for k in ("rank", "trained", "evaluation", "work_done")}), flush=True)
    """
)


def test_the_ranks_share_each_global_batch_of_the_loader_order():
    """The global order is the one a single process's shuffling loader draws, whatever the ranks."""
    data = [(i, i) for i in range(30)]  # (image, target) pairs, as the loader collates them
    single = [i for images, _ in loader(data, 8, 0, True, seed=5, epoch=2) for i in images]
    assert single == shuffled_order(30, 5, 2).tolist()
    shares = [[list(images) for images, _ in loader(data, 8, 0, True, seed=5, epoch=2, world=World(rank=r, size=2))] for r in range(2)]
    for index in range(4):
        assert sorted(shares[0][index] + shares[1][index]) == sorted(single[index * 8 : (index + 1) * 8])


@pytest.mark.slow
def test_two_ranks_train_the_detector_into_one_series(tmp_path, torchrun_env):
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    result = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path / "det")],
                            capture_output=True, text=True, timeout=900, env=torchrun_env)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = {line[:7]: json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("RESULT")}
    assert results["RESULT1"]["rank"] == 1 and results["RESULT1"]["trained"] is True
    assert results["RESULT0"]["work_done"] == {"data_generation": True, "training": True, "evaluation": True}
    assert "AP50" in results["RESULT0"]["evaluation"]["synthetic"]
    series = list_committed(tmp_path / "det" / "models" / "quick" / "epochs")
    assert [c.epoch for c in series] == [1, 2] and all(c.extra["world_size"] == 2 for c in series)
    assert all(verify_checkpoint(c.path).status == "ok" for c in series)
    assert verify_checkpoint(tmp_path / "det" / "models" / "quick" / "final").status == "ok"

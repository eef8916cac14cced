"""Stage cache: a stage is redone when its config or outputs change, when reset or forced — only then."""

from __future__ import annotations

import json

from trainer_core.stages import StageCache, dir_output, file_output, json_count_output


def _pipeline(tmp_path, calls):
    data_dir = tmp_path / "data"

    def generate():
        calls.append("generate")
        data_dir.mkdir(exist_ok=True)
        for i in range(3):
            (data_dir / f"{i}.png").write_bytes(b"img")
        (data_dir / "annotations.json").write_text(json.dumps({"annotations": [1, 2, 3]}))
        return {"images": 3}, [dir_output(data_dir, "*.png"), json_count_output(data_dir / "annotations.json", "annotations")]

    return generate


def test_stage_runs_once_then_is_cached(tmp_path):
    calls = []
    cache = StageCache(tmp_path / "checkpoints", package="demo")
    record, ran = cache.run("data_generation", "hash1", _pipeline(tmp_path, calls))
    assert ran and record["metrics"] == {"images": 3} and record["package"] == "demo"
    _, ran = cache.run("data_generation", "hash1", _pipeline(tmp_path, calls))
    assert not ran and calls == ["generate"]


def test_config_change_missing_output_corrupt_status_reset_and_force(tmp_path):
    calls = []
    cache = StageCache(tmp_path / "checkpoints")
    gen = _pipeline(tmp_path, calls)
    cache.run("data_generation", "h1", gen)
    assert cache.check("data_generation", "h2").reason == "config changed"
    (tmp_path / "data" / "1.png").unlink()
    assert "has 2 files" in cache.check("data_generation", "h1").reason
    cache.run("data_generation", "h1", gen)
    (tmp_path / "data" / "annotations.json").write_text(json.dumps({"annotations": [1]}))
    assert "expected 3" in cache.check("data_generation", "h1").reason
    cache.run("data_generation", "h1", gen)
    cache.run("data_generation", "h1", gen, force=True)
    assert cache.reset("data_generation") == ["data_generation"]
    assert cache.check("data_generation", "h1").reason == "never run"
    cache.path("training").write_text("{not json")
    assert "unreadable" in cache.check("training", "h1").reason
    assert calls == ["generate"] * 4


def test_file_outputs_and_custom_validators(tmp_path):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    cache = StageCache(tmp_path / "checkpoints")
    cache.complete("training", "h", outputs=[file_output(model)])
    assert cache.check("training", "h").fresh
    assert cache.check("training", "h", [lambda record: "does not load"]).reason == "does not load"
    model.write_bytes(b"WEIGHTS")
    assert "changed contents" in cache.check("training", "h").reason


def test_stage_files_are_listed(tmp_path, run_core):
    cache = StageCache(tmp_path / "checkpoints", package="bongard-detector")
    cache.complete("evaluation", "h", metrics={"mAP": 0.9})
    result = run_core("list-checkpoints", tmp_path, "--json")
    (entry,) = json.loads(result.stdout)
    assert entry["kind"] == "stage:evaluation" and entry["package"] == "bongard-detector" and entry["metrics"] == {"mAP": 0.9}


def test_stage_files_are_listed_whatever_their_folder_is_called(tmp_path, run_core):
    import json as _json

    from trainer_core.stages import StageCache

    StageCache(tmp_path / "pipeline_state", package="pkg").complete("prepare", "h" * 64, metrics={"rows": 3})
    rows = _json.loads(run_core("list-checkpoints", tmp_path, "--json").stdout)
    assert [(r["kind"], r["package"], r["status"]) for r in rows] == [("stage:prepare", "pkg", "ok")]

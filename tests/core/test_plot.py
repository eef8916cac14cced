"""`core plot`: one panel per metric from any run's metrics.jsonl, train and validation apart, runs
overlaid, readable ticks, and one clear line for what cannot be drawn."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")

from trainer_core.plotting import build_figure, read_curves  # noqa: E402


def _run(folder, records):
    folder.mkdir(parents=True)
    lines = [json.dumps(r) for r in records]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n{cut by a cra")  # a torn last line is skipped
    return folder


def _records(scale=1.0, steps=40):
    out = []
    for step in range(1, steps + 1):
        out.append({"step": step * 1000, "epoch": step, "split": "train", "time": 0, "loss": scale / step, "lr": 0.1})
        if step % 5 == 0:
            out.append({"step": step * 1000, "epoch": step, "split": "val", "time": 0, "val_loss": scale / step + 0.1, "accuracy": step / 40})
    return out


def test_train_and_validation_of_a_metric_share_a_panel(tmp_path):
    curves = read_curves(_run(tmp_path / "a", _records()) / "metrics.jsonl", "a")
    by_key = {(c.metric, c.split): c for c in curves}
    assert set(by_key) == {("loss", "train"), ("loss", "val"), ("lr", "train"), ("accuracy", "val")}
    assert len(by_key[("loss", "train")].x) == 40 and len(by_key[("loss", "val")].x) == 8


def test_the_command_overlays_runs_and_writes_one_png(tmp_path, run_core):
    a, b = _run(tmp_path / "a", _records()), _run(tmp_path / "b", _records(2.0))
    single = run_core("plot", str(a), "--json")
    assert single.exit_code == 0, single.output
    drawn = json.loads(single.output)
    assert drawn["output"] == str(a / "metrics.png") and (a / "metrics.png").stat().st_size > 5_000
    assert [p["metric"] for p in drawn["panels"]] == ["loss", "lr", "accuracy"] and drawn["panels"][0]["curves"] == 2
    both = run_core("plot", str(a), str(b), "--metrics", "loss,accuracy", "--output", str(tmp_path / "cmp.png"), "--json")
    assert both.exit_code == 0, both.output
    assert [(p["metric"], p["curves"]) for p in json.loads(both.output)["panels"]] == [("loss", 4), ("accuracy", 2)]


def test_no_two_tick_labels_of_an_axis_overlap(tmp_path):
    fig, _ = build_figure([_run(tmp_path / "a", _records(steps=400))])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            assert len(boxes) >= 2
            assert not any(p.overlaps(q) for i, p in enumerate(boxes) for q in boxes[i + 1 :]), (ax.get_title(), [t.get_text() for t in axis.get_ticklabels()])


def test_what_cannot_be_drawn_is_one_line_with_exit_2(tmp_path, run_core):
    a = _run(tmp_path / "a", _records())
    unknown = run_core("plot", str(a), "--metrics", "loss,acuracy")
    assert unknown.exit_code == 2 and "no metric named acuracy" in unknown.output and "accuracy" in unknown.output
    (tmp_path / "empty").mkdir()
    empty = run_core("plot", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "has no metrics.jsonl" in empty.output
    _run(tmp_path / "b", _records())
    several = run_core("plot", str(tmp_path))
    assert several.exit_code == 2 and "holds 2 runs" in several.output
    assert run_core("plot", str(tmp_path / "a"), "--output", str(tmp_path / "x.png")).exit_code == 0  # the folder of one run
    missing = run_core("plot", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "not a folder" in missing.output
    assert "Traceback" not in unknown.output + empty.output + missing.output + several.output


def test_every_run_ends_with_its_figure(tmp_path):
    from PIL import Image

    from trainer_core import CheckpointLayout, TrainingRun

    layout = CheckpointLayout(name="figure.test", package="figure")
    with TrainingRun({"seed": 0}, layout=layout, run_dir=tmp_path / "run") as run:
        for step in range(1, 21):
            run.log({"loss": 1 / step}, step=step, epoch=1)
            if step % 5 == 0:
                run.log({"loss": 1 / step + 0.1, "acc": step / 20}, step=step, epoch=1, split="val")
    picture = tmp_path / "run" / "metrics.png"
    assert Image.open(picture).size[0] > 400  # loss (train and val) and acc: two panels side by side

    with TrainingRun({"seed": 0}, layout=layout, run_dir=tmp_path / "silent"):
        pass
    assert not (tmp_path / "silent" / "metrics.png").exists()  # nothing logged, nothing drawn


def test_a_figure_that_cannot_be_drawn_never_fails_the_run(tmp_path, monkeypatch, capsys):
    import trainer_core.plotting as plotting
    from trainer_core import CheckpointLayout, TrainingRun

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plotting, "plot_runs", broken)
    with TrainingRun({"seed": 0}, layout=CheckpointLayout(name="figure.test", package="figure"), run_dir=tmp_path / "run") as run:
        run.log({"loss": 1.0}, step=1)
    assert run.status == "completed" and (tmp_path / "run" / "metrics.jsonl").is_file()
    assert "metrics.png was not written: RuntimeError: no fonts" in capsys.readouterr().err

"""vizwatch's trainer-core plugin: draws snapshots for any trainer that enables it, and lists
run folders in ``core list-checkpoints``.

A trainer enables it through the visualization event's options, e.g.
``VisualizationEvent(..., options={"enabled": True, "method": "tsne", "every": 10})``; keys:
``enabled``, ``method`` (tsne, umap, pca), ``every``, ``root`` (default
``training_feature_visualizations``), ``train_points`` (500), ``val_points`` (300), ``seed``,
``worker`` (``process`` or ``thread``), ``on`` (``epoch``: drawn from ``visualize_epoch_end``, the
default; ``checkpoint``: drawn from ``visualize_checkpoint``, i.e. only for epochs whose checkpoint
was committed). Events that carry ``codebooks`` are drawn as codebook pictures
(``vizwatch.codebooks``; options ``codebook_method``, ``codebook_output``), whatever ``enabled``.
"""

from __future__ import annotations

import json
import os
import re

from trainer_core import CheckpointInfo, CheckpointLayout, check_file_sizes, files_problem, hookimpl
from vizwatch.trainer.layout import LAYOUT as CLASSIFIER_LAYOUT

PACKAGE = "vizwatch"
_WATCHERS: dict[str, object] = {}
_RUN_NAME = re.compile(r"^run_\d+$")


class VisualizationRunLayout(CheckpointLayout):
    """``training_feature_visualizations/run_NNN/``: frames plus ``run_metadata.json``."""

    name = "vizwatch.run"
    package = PACKAGE
    kind = "visualization"
    headline_metrics = ("best_val_acc", "frames")
    description = "training_feature_visualizations/run_NNN/: frames, run_metadata.json, training_progress.txt"

    def recognise(self, path: str, is_dir: bool) -> bool:
        return is_dir and _RUN_NAME.match(os.path.basename(path)) is not None and os.path.isfile(os.path.join(path, "run_metadata.json"))

    def describe(self, path: str) -> CheckpointInfo:
        info = CheckpointInfo(path=path, package=PACKAGE, layout=self.name, kind=self.kind, headline=self.headline_metrics)
        try:
            with open(os.path.join(path, "run_metadata.json"), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError) as exc:
            info.status, info.problems = "corrupt", [f"unreadable run_metadata.json: {exc}"]
            return info
        frames = meta.get("frames") if isinstance(meta, dict) else None
        if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
            info.status, info.problems = "corrupt", ["run_metadata.json has no list of frames (damaged or not vizwatch's)"]
            return info
        accs = [f["val_acc"] for f in frames if isinstance(f.get("val_acc"), (int, float))]
        info.epoch = max((f["epoch"] for f in frames if isinstance(f.get("epoch"), int)), default=None)
        info.metrics = {"frames": len(frames), **({"best_val_acc": max(accs)} if accs else {}), "method": meta.get("method")}
        info.created = meta.get("start_time")
        total = 0
        latest = 0.0
        for entry in os.scandir(path):
            if entry.is_file():
                stat = entry.stat()
                total += stat.st_size
                latest = max(latest, stat.st_mtime)
        info.size, info.modified = total, latest or None
        if meta.get("status") == "running":
            info.status = "incomplete"
            info.problems.append("the run is still drawing, or stopped before it finished")
        elif all(isinstance(f.get("file"), str) and f.get("sha256") for f in frames):
            # each frame's size and sha256 are recorded as it is drawn: listing checks sizes, `core verify` hashes
            files = {f["file"]: {"size": f.get("size"), "sha256": f["sha256"]} for f in frames}
            problem = files_problem(files)
            if problem is not None:  # a damaged record never sends the listing or verify outside the run
                info.status, info.problems = "corrupt", [f"run_metadata.json: {problem}"]
            else:
                info.files = files
                check_file_sizes(info, path, "run_metadata.json")
        else:  # written before vizwatch recorded its frames' hashes: nothing can vouch for them
            info.status = "unverified"
            info.problems.append("the run's metadata records no hashes of its frames (written by an older vizwatch), so `core verify` cannot check them")
        return info


@hookimpl
def register_checkpoint_layouts(register):
    register(VisualizationRunLayout())
    register(CLASSIFIER_LAYOUT)


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    def load(path):
        from vizwatch.trainer.model import load_trained

        return load_trained(path)

    register(ModelSpec(name=CLASSIFIER_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(CLASSIFIER_LAYOUT.name,), load=load,
                       description="MLP classifier with the latent layer vizwatch draws"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from trainer_core import ConfigSchema
    from vizwatch.trainer.config import VizwatchConfig

    register(ConfigSchema(name="vizwatch.train", model=VizwatchConfig, description="vizwatch train: imbalanced classifier"))


@hookimpl
def visualize_epoch_end(event):
    """Snapshot the latent space at an epoch end (options ``on: epoch``, the default)."""
    if event.options.get("enabled") and event.options.get("on", "epoch") == "epoch":
        _submit(event)


@hookimpl
def visualize_checkpoint(event, checkpoint):
    """Snapshot the latent space once ``checkpoint`` is committed (options ``on: checkpoint``): every
    frame then matches a checkpoint that exists on disk. An event with ``codebooks`` (a
    vector-quantised model) is drawn as one codebook panel per level (``vizwatch.codebooks``)."""
    if getattr(event, "codebooks", None):
        from vizwatch.codebooks import draw_event

        event.options.setdefault("drawn", []).append(draw_event(event, checkpoint))
        return
    if event.options.get("enabled") and event.options.get("on") == "checkpoint":
        _submit(event)


def _submit(event):
    from vizwatch.watcher import RunWatcher

    key = str(event.run_dir)
    watcher = _WATCHERS.get(key)
    if watcher is None:
        splits_names = event.class_names or [str(i) for i in range(int(max(event.get_splits()["train"].labels)) + 1)]
        watcher = _WATCHERS[key] = RunWatcher(
            class_names=splits_names, total_epochs=event.total_epochs, options=event.options, package=event.package
        )
    watcher.submit(event)


@hookimpl
def on_train_end(run, status):
    watcher = _WATCHERS.pop(str(run.run_dir), None)
    if watcher is not None:
        watcher.finish(status)

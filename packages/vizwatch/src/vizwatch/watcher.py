"""The snapshot pipeline of one training run, off the training path.

On the training thread, :meth:`RunWatcher.submit` only decides whether this epoch is a snapshot
epoch, takes the fixed point subsets (drawn once, with vizwatch's own RNG) and hands over host
arrays. A worker — a separate lowest-priority process by default, or a thread — embeds, aligns,
measures and draws. At most ``QUEUE_SIZE`` frames wait (memory stays bounded);
:meth:`RunWatcher.finish` waits for the last one.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from trainer_core import sha256_file
from vizwatch import runs
from vizwatch.embedding import Embedder, available, disparity, resolve_method, trustworthiness
from vizwatch.schedule import should_snapshot
from vizwatch.subsample import stratified_subset

QUEUE_SIZE = 8


def _frame_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    return {
        "val_acc": float(np.mean(labels == predictions)),  # on the drawn subset; a trainer's own val_acc replaces it
        "val_balanced_acc": float(balanced_accuracy_score(labels, predictions)),
        "val_macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


class FramePainter:
    """Worker side: turns queued snapshots into PNG frames and keeps the run's metadata."""

    def __init__(self, run: Path, method: str, seed: int, class_names: list[str], total_epochs: int | None) -> None:
        self.run, self.class_names, self.total_epochs = run, class_names, total_epochs
        self.embedder = Embedder(method, seed)
        self.limits: tuple[float, float, float, float] | None = None
        self.rows: list[dict[str, Any]] = []

    def paint(self, item: dict[str, Any]) -> dict[str, Any]:
        from vizwatch.render import FrameInfo, fixed_limits, render_frame, widen

        features = np.concatenate([item["train_x"], item["val_x"]])
        previous = self.embedder.previous
        xy = self.embedder.embed(features)
        n_train = len(item["train_x"])
        self.limits = fixed_limits(xy) if self.limits is None else widen(self.limits, xy)
        metrics = {**_frame_metrics(item["val_y"], item["val_pred"]), **item["metrics"]}  # the trainer's full-set figures win
        path = self.run / runs.frame_name(item["epoch"], metrics.get("val_acc"))
        drawn = render_frame(
            path,
            xy[:n_train],
            item["train_y"],
            xy[n_train:],
            item["val_y"],
            item["val_pred"],
            self.class_names,
            self.limits,
            FrameInfo(item["epoch"], self.total_epochs, metrics, self.embedder.method),
        )
        frame = {
            "epoch": item["epoch"],
            "file": path.name,
            "size": path.stat().st_size,
            "sha256": sha256_file(path),  # what `core verify` checks the frame against
            **metrics,
            "misclassified": drawn["red_x"],
            "trustworthiness_10": trustworthiness(features, xy, 10),
            "disparity_to_previous": disparity(previous, xy) if previous is not None else None,
        }
        self.rows.append({"epoch": item["epoch"], **metrics})
        runs.write_progress(self.run, self.rows)
        meta = runs.read_metadata(self.run)
        meta["frames"].append(frame)
        runs.atomic_write_json(self.run / runs.METADATA, meta)
        return frame

    def close(self, status: str) -> None:
        meta = runs.read_metadata(self.run)
        meta.update(status=status, end_time=datetime.now().isoformat(timespec="seconds"))
        runs.atomic_write_json(self.run / runs.METADATA, meta)


def _paint_loop(jobs: queue.Queue, painter_args: tuple) -> None:
    """Thread worker: draw queued items until a status string arrives."""
    painter = FramePainter(*painter_args)
    while True:
        item = jobs.get()
        if isinstance(item, str):
            painter.close(item)
            return
        try:
            painter.paint(item)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not stop the others, nor training
            print(f"warning: vizwatch could not draw epoch {item.get('epoch')}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def _lower_priority() -> None:
    os.nice(19)  # frames wait; training does not


class RunWatcher:
    """Training side of one run's snapshots; see the module docstring."""

    def __init__(self, *, class_names: list[str], total_epochs: int | None, options: dict[str, Any], package: str | None = None) -> None:
        self.class_names = list(class_names)
        self.total_epochs = total_epochs
        self.every = int(options.get("every", 10))
        self.seed = int(options.get("seed", 0))
        self.train_points = int(options.get("train_points", 500))
        self.val_points = int(options.get("val_points", 300))
        requested = options.get("method", "tsne")
        self.method = resolve_method(requested)
        self.run = runs.create_run(
            options.get("root") or runs.DEFAULT_ROOT,
            {
                "num_classes": len(self.class_names),
                "class_names": self.class_names,
                "method": self.method,
                "requested_method": requested,
                "start_time": datetime.now().isoformat(timespec="seconds"),
                "has_umap": available("umap"),
                "has_opentsne": available("tsne"),
                "viz_every": self.every,
                "total_epochs": total_epochs,
                "package": package,
                "status": "running",
                "train_points": self.train_points,
                "val_points": self.val_points,
            },
        )
        self._subsets: dict[str, np.ndarray] = {}
        self.snapshots: list[int] = []
        self._slots = threading.BoundedSemaphore(QUEUE_SIZE)  # at most QUEUE_SIZE frames waiting
        painter_args = (self.run, self.method, self.seed, self.class_names, total_epochs)
        self._process: subprocess.Popen | None = None
        if options.get("worker", "process") == "thread":
            self._jobs: queue.Queue = queue.Queue(QUEUE_SIZE)
            self._thread = threading.Thread(target=_paint_loop, args=(self._jobs, painter_args), daemon=True, name="vizwatch")
            self._thread.start()
        else:
            self._start_process()

    def _start_process(self) -> None:
        """A separate interpreter (`python -m vizwatch.worker`) at the lowest CPU priority, one
        thread per library. Snapshots travel as .npz files (no pickling) announced on its stdin;
        it answers one line per frame drawn. Unlike multiprocessing, it never re-imports the
        user's training script."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        command = [
            sys.executable,
            "-m",
            "vizwatch.worker",
            str(self.run),
            self.method,
            str(self.seed),
            json.dumps(self.class_names),
            json.dumps(self.total_epochs),
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=_lower_priority
        )
        self._reader = threading.Thread(target=self._read_acks, daemon=True, name="vizwatch-acks")
        self._reader.start()

    def _read_acks(self) -> None:
        for _ in self._process.stdout:
            self._slots.release()

    def wants(self, epoch: int) -> bool:
        return should_snapshot(epoch, self.total_epochs, self.every)

    def submit(self, event: Any) -> bool:
        """Queue a snapshot of this epoch if the schedule says so; returns whether it did."""
        if not self.wants(event.epoch) or event.epoch in self.snapshots:
            return False
        splits = event.get_splits()
        train, val = splits["train"], splits["val"]
        if not self._subsets:
            self._subsets["train"] = stratified_subset(np.asarray(train.labels), self.train_points, self.seed)
            self._subsets["val"] = stratified_subset(np.asarray(val.labels), self.val_points, self.seed + 1)
        t, v = self._subsets["train"], self._subsets["val"]
        item = {
            "epoch": event.epoch,
            "metrics": {k: float(x) for k, x in event.metrics.items()},
            "train_x": np.asarray(train.embeddings)[t].astype(np.float32),
            "train_y": np.asarray(train.labels)[t],
            "val_x": np.asarray(val.embeddings)[v].astype(np.float32),
            "val_y": np.asarray(val.labels)[v],
            "val_pred": np.asarray(val.predictions)[v],
        }
        self._send(item)
        self.snapshots.append(event.epoch)
        return True

    def _send(self, item: dict[str, Any]) -> None:
        if self._process is None:
            self._jobs.put(item)
            return
        self._slots.acquire()
        spool = self.run / ".pending"
        spool.mkdir(exist_ok=True)
        path = spool / f"epoch_{item['epoch']:04d}.npz"
        arrays = {k: v for k, v in item.items() if isinstance(v, np.ndarray)}
        np.savez(path, epoch=np.array(item["epoch"]), metrics=np.array(json.dumps(item["metrics"])), **arrays)
        try:
            self._process.stdin.write(f"{path}\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            print("warning: the vizwatch worker stopped; no more frames for this run", file=sys.stderr)

    def finish(self, status: str = "completed", timeout: float | None = None) -> Path:
        """Signal the end and wait until every queued frame is drawn."""
        if self._process is None:
            self._jobs.put(status)
            self._thread.join(timeout)
            return self.run
        try:
            self._process.stdin.write(f"END {status}\n")
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        self._process.wait(timeout)
        self._reader.join(timeout)
        shutil.rmtree(self.run / ".pending", ignore_errors=True)
        return self.run

"""vizwatch overhead: per-epoch training time of `vizwatch train` (the seed's classifier) with
snapshots every 10 epochs against without, for t-SNE and UMAP, measured in one run, interleaved;
and the time of one snapshot of 800 points (500 train + 300 val) per method.

Per-epoch time comes from the metrics' timestamps (first to last epoch), so process start-up and
the final wait for the last frame are not counted as training time; the final wait is reported.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from trainer_core.plugins import get_plugin_manager  # noqa: E402
from trainer_core.sinks import read_jsonl  # noqa: E402
from vizwatch.embedding import Embedder  # noqa: E402
from vizwatch.render import FrameInfo, fixed_limits, render_frame  # noqa: E402
from vizwatch.trainer.config import VizwatchConfig  # noqa: E402
from vizwatch.trainer.train import train  # noqa: E402

EPOCHS = 41
SAMPLES = 48000  # about 1 s per epoch on 2 cores: long enough that an epoch means something
ROOT = Path(__file__).resolve().parents[1]


def epoch_time(method: str | None) -> tuple[float, float]:
    """(seconds per epoch, seconds waited at the end for the last frames)."""
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        config = VizwatchConfig(
            epochs=EPOCHS,
            samples=SAMPLES,
            oversample_target=1.0,
            focal_gamma=3.0,
            visualize_training=method is not None,
            viz_every=10,
            viz_method=method or "tsne",
            viz_root=str(Path(tmp) / "viz"),
        )
        start = time.perf_counter()
        train(config, Path(tmp) / "run", pm=get_plugin_manager(warn=False), progress=False)
        total = time.perf_counter() - start
        stamps = [r["time"] for r in read_jsonl(Path(tmp) / "run" / "metrics.jsonl") if r["split"] == "val"]
        per_epoch = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        return per_epoch, total


def snapshot_time(method: str) -> dict[str, float]:
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.target), 800, replace=False)
    x, y = data.data[idx] / 16.0, data.target[idx]
    embedder = Embedder(method, seed=0)
    start = time.perf_counter()
    xy = embedder.embed(x)
    first = time.perf_counter() - start
    start = time.perf_counter()
    xy = embedder.embed(x + rng.normal(0, 0.01, x.shape))
    warm = time.perf_counter() - start
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        start = time.perf_counter()
        render_frame(
            Path(tmp) / "f.png",
            xy[:500],
            y[:500],
            xy[500:],
            y[500:],
            y[500:],
            [str(i) for i in range(10)],
            fixed_limits(xy),
            FrameInfo(1, 10, {}, method),
        )
        draw = time.perf_counter() - start
    return {"first": first, "warm": warm, "draw": draw}


def main() -> None:
    snapshots = {m: snapshot_time(m) for m in ("tsne", "umap", "pca")}
    base, tsne, umap = [], [], []
    for _ in range(2):
        base.append(epoch_time(None))
        tsne.append(epoch_time("tsne"))
        umap.append(epoch_time("umap"))
    b = statistics.median(t for t, _ in base)
    t = statistics.median(t for t, _ in tsne)
    u = statistics.median(t for t, _ in umap)
    figures = {
        "epoch_s_without": b,
        "epoch_s_tsne": t,
        "epoch_s_umap": u,
        "tsne_overhead_pct": (t / b - 1) * 100,
        "umap_overhead_pct": (u / b - 1) * 100,
    }
    for method, times in snapshots.items():
        figures.update(
            {f"{method}_first_snapshot_s": times["first"], f"{method}_warm_snapshot_s": times["warm"], f"{method}_draw_s": times["draw"]}
        )
    report(
        "vizwatch_overhead",
        figures,
        "per-epoch overhead of snapshots every 10 epochs below 3% for t-SNE and UMAP",
        figures["tsne_overhead_pct"] < 3 and figures["umap_overhead_pct"] < 3,
    )


if __name__ == "__main__":
    main()

"""`c2v analyze`: runs, one run's checkpoints, one checkpoint, the progress comparison.

Only the small JSON files of each checkpoint are read (and each file's sha256 checked against the
manifest); weights are never loaded. A missing, incomplete or corrupt checkpoint is reported in
the table and skipped, and the rest are analysed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from choice2vec import checkpoints as ck
from trainer_core import UsageError

CHECKPOINT_DIR = re.compile(r"^checkpoint_epoch_(\d+)$")


def _checkpoint_dirs(run: Path) -> list[Path]:
    return sorted((p for p in run.iterdir() if p.is_dir() and CHECKPOINT_DIR.match(p.name)), key=lambda p: int(p.name.split("_")[-1]))


def _read(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(clustering results or None, status line) for one checkpoint directory."""
    from trainer_core import verify_checkpoint

    if not (path / "manifest.json").exists():
        if (path / ck.LEGACY_WEIGHTS).exists():
            return None, "old pickle checkpoint (read it with --checkpoint and --trust-pickle)"
        return None, "incomplete: no manifest (the run stopped while writing it)"
    info = verify_checkpoint(path)
    if info.status != "ok":
        return None, f"{info.status}: {'; '.join(info.problems)}"
    try:
        return json.loads((path / ck.RESULTS_JSON).read_text()), "ok"
    except (OSError, ValueError) as exc:
        return None, f"unreadable {ck.RESULTS_JSON}: {exc}"


def list_runs(root: str | os.PathLike) -> dict[str, Any]:
    from trainer_core import list_committed

    root = Path(root)
    runs = (
        sorted(p for p in root.iterdir() if p.is_dir() and any(CHECKPOINT_DIR.match(c.name) for c in p.iterdir() if c.is_dir()))
        if root.is_dir()
        else []
    )
    rows = []
    for run in runs:
        infos = list_committed(run)
        accs = [i.metrics.get("best_accuracy") for i in infos if isinstance(i.metrics.get("best_accuracy"), float)]
        rows.append(
            {
                "run": str(run),
                "checkpoints": len(_checkpoint_dirs(run)),
                "committed": len(infos),
                "last_epoch": max((i.epoch or 0 for i in infos), default=None),
                "best_accuracy": max(accs, default=None),
            }
        )
    if not rows:
        return {"data": [], "text": f"no training runs under {root} (start one with `c2v train`)"}
    lines = [f"{'run':<50} {'checkpoints':>11} {'last epoch':>10} {'best acc':>8}"]
    for r in rows:
        acc = f"{r['best_accuracy']:.3f}" if r["best_accuracy"] is not None else "-"
        lines.append(f"{r['run']:<50} {r['checkpoints']:>11} {r['last_epoch'] or '-':>10} {acc:>8}")
    return {"data": rows, "text": "\n".join(lines)}


def _rows(run: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not run.is_dir():
        raise UsageError(f"no training run at {run}; `c2v analyze --list` shows the runs")
    good, problems = [], []
    for path in _checkpoint_dirs(run):
        result, status = _read(path)
        if result is None or "algorithms" not in result:
            problems.append({"checkpoint": path.name, "status": status if result is None else "no accuracy (data without states)"})
        else:
            good.append(result | {"checkpoint": path.name})
    return good, problems


def training_dir(run: str | os.PathLike, trust_pickle: bool = False) -> dict[str, Any]:
    run = Path(run)
    good, problems = _rows(run)
    if not good and not problems:
        raise UsageError(f"no checkpoints in {run}; give a training_checkpoints_* directory (`c2v analyze --list` shows them)")
    lines = [f"{'checkpoint':<26} {'best algorithm':<26} {'acc':>6} {'ARI':>6} {'NMI':>6} {'raw km':>7} {'oracle':>7} {'gap':>6} {'total loss':>10}"]
    for r in good:
        b, best = r["baselines"], r["algorithms"][r["best_algorithm"]]
        r["gap_to_oracle"] = b["oracle"] - best["accuracy"] if "oracle" in b else None
        gap = f"{r['gap_to_oracle']:>6.3f}" if r["gap_to_oracle"] is not None else f"{'-':>6}"
        lines.append(
            f"{r['checkpoint']:<26} {r['best_algorithm']:<26} {best['accuracy']:>6.3f} {best['ari']:>6.3f} {best['nmi']:>6.3f} "
            f"{b.get('raw_kmeans', float('nan')):>7.3f} {b.get('oracle', float('nan')):>7.3f} {gap} {r['training_metrics'].get('total', float('nan')):>10.4f}"
        )
    for p in problems:
        lines.append(f"{p['checkpoint']:<26} !! {p['status']}")
    figure = None
    if good:
        top = max(good, key=lambda r: r["best_accuracy"])
        lines.append(f"best epoch: {top['epoch']:,} ({top['best_algorithm']}, accuracy {top['best_accuracy']:.3f})")
        figure = str(_compare_figure(run, good))
        lines.append(f"wrote {figure}")
    return {"data": {"checkpoints": good, "problems": problems, "figure": figure}, "text": "\n".join(lines)}


def checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, Any]:
    path = Path(path)
    loaded = ck.load(path, trust_pickle=trust_pickle)
    r = loaded.clustering
    lines = [f"{path} — epoch {loaded.epoch:,}", f"model: {json.dumps(loaded.model_config)}"]
    if "algorithms" in r and "baselines" in r:
        lines.append(f"{'algorithm':<28} {'accuracy':>8} {'ARI':>6} {'NMI':>6} {'silhouette':>10} | {'raw acc':>7}")
        for name, s in r["algorithms"].items():
            raw = r.get("raw_algorithms", {}).get(name, {}).get("accuracy", float("nan"))
            lines.append(f"{name:<28} {s['accuracy']:>8.3f} {s['ari']:>6.3f} {s['nmi']:>6.3f} {s['silhouette']:>10.3f} | {raw:>7.3f}")
        b = r["baselines"]
        lines.append("baselines: " + "  ".join(f"{k} {v:.3f}" for k, v in b.items()))
        q = r["representation_quality"]
        lines.append("representation quality: " + "  ".join(f"{k} {v:.3f}" for k, v in q.items()))
        lines.append(f"best: {r['best_algorithm']} {r['best_accuracy']:.3f}")
    elif "algorithms" in r:
        for name, s in r["algorithms"].items():
            lines.append(f"{name:<28} accuracy {s.get('accuracy', float('nan')):.3f}")
    figure = path / ck.figure_name(loaded.epoch)
    if figure.exists():
        lines.append(f"figure: {figure}")
    data = {"path": str(path), "epoch": loaded.epoch, "model_config": loaded.model_config, "clustering": r}
    return {"data": data, "text": "\n".join(lines)}


def _compare_figure(run: Path, good: list[dict[str, Any]]) -> Path:
    from choice2vec.figures import comparison_figure

    return comparison_figure(run / "training_progress_comparison.png", good)


def compare(run: str | os.PathLike) -> dict[str, Any]:
    run = Path(run)
    good, problems = _rows(run)
    if not good and not problems:
        raise UsageError(f"no checkpoints in {run}; give a training_checkpoints_* directory (`c2v analyze --list` shows them)")
    if not good:
        raise UsageError(f"{run} has no readable checkpoint with clustering results to compare")
    figure = _compare_figure(run, good)
    skipped = "".join(f"\nskipped {p['checkpoint']}: {p['status']}" for p in problems)
    return {"data": {"figure": str(figure), "checkpoints": len(good), "problems": problems}, "text": f"wrote {figure}{skipped}"}

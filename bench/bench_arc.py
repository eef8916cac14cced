"""arc-comm: what the issue asks to show, with the commands to reproduce each figure.

1. selection, communication bottleneck, vocab 25, length 2 (configs/arc/selection.yaml): held-out
   accuracy at 1, 3, 7, 15, 99 distractors, the shuffled-messages control, distinct messages and
   topographic similarity, wall time;
2. Gumbel-softmax against REINFORCE at equal budget (same config, seed and number of batches);
3. reconstruction with the autoencoder bottleneck (configs/arc/reconstruction.yaml): cell accuracy;
4. the web app: training batches/s under arc-serve (with a client polling /status every second
   and /examples every 5 s, as the dashboard does) against the same session headless, interleaved;
   /status latency while training (median, p99); POST /save_checkpoint time to the response and to
   the committed file.

Reproduce by hand:
    arc train --config configs/arc/selection.yaml            # val_acc = 3 distractors
    arc train --config configs/arc/selection_7.yaml          # the same training, val_acc at 7
    arc train --config configs/arc/selection.yaml --set communication_method=reinforce --set epochs=3
    arc train --config configs/arc/reconstruction.yaml
    arc-serve  # then open http://127.0.0.1:5002/
Pass section names to run some only: python bench/bench_arc.py selection reinforce reconstruction server
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs/arc"


def _config(name: str, **overrides):
    from arc_comm.config import ArcConfig
    from trainer_core.config import load_config

    return load_config(ArcConfig, CONFIGS / name, None, [f"{k}={v}" for k, v in overrides.items()])


def _train(config, directory: Path):
    from arc_comm.session import TrainingSession

    session = TrainingSession(config, directory)
    start = time.perf_counter()
    session.run()
    minutes = (time.perf_counter() - start) / 60
    session.close()
    return session, minutes


def selection() -> None:
    from arc_comm.language import language_report

    session, minutes = _train(_config("selection.yaml"), OUT / "arc_selection")
    r = language_report(session.model, session.val_grids, games=4000)
    curve = r["accuracy_vs_distractors"]
    figures = {
        **{f"acc_{d}": curve[d] for d in curve},
        "shuffled_3": r["shuffled_messages_3"],
        "chance_3": 0.25,
        "distinct_messages": r["distinct_messages"],
        "held_out_grids": r["held_out_grids"],
        "topographic_similarity": r["topographic_similarity"],
        "minutes": minutes,
    }
    (OUT / "arc_language.json").write_text(json.dumps(r, indent=2))
    met = curve["3"] >= 0.95 and curve["7"] >= 0.80 and abs(r["shuffled_messages_3"] - 0.25) <= 0.05 and minutes < 15
    report("arc_selection", figures, "acc >= 0.95 @3 and >= 0.80 @7 held out, shuffled = chance +- 0.05, < 15 min on 2 cores", met)


def reinforce() -> None:
    from arc_comm.games import evaluate_selection

    figures = {}
    for method in ("gumbel", "reinforce"):
        session, minutes = _train(_config("selection.yaml", communication_method=method, epochs=3), OUT / f"arc_{method}")
        figures[f"{method}_acc_3"] = evaluate_selection(session.model, session.val_grids, 4000, 3)["val_acc"]
        figures[f"{method}_minutes"] = minutes
    report(
        "arc_gumbel_vs_reinforce",
        figures,
        "Gumbel-softmax beats REINFORCE at 300 batches each",
        figures["gumbel_acc_3"] > figures["reinforce_acc_3"],
    )


def reconstruction() -> None:
    session, minutes = _train(_config("reconstruction.yaml"), OUT / "arc_reconstruction")
    metrics = session.evaluate()
    figures = {"cell_acc": metrics["val_acc"], "size_acc": metrics["size_acc"], "grid_acc": metrics["grid_acc"], "minutes": minutes}
    report("arc_reconstruction", figures, "cell accuracy reported (no target in the issue)", True)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def server() -> None:
    import logging
    import shutil

    from werkzeug.serving import make_server

    from arc_comm.server import create_app
    from arc_comm.session import TrainingSession

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines

    small = {"epochs": 1, "batches_per_epoch": 80, "val_grids": 500, "lr_schedule": "constant"}
    work = OUT / "arc_server"
    shutil.rmtree(work, ignore_errors=True)
    app = create_app(work / "checkpoints")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}"

    def headless() -> float:
        session = TrainingSession(_config("selection.yaml", **small), work / "headless")
        session.run()
        session.close()
        return small["batches_per_epoch"] / session.status()["elapsed"]

    def served(poll_latencies: list | None = None, saves: list | None = None) -> float:
        """Training under the app with a dashboard's load (status every second, examples every
        5 s) or, when measuring latency, status at 10 Hz. Rate from the run's own elapsed time."""
        config = json.loads(_config("selection.yaml", **small).model_dump_json())
        code, _ = _post(url + "/start_train", config)
        assert code == 200
        last_examples = 0.0
        while True:
            t = time.perf_counter()
            status = _get(url + "/status")
            if poll_latencies is not None:
                poll_latencies.append(time.perf_counter() - t)
            if saves is not None and status["batch"] >= 5 and len(saves) < 5:
                saves.append(_save(url, work / "checkpoints", f"bench_{len(saves)}"))
            if status["mode"] not in ("training", "idle"):
                break
            if time.perf_counter() - last_examples > 5:
                _get(url + "/examples")
                last_examples = time.perf_counter()
            time.sleep(0.1 if poll_latencies is not None else 1.0)
        return small["batches_per_epoch"] / status["elapsed"]

    rates = {"headless": [], "served": []}
    for _ in range(3):  # interleaved: the machine is shared
        rates["headless"].append(headless())
        rates["served"].append(served())
    h, s = max(rates["headless"]), max(rates["served"])
    lost = 1 - s / h
    report(
        "arc_server_throughput",
        {"headless_batches_s": h, "served_batches_s": s, "lost": lost},
        "< 5% throughput lost under the web app",
        lost < 0.05,
    )

    latencies, saves = [], []
    served(latencies, saves)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    report(
        "arc_status_latency",
        {"polls": len(ms), "median_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))]},
        "GET /status while training, polled at 10 Hz (reported)",
        True,
    )
    respond = [r for r, _ in saves]
    committed = [c for _, c in saves if c is not None]
    report(
        "arc_save_latency",
        {
            "saves": len(saves),
            "response_ms_median": 1000 * statistics.median(respond),
            "committed_s_median": statistics.median(committed),
            "committed_s_max": max(committed),
        },  # fmt: skip
        "POST /save_checkpoint answers at once; the file commits at the end of the batch in the background (reported)",
        len(committed) == len(saves),
    )
    httpd.shutdown()


def _save(url: str, directory: Path, name: str) -> tuple[float, float | None]:
    """(seconds to the response, seconds until the file and its manifest are committed)."""
    start = time.perf_counter()
    code, _ = _post(url + "/save_checkpoint", {"name": name})
    respond = time.perf_counter() - start
    if code != 200:
        return respond, None
    manifest = directory / f"{name}.pth.manifest.json"
    while not manifest.exists():
        if time.perf_counter() - start > 60:
            return respond, None
        time.sleep(0.005)
    return respond, time.perf_counter() - start


SECTIONS = {"selection": selection, "reinforce": reinforce, "reconstruction": reconstruction, "server": server}


def main() -> None:
    import torch

    torch.set_num_threads(2)
    for name in sys.argv[1:] or SECTIONS:
        SECTIONS[name]()


if __name__ == "__main__":
    main()

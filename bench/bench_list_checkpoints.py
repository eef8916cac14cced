"""`core list-checkpoints` over 10,000 checkpoints: time, and proof that no weights were read.

The tree: 100 runs x 100 engine checkpoints, each a directory with manifest.json, a 4 KB
model.safetensors and a trainer_state.pt. Baseline, measured in the same run: a bare os.walk
that stats every file of the same tree (what any listing must at least do).

Proof: the listing runs in a fresh process with an audit hook recording every file opened and
reports which modules were imported; no weight file may be opened and neither torch nor jax
imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, timed  # noqa: E402

from trainer_core.checkpoint import manifest as mf  # noqa: E402
from trainer_core.checkpoint.atomic import dumps_json  # noqa: E402

RUNS, PER_RUN = 100, 100
ROOT = Path(__file__).resolve().parents[1]


def build_tree(root: Path) -> None:
    weights, state = os.urandom(4096), os.urandom(1024)
    for r in range(RUNS):
        run = root / f"run_{r:03d}" / "checkpoints"
        run.mkdir(parents=True)
        for s in range(PER_RUN):
            ckpt = run / f"checkpoint_step_{s:06d}"
            ckpt.mkdir()
            (ckpt / "model.safetensors").write_bytes(weights)
            (ckpt / "trainer_state.pt").write_bytes(state)
            files = {"model.safetensors": {"size": 4096, "sha256": "0" * 64}, "trainer_state.pt": {"size": 1024, "sha256": "0" * 64}}
            manifest = mf.build_manifest(
                package="trainer-core",
                layout="core.example",
                layout_version=1,
                kind="training",
                name=ckpt.name,
                step=s,
                epoch=s // 10,
                metrics={"val_loss": 1.0 / (s + 1), "val_acc": s / PER_RUN},
                config_hash="c" * 64,
                files=files,
                extra={},
            )
            (ckpt / "manifest.json").write_bytes(dumps_json(manifest))


PROBE = textwrap.dedent(
    """
    import json, sys, time
    opened = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and isinstance(args[0], str) else None)
    start = time.perf_counter()
    from trainer_core.cli import build_cli
    try:
        build_cli().main(["list-checkpoints", sys.argv[1], "--json"], prog_name="core")
    except SystemExit as exit:
        code = exit.code
    elapsed = time.perf_counter() - start
    weights = [p for p in opened if p.endswith((".safetensors", ".pt"))]
    manifests = sum(p.endswith("manifest.json") for p in opened)
    heavy = [m for m in ("torch", "jax") if m in sys.modules]
    print(json.dumps({"code": code, "elapsed": elapsed, "weights_opened": len(weights), "manifests_opened": manifests, "heavy": heavy}), file=sys.stderr)
    """
)


def bare_walk(root: Path) -> int:
    count = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(dirpath, name))
            count += 1
    return count


def main() -> None:
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        root = Path(tmp)
        build_tree(root)
        bare_walk(root)  # warm the file-system cache for both sides
        walks, cli_runs, probe = [], [], None
        core = os.path.join(os.path.dirname(sys.executable), "core")
        for _ in range(3):
            walks.append(timed(lambda: bare_walk(root)))
            cli_runs.append(
                timed(lambda: subprocess.run([core, "list-checkpoints", str(root), "--json"], stdout=subprocess.DEVNULL, check=True))
            )
        done = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, check=True)
        probe = json.loads(done.stderr.strip().splitlines()[-1])
        rows = json.loads(done.stdout)
    walk, cli = min(walks), min(cli_runs)
    ok = probe["code"] == 0 and len(rows) == RUNS * PER_RUN and probe["weights_opened"] == 0 and not probe["heavy"] and cli < 1.0
    report(
        "list_checkpoints",
        {
            "checkpoints": len(rows),
            "cli_total_s": cli,
            "in_process_s": probe["elapsed"],
            "bare_os_walk_s": walk,
            "cli_vs_bare_walk": cli / walk,
            "weights_opened": probe["weights_opened"],
            "manifests_opened": probe["manifests_opened"],
            "torch_or_jax_imported": bool(probe["heavy"]),
        },
        "10,000 checkpoints listed in under 1 s (whole command), no weight file opened, no torch/jax",
        ok,
    )


if __name__ == "__main__":
    main()

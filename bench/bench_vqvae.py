"""spinlock-vqvae: quality on the generated 4k dataset with quick.json, training step time against
a reference built from vector-quantize-pytorch, encode-to-tokens throughput against the time
to merely read the same HDF5 rows, token quality and the ANO on tokens against the same model on
raw features (three seeds), the demo-model commands' wall time, and dataset generation with one
worker against every core. Baselines are measured in the same run.

    python bench/bench_vqvae.py                      # every section but generate50k
    python bench/bench_vqvae.py ano tokens generate  # some sections
    python bench/bench_vqvae.py generate50k          # the seed's production size (minutes)

Reproduce the quality figures by hand:
    spinlock generate-dataset --samples 4000 --output datasets/test_4k.h5
    spinlock train-vqvae --config configs/vqvae/quick.json
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, interleaved, report, timed  # noqa: E402

from spinlock_vqvae.config import VQVAEConfig  # noqa: E402
from spinlock_vqvae.dataset import FeatureDataset, generate  # noqa: E402
from spinlock_vqvae.encode import encode  # noqa: E402
from spinlock_vqvae.train import Prepared, _losses, train  # noqa: E402
from trainer_core.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "reconstruction_quality": (">", 0.90),
    "utilization": (">", 0.80),
    "orthogonality": ("<", 0.25),
    "topographic_correlation": (">", 0.85),
}


def quality(dataset: Path) -> dict:
    config = load_config(VQVAEConfig, ROOT / "configs/vqvae/quick.json", {"input": str(dataset), "output_dir": str(OUT / "vqvae_quick")})
    start = time.perf_counter()
    summary = train(config, progress=False)
    best = summary["best_metrics"]
    figures = {k: best[k] for k in TARGETS} | {"train_minutes": (time.perf_counter() - start) / 60, "epochs": summary["epoch"]}
    met = all((best[k] > v) if op == ">" else (best[k] < v) for k, (op, v) in TARGETS.items()) and figures["train_minutes"] < 15
    report(
        "vqvae_quality", figures, "quality > 0.90, utilisation > 0.80, orthogonality < 0.25, topographic > 0.85 in < 15 min on 2 cores", met
    )
    return config


class ReferenceQuantizer(nn.Module):
    """vector-quantize-pytorch's VectorQuantize behind our quantiser's interface."""

    def __init__(self, codes: int, dim: int, decay: float, commitment: float) -> None:
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.vq = VectorQuantize(
            dim=dim, codebook_size=codes, decay=decay, commitment_weight=commitment, kmeans_init=True, threshold_ema_dead_code=2
        )

    def forward(self, z):
        quantized, indices, loss = self.vq(z[:, None, :])
        return quantized[:, 0], indices[:, 0], loss.sum()

    def reset_dead_codes(self, z, generator=None):
        return 0


def step_time(config: VQVAEConfig) -> None:
    ours = Prepared(config)
    reference = Prepared(config)
    for coder in reference.model.coders:
        coder.levels = nn.ModuleList(ReferenceQuantizer(q.num_codes, q.dim, config.ema_decay, config.commitment_cost) for q in coder.levels)
    generator = torch.Generator().manual_seed(0)
    batch = torch.arange(config.batch_size)

    def steps(prep: Prepared) -> float:
        optimizer = torch.optim.AdamW(prep.model.parameters(), lr=config.learning_rate)

        def run():
            for _ in range(20):
                loss, _, _ = _losses(prep.model, [p[batch] for p in prep.train], config, False, generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        return timed(run) / 20

    steps(ours), steps(reference)  # warm up (k-means initialisation, allocator)
    mine, theirs = interleaved(lambda: steps(reference), lambda: steps(ours), rounds=5)
    report(
        "vqvae_step_time",
        {"ours_ms": theirs * 1e3, "vector_quantize_pytorch_ms": mine * 1e3, "ratio": theirs / mine},
        "training step no slower than the vector-quantize-pytorch reference (ratio <= 1)",
        theirs <= mine,
    )


def tiled_copy(source: Path, copies: int) -> Path:
    """A larger file with the generator's chunking and compression: ``copies`` times the rows of
    ``source`` (throughput is measured on enough rows that loading the model is negligible)."""
    import h5py

    target = OUT / f"{source.stem}_x{copies}.h5"
    if target.exists():
        return target
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        rows = src["features"][()]
        features = dst.create_dataset(
            "features",
            shape=(len(rows) * copies, rows.shape[1]),
            dtype="float32",
            chunks=src["features"].chunks,
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        for k in range(copies):
            features[k * len(rows) : (k + 1) * len(rows)] = rows
        src.copy("feature_names", dst)
    return target


def encode_speed(small: Path) -> None:
    """End to end on 100k rows, and the per-row (marginal) cost from the difference between 100k
    and 4k rows, which removes the fixed cost of loading and verifying the model."""
    model = OUT / "vqvae_quick" / "best_model.pt"
    large = tiled_copy(small, 25)

    def read_only(dataset: Path) -> float:
        with FeatureDataset(dataset, check_values=False) as data:
            return timed(lambda: [None for _ in data.batches(4096)])

    def encoding(dataset: Path) -> float:
        return timed(lambda: encode(dataset, model, OUT / "tokens.h5", progress=False, force=True))

    read, enc = interleaved(lambda: read_only(large), lambda: encoding(large), rounds=5)
    read_small, enc_small = interleaved(lambda: read_only(small), lambda: encoding(small), rounds=5)
    with FeatureDataset(large, check_values=False) as data, FeatureDataset(small, check_values=False) as few:
        rows, extra = len(data), len(data) - len(few)
    per_row_read, per_row_enc = (read - read_small) / extra, (enc - enc_small) / extra
    report(
        "vqvae_encode",
        {
            "rows": rows,
            "read_rows_per_s": rows / read,
            "encode_rows_per_s": rows / enc,
            "ratio_to_io_floor": enc / read,
            "fixed_start_s": enc_small - per_row_enc * len(few),
            "marginal_read_us_per_row": per_row_read * 1e6,
            "marginal_encode_us_per_row": per_row_enc * 1e6,
            "marginal_ratio": per_row_enc / per_row_read,
        },
        "encode-to-tokens within 2x of merely reading the rows",
        enc <= 2 * read,
    )


def ano(dataset: Path, runs: tuple[tuple[int, int], ...] = ((0, 0), (1, 0), (2, 0), (0, 7), (3, 11), (4, 3))) -> None:
    """Per run (s, d): quick.json trained with seed s on the 4k set generated with seed d, its tokens,
    then train-ano with seed s (its split and initialisation): the token model's mean R² against the
    raw-feature model's, and the tokens' compression ratio. Mean and worst over the runs."""
    from spinlock_vqvae.ano import train_ano
    from spinlock_vqvae.config import ANOConfig
    from spinlock_vqvae.token_quality import evaluate_tokens

    rows = []
    for seed, data_seed in runs:
        data = dataset if data_seed == 0 else OUT / f"test_4k_seed{data_seed}.h5"
        if not data.exists():
            generate(data, 4000, seed=data_seed, progress=False)
        run = OUT / f"ano_seed{seed}_data{data_seed}"
        shutil.rmtree(run, ignore_errors=True)
        config = load_config(VQVAEConfig, ROOT / "configs/vqvae/quick.json", {"input": str(data), "output_dir": str(run / "vqvae")}, [f"seed={seed}"])
        train(config, progress=False)
        tokens = run / "tokens.h5"
        encode(data, run / "vqvae" / "best_model.pt", tokens, progress=False)
        quality = evaluate_tokens(data, run / "vqvae" / "best_model.pt", tokens)["overall"]
        ano_config = load_config(ANOConfig, ROOT / "configs/vqvae/ano.yaml", {"tokens": str(tokens), "dataset": str(data), "output_dir": str(run / "ano")}, [f"seed={seed}"])
        results = train_ano(ano_config, progress=False)
        models = results["models"]
        rows.append({"seed": seed, "data_seed": data_seed, "ratio": results["token_to_raw_r2_ratio"], "tokens_r2": models["tokens"]["r2_mean"],
                     "raw_r2": models["raw_features"]["r2_mean"], "ridge_r2": models["ridge_raw_features"]["r2_mean"],
                     "compression": quality["compression_ratio"]})  # fmt: skip
        print(json.dumps({"ano_run": rows[-1], "r2_per_parameter": {k: models[k]["r2"] for k in ("tokens", "raw_features")}}))
    ratios = [r["ratio"] for r in rows]
    compression = [r["compression"] for r in rows]
    figures = {
        "ratio_mean": statistics.mean(ratios),
        "ratio_worst": min(ratios),
        "tokens_r2_mean": statistics.mean(r["tokens_r2"] for r in rows),
        "raw_model_r2_mean": statistics.mean(r["raw_r2"] for r in rows),
        "ridge_raw_r2_mean": statistics.mean(r["ridge_r2"] for r in rows),
        "compression_worst": min(compression),
        "runs": len(rows),
    }
    report("vqvae_ano", figures, "ANO on tokens >= 0.8x the R² of the same model on raw features, compression >= 20x (worst run of each)", min(ratios) >= 0.8 and min(compression) >= 20)


def demo_commands() -> None:
    """evaluate-tokens and visualize-codebooks on the demo's model (quick.json, 1k rows, 30 epochs),
    wall time of each command as a user runs it (process start included)."""
    import subprocess

    bin_dir = Path(sys.executable).parent
    demo = OUT / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    data = demo / "demo_1k.h5"
    generate(data, 1000, seed=0, progress=False)
    config = load_config(VQVAEConfig, ROOT / "configs/vqvae/quick.json", {"input": str(data), "output_dir": str(demo / "quick_1k"), "epochs": 30})
    train(config, progress=False)
    model = demo / "quick_1k" / "best_model.pt"
    timings = {}
    for name, args in (("evaluate_tokens_s", ["evaluate-tokens", "--dataset", data, "--vqvae-model", model]),
                       ("visualize_codebooks_s", ["visualize-codebooks", model, "--dataset", data])):  # fmt: skip
        start = time.perf_counter()
        subprocess.run([bin_dir / "spinlock", *map(str, args)], check=True, capture_output=True)
        timings[name] = time.perf_counter() - start
    report("vqvae_demo_commands", timings, "evaluate-tokens and visualize-codebooks (t-SNE) on the demo model in under a minute each", max(timings.values()) < 60)


def generation(samples: int = 1000, rounds: int = 5) -> None:
    """Three ways to roll out the same file, interleaved: one core (one process, one torch thread:
    the baseline), one process with a torch thread per core (the generator before it had workers),
    and the default, one worker process per core with one thread each. Median and spread of each."""
    from spinlock_vqvae.dataset import available_cores

    cores = available_cores()
    threads = torch.get_num_threads()

    def one_core() -> float:
        torch.set_num_threads(1)
        try:
            return timed(lambda: generate(OUT / "gen.h5", samples, seed=0, progress=False, workers=1))
        finally:
            torch.set_num_threads(threads)

    ways = {
        "one_core": one_core,
        "threads": lambda: timed(lambda: generate(OUT / "gen.h5", samples, seed=0, progress=False, workers=1)),
        "processes": lambda: timed(lambda: generate(OUT / "gen.h5", samples, seed=0, progress=False, workers=cores)),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            times[name].append(way())
            (OUT / "gen.h5").unlink()
    median = {name: statistics.median(t) for name, t in times.items()}
    figures = {"samples": samples, "cores": cores, **{f"{k}_s": v for k, v in median.items()},
               **{f"{k}_spread_s": max(t) - min(t) for k, t in times.items()},
               "processes_speedup_over_one_core": median["one_core"] / median["processes"],
               "processes_vs_threads": median["threads"] / median["processes"], "rounds": rounds}  # fmt: skip
    report("vqvae_generation", figures, f"every core used: {cores} processes faster than one core (median of {rounds} interleaved rounds)",
           median["processes"] < median["one_core"])  # fmt: skip


def generation_50k() -> None:
    """The seed's production size once, on every core, with the rows per second."""
    path = OUT / "gen_50k.h5"
    seconds = timed(lambda: generate(path, 50_000, seed=0, progress=False))
    path.unlink()
    report("vqvae_generation_50k", {"samples": 50_000, "seconds": seconds, "rows_per_s": 50_000 / seconds}, "report the time (no goal)", True)


SECTIONS = ("quality", "step", "encode", "tokens", "ano", "generate", "generate50k")


def main() -> None:
    chosen = sys.argv[1:] or [s for s in SECTIONS if s != "generate50k"]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    dataset = OUT / "test_4k.h5"
    if not dataset.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        generate(dataset, 4000, seed=0, progress=False)
    if "quality" in chosen or "step" in chosen:
        config = quality(dataset)
        if "step" in chosen:
            step_time(config)
    if "encode" in chosen:
        encode_speed(dataset)
    if "tokens" in chosen:
        demo_commands()
    if "ano" in chosen:
        ano(dataset)
    if "generate" in chosen:
        generation()
    if "generate50k" in chosen:
        generation_50k()
    print(
        json.dumps(
            {
                "reproduce": [
                    "spinlock generate-dataset --samples 4000 --output datasets/test_4k.h5",
                    "spinlock train-vqvae --config configs/vqvae/quick.json",
                    "spinlock encode-to-tokens --dataset datasets/test_4k.h5 --vqvae-model checkpoints/vqvae/quick_4k/best_model.pt --output tokens.h5",
                    "spinlock evaluate-tokens --dataset datasets/test_4k.h5 --vqvae-model checkpoints/vqvae/quick_4k/best_model.pt --tokens tokens.h5",
                    "spinlock train-ano --config configs/vqvae/ano.yaml --tokens tokens.h5 --dataset datasets/test_4k.h5 --output checkpoints/ano/quick_4k",
                ]
            }
        )
    )


if __name__ == "__main__":
    main()

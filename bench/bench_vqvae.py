"""spinlock-vqvae: quality on the generated 4k dataset with quick.json, training step time against
a reference built from vector-quantize-pytorch, and encode-to-tokens throughput against the time
to merely read the same HDF5 rows. Baselines are measured in the same run.

Reproduce the quality figures by hand:
    spinlock generate-dataset --samples 4000 --output datasets/test_4k.h5
    spinlock train-vqvae --config configs/vqvae/quick.json
"""

from __future__ import annotations

import json
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


def main() -> None:
    dataset = OUT / "test_4k.h5"
    if not dataset.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        generate(dataset, 4000, seed=0, progress=False)
    config = quality(dataset)
    step_time(config)
    encode_speed(dataset)
    print(
        json.dumps(
            {
                "reproduce": [
                    "spinlock generate-dataset --samples 4000 --output datasets/test_4k.h5",
                    "spinlock train-vqvae --config configs/vqvae/quick.json",
                ]
            }
        )
    )


if __name__ == "__main__":
    main()

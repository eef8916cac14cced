"""Spinlock datasets: generated deterministically, read in chunks, validated with clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spinlock_vqvae.cli import cli
from spinlock_vqvae.dataset import DatasetError, FeatureDataset, generate


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("data") / "small.h5", samples=96, seed=3, batch=40, progress=False, workers=1)


def test_generation_is_deterministic_and_documented(small, tmp_path):
    again = generate(tmp_path / "again.h5", samples=96, seed=3, batch=32, progress=False)  # other batching, same result
    with h5py.File(small) as a, h5py.File(again) as b:
        assert np.array_equal(a["features"][()], b["features"][()])
        assert a["features"].compression == "gzip" and a["features"].chunks is not None
        assert a["operator_parameters"].shape == (96, len(a["parameter_names"]))
        assert a.attrs["seed"] == 3 and a.attrs["samples"] == 96 and a.attrs["generator_version"] == 1
    with FeatureDataset(small) as data:
        assert len(data) == 96 and len(data.feature_names) >= 150
        families = {n.split(".")[0] for n in data.feature_names}
        assert families == {"spatial", "spectral", "gradient", "temporal", "cross_channel"}
        assert np.isfinite(data.read()).all() and data.read().std(0).min() > 0


def test_features_correlate_within_families(small):
    with FeatureDataset(small) as data:
        corr = np.abs(np.corrcoef(data.read().T))
        family = np.array([n.split(".")[0] for n in data.feature_names])
    for name in ("spectral", "gradient"):
        inside = family == name
        within = corr[np.ix_(inside, inside)][~np.eye(inside.sum(), dtype=bool)].mean()
        assert within > corr[np.ix_(inside, ~inside)].mean() + 0.1, name


def test_chunked_reads_and_streaming_stats(small):
    with FeatureDataset(small, chunk_rows=25) as data:
        full = data.read()
        assert np.array_equal(np.concatenate(list(data.batches(17))), full)
        idx = np.array([0, 24, 25, 60, 95])
        assert np.array_equal(data.take(idx), full[idx])
        mean, std = data.column_stats()
        assert np.allclose(mean, full.mean(0, dtype=np.float64), atol=1e-5) and np.allclose(
            std, full.std(0, ddof=1, dtype=np.float64), rtol=1e-4
        )


def _copy_with(small, path, **changes):
    with h5py.File(small) as src, h5py.File(path, "w") as dst:
        for key in src:
            if key in changes:
                if changes[key] is not None:
                    dst[key] = changes[key](src[key][()])
            else:
                src.copy(src[key], dst, key)
    return path


def test_nan_features_are_named_and_counted_and_can_be_dropped(small, tmp_path):
    def poison(x):
        x = x.copy()
        x[:5, 3] = np.nan
        x[7, 10] = np.inf
        return x

    bad = _copy_with(small, tmp_path / "nan.h5", features=poison)
    with FeatureDataset(small) as good:
        names = good.feature_names
    with pytest.raises(DatasetError) as err:
        FeatureDataset(bad)
    message = str(err.value)
    assert f"{names[3]} (5)" in message and f"{names[10]} (1)" in message and "--drop-invalid-features" in message
    with FeatureDataset(bad, drop_invalid=True) as data:
        assert len(data.feature_names) == len(names) - 2 and np.isfinite(data.read()).all()


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"features": None}, "has no /features dataset"),
        ({"features": lambda x: x[:, :, None]}, "must be 2-D"),
        ({"feature_names": lambda n: n[:-1]}, "names but /features has"),
        ({"features": lambda x: np.full(x.shape, b"x")}, "must hold numbers"),
    ],
)
def test_broken_files_get_one_clear_error(small, tmp_path, change, needle):
    with pytest.raises(DatasetError, match=needle):
        FeatureDataset(_copy_with(small, tmp_path / "broken.h5", **change))


def test_missing_or_non_hdf5_files(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        FeatureDataset(tmp_path / "nope.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        FeatureDataset(tmp_path / "junk.h5")


def test_cli_generate_never_overwrites(tmp_path):
    out = tmp_path / "d.h5"
    runner = CliRunner()
    assert runner.invoke(cli, ["generate-dataset", "--samples", "8", "--output", str(out), "--no-progress"]).exit_code == 0
    before = out.read_bytes()
    again = runner.invoke(cli, ["generate-dataset", "--samples", "8", "--output", str(out), "--seed", "1"])
    assert again.exit_code == 2 and again.output.startswith("error: ") and "--force" in again.output
    assert out.read_bytes() == before


def test_encode_never_writes_over_its_input(small, tmp_path):
    from pathlib import Path

    before = Path(small).read_bytes()
    result = CliRunner().invoke(cli, ["encode-to-tokens", "--dataset", str(small), "--vqvae-model", str(small), "--output", str(small), "--force"])
    assert result.exit_code == 2 and "is the --dataset file itself" in result.output
    assert Path(small).read_bytes() == before


def test_worker_processes_write_the_same_file_as_one_process(small, tmp_path):
    parallel = generate(tmp_path / "parallel.h5", samples=96, seed=3, batch=24, progress=False, workers=2)
    with h5py.File(small) as a, h5py.File(parallel) as b:
        assert np.array_equal(a["features"][()], b["features"][()])
        assert np.array_equal(a["operator_parameters"][()], b["operator_parameters"][()])

"""Summary features of a rollout, in families that correlate within themselves.

Families (per channel c and time window w in early / middle / late unless said):

* ``spatial``: mean, std, skewness, kurtosis, 10th and 90th percentile, range of the field;
* ``spectral``: log power in 6 radial frequency bands of the 2-D FFT;
* ``gradient``: mean gradient magnitude and Laplacian energy;
* ``temporal`` (per channel): autocorrelation of the spatial-mean series at lags 1, 2, 4, 8,
  log growth of the spatial std from the first to the last window, temporal std of the mean;
* ``cross_channel`` (per channel pair and window): correlation between the two channels' fields.
"""

from __future__ import annotations

import itertools

import torch

WINDOWS = ("early", "middle", "late")
SPATIAL = ("mean", "std", "skew", "kurtosis", "p10", "p90", "range")
BANDS = 6
LAGS = (1, 2, 4, 8)


def feature_names(channels: int) -> tuple[list[str], list[str]]:
    """(names, families) in the column order of :func:`extract`."""
    names, families = [], []
    for c in range(channels):
        for w in WINDOWS:
            for stat in SPATIAL:
                names.append(f"spatial.{stat}.c{c}.{w}")
                families.append("spatial")
            for band in range(BANDS):
                names.append(f"spectral.band{band}.c{c}.{w}")
                families.append("spectral")
            for stat in ("grad_mean", "laplacian_energy"):
                names.append(f"gradient.{stat}.c{c}.{w}")
                families.append("gradient")
        for lag in LAGS:
            names.append(f"temporal.autocorr_lag{lag}.c{c}")
            families.append("temporal")
        names += [f"temporal.log_growth.c{c}", f"temporal.mean_std.c{c}"]
        families += ["temporal", "temporal"]
    for a, b in itertools.combinations(range(channels), 2):
        for w in WINDOWS:
            names.append(f"cross_channel.corr.c{a}c{b}.{w}")
            families.append("cross_channel")
    return names, families


def _windows(traj: torch.Tensor) -> list[torch.Tensor]:
    t = traj.shape[1]
    third = t // 3
    return [traj[:, :third], traj[:, third : 2 * third], traj[:, 2 * third :]]


def _radial_bands(size: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    radius = (fx**2 + fy**2).sqrt() / 0.5**0.5  # 0 .. 1
    return torch.clamp((radius * BANDS).long(), max=BANDS - 1)


def extract(traj: torch.Tensor) -> torch.Tensor:
    """Features (B, F) of trajectories (B, T, C, H, W); column order of :func:`feature_names`."""
    b, t, c, h, w = traj.shape
    traj = traj.float()
    bands = _radial_bands(h)
    per_channel = []
    windows = _windows(traj)
    for ch in range(c):
        cols = []
        for win in windows:
            field = win[:, :, ch].reshape(b, -1)  # all pixels of all frames in the window
            mean, std = field.mean(1), field.std(1) + 1e-8
            z = (field - mean[:, None]) / std[:, None]
            q = torch.quantile(field, torch.tensor([0.1, 0.9], dtype=field.dtype), dim=1)
            cols += [
                mean,
                std.log(),
                (z**3).mean(1),
                (z**4).mean(1).log(),
                q[0],
                q[1],
                (field.max(1).values - field.min(1).values + 1e-8).log(),
            ]
            power = torch.fft.rfft2(win[:, :, ch]).abs().pow(2).mean(1)  # (B, H, W//2+1)
            for band in range(BANDS):
                cols.append((power[:, bands == band].mean(1) + 1e-12).log())
            frames = win[:, :, ch]
            gy = frames - frames.roll(1, dims=-2)
            gx = frames - frames.roll(1, dims=-1)
            lap = frames.roll(1, -1) + frames.roll(-1, -1) + frames.roll(1, -2) + frames.roll(-1, -2) - 4 * frames
            cols += [(gx**2 + gy**2).sqrt().mean((1, 2, 3)), (lap.pow(2).mean((1, 2, 3)) + 1e-12).log()]
        series = traj[:, :, ch].mean((2, 3))  # (B, T)
        centered = series - series.mean(1, keepdim=True)
        var = centered.pow(2).mean(1) + 1e-12
        for lag in LAGS:
            cols.append((centered[:, lag:] * centered[:, :-lag]).mean(1) / var)
        stds = [win[:, :, ch].std((1, 2, 3)) + 1e-8 for win in (windows[0], windows[2])]
        cols += [(stds[1] / stds[0]).log(), series.std(1)]
        per_channel.append(torch.stack(cols, dim=1))
    cross = []
    for a_ch, b_ch in itertools.combinations(range(c), 2):
        for win in windows:
            xa = win[:, :, a_ch].reshape(b, -1)
            xb = win[:, :, b_ch].reshape(b, -1)
            xa = xa - xa.mean(1, keepdim=True)
            xb = xb - xb.mean(1, keepdim=True)
            cross.append((xa * xb).mean(1) / (xa.std(1) * xb.std(1) + 1e-8))
    parts = per_channel + ([torch.stack(cross, dim=1)] if cross else [])
    return torch.cat(parts, dim=1).float()

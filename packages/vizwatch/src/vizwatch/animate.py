"""Animations of a run's frames with Python libraries only (Pillow for GIF, imageio for MP4)."""

from __future__ import annotations

from pathlib import Path

from trainer_core import UsageError
from vizwatch.runs import FRAME


def frames_of(run: str | Path) -> list[Path]:
    run = Path(run)
    if not run.is_dir():
        raise UsageError(f"no run folder at {run} (see `vizwatch runs`)")
    frames = sorted((p for p in run.iterdir() if FRAME.match(p.name)), key=lambda p: int(FRAME.match(p.name).group(1)))
    if not frames:
        raise UsageError(f"{run} has no epoch_XXX_accY.YYYY.png frames yet; train with --visualize-training first")
    return frames


def animate(run: str | Path, fmt: str = "gif", fps: float = 2.0, output: str | Path | None = None) -> Path:
    """Write the animation next to the frames; returns its path."""
    from PIL import Image

    if fps <= 0:
        raise UsageError("--fps must be greater than 0")
    frames = frames_of(run)
    out = Path(output) if output else Path(run) / ("training_animation.gif" if fmt == "gif" else "training_evolution.mp4")
    images = [Image.open(p).convert("RGB") for p in frames]
    if fmt == "gif":
        images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=False)
    elif fmt == "mp4":
        import imageio.v2 as imageio
        import numpy as np

        width, height = images[0].size
        even = (width - width % 2, height - height % 2)  # yuv420p needs even sizes
        with imageio.get_writer(out, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1) as writer:
            for image in images:
                writer.append_data(np.asarray(image.resize(even) if image.size != even else image))
    else:
        raise UsageError(f"unknown format {fmt!r}: use gif or mp4")
    return out

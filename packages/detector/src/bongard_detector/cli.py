"""The ``detector`` command."""

from __future__ import annotations

import click

from trainer_core.cli_support import TrainerGroup, echo_json


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bongard-detector", prog_name="detector")
def cli() -> None:
    """Bongard-LOGO shape detector: generate data (synthetic or from LOGO programs)."""


@cli.command("generate")
@click.option("--output", "out", type=click.Path(file_okay=False), required=True, help="Directory for images/ and annotations.json.")
@click.option("--count", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of images.")
@click.option("--image-size", type=click.IntRange(min=64), default=416, show_default=True)
@click.option("--max-shapes", type=click.IntRange(min=1), default=4, show_default=True, help="Shapes per image: 1 to this.")
@click.option("--programs", type=click.Path(dir_okay=False), default=None,
              help="A TSV of Bongard-LOGO action programs (e.g. human_designed_shapes.tsv); default: the synthetic families.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes (default: every core).")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def generate_command(out, count, image_size, max_shapes, programs, seed, workers, as_json):
    """Compose images of shapes with COCO-format annotations (deterministic from --seed)."""
    import time

    from bongard_detector.generate import GenerationConfig, generate
    from bongard_detector.programs import ProgramError
    from trainer_core.errors import UsageError

    config = GenerationConfig(count=count, image_size=image_size, max_shapes=max_shapes, seed=seed, programs=programs)
    start = time.perf_counter()
    try:
        coco = generate(config, out, workers=workers, progress=not as_json)
    except ProgramError as exc:
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - start
    summary = {"output": out, "images": len(coco["images"]), "annotations": len(coco["annotations"]), "seconds": round(seconds, 2),
               "images_per_second": round(len(coco["images"]) / seconds, 1)}  # fmt: skip
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {summary['images']} images, {summary['annotations']} boxes to {out} ({summary['images_per_second']} images/s)")


def main() -> None:
    cli.main(prog_name="detector")

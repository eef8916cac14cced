"""The ``detector`` command."""

from __future__ import annotations

import click

from trainer_core import FiniteFloatRange, TrainerGroup, echo_json


@click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bongard-detector", prog_name="detector")
def cli() -> None:
    """Bongard-LOGO shape detector (FCOS): generate data, train with stage checkpointing, evaluate.

    Stages are recorded in checkpoints/{data_generation,training,evaluation}.json and redone only
    when their settings change or their outputs are missing or corrupt."""


def _local_root(ctx, param, value):
    from trainer_core import UsageError, is_url

    if is_url(value):  # the images, COCO files and stage records are worked on in place
        raise UsageError(f"--root {value}: the detector's working directory (rendered images, COCO data, stage records) must be a "
                         "local folder; train locally, then copy the checkpoint folders of models/ to the bucket with any S3 tool: `core list-checkpoints`, "
                         "`core verify` and load_checkpoint read a copied folder there")  # fmt: skip
    return value


def _root_option(f):
    return click.option("--root", type=click.Path(file_okay=False), default=".", show_default=True, callback=_local_root,
                        help="Working directory holding checkpoints/, processed_data/, models/, results/, logs/ (a local folder).")(f)  # fmt: skip


def _pipeline_options(f):
    options = [
        click.option("--profile", type=click.Choice(["quick", "standard", "professional"]), default="standard", show_default=True,
                     help="quick: 160 px, 8,000 images seen once, sized for 2 CPU cores; standard: the seed's 416 px; professional: ResNet-50, 10k images."),
        click.option("--epochs", type=click.IntRange(min=1, max=10_000), default=None),
        click.option("--swa-epochs", type=click.IntRange(min=0, max=10_000), default=None,
                     help="Last epochs whose weights are averaged into the final model (0 = none; at most --epochs)."),
        click.option("--batch-size", type=click.IntRange(min=1, max=1024), default=None),
        click.option("--dataset-size", type=click.IntRange(min=1, max=1_000_000), default=None, help="Synthetic training images."),
        click.option("--image-size", type=click.IntRange(min=64, max=2048), default=None),
        click.option("--professional", is_flag=True, help="ResNet-50 backbone (the professional profile's model)."),
        click.option("--classifier-steps", type=click.IntRange(min=0, max=10_000_000), default=None,
                     help="Steps of the shape classifier trained before the detector (its backbone start, then its rescoring; 0 = none)."),
        click.option("--workers", type=click.IntRange(min=0, max=256), default=None, help="Data-loading and generation processes."),
        click.option("--epoch-checkpoints/--no-epoch-checkpoints", default=None,
                     help="A resumable checkpoint after every epoch (default) or only the final model (an interrupted run starts over)."),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
                     help="Seed of the data renders and the training (default 0)."),
        click.option("--split-seed", type=click.IntRange(0, 2**32 - 1), default=None,
                     help="Which human-designed shapes are held out: 0 (default) the shipped split, another value another "
                          "split of the same size per super class (report the real figure over several)."),
        click.option("--score-threshold", type=FiniteFloatRange(0, 1), default=None, help="Evaluation: minimum detection score."),
        click.option("--rescore/--no-rescore", default=None,
                     help="Evaluation: multiply detection scores by the shape classifier's (default: on when the model has one)."),
        click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (no progress bars)."),
        _root_option,
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def _pipeline(root, profile, as_json, **settings):
    """The pipeline of ``profile`` with the command line's settings (None = the profile's)."""
    from bongard_detector.pipeline import Pipeline, make_config
    from trainer_core import UsageError

    config = make_config(profile, **settings)
    if settings.get("swa_epochs") is not None and config.train.swa_epochs > config.train.epochs:
        raise UsageError(f"--swa-epochs {config.train.swa_epochs} is more than the {config.train.epochs} epochs trained: "
                         "give at most --epochs")  # fmt: skip
    return Pipeline(config, root, echo=(lambda line: None) if as_json else click.echo, progress=not as_json)


def _print_results(results: dict, as_json: bool) -> None:
    from bongard_detector.pipeline import format_targets

    if "rank" in results:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if as_json:
        echo_json(results)
        return
    click.echo(f"results: {results['results_file']}")
    shapes = (results.get("data") or {}).get("shapes")
    if shapes:
        split = results["data"].get("split_seed") or 0
        click.echo(f"human-designed shapes: {shapes['train']['total']} for training, {shapes['held_out']['total']} held out "
                   f"(the real set; split seed {split}{', the shipped split' if not split else ''})")
    for name, m in (results.get("evaluation") or {}).items():
        _print_metrics({"real": "real (held-out shapes)", "synthetic": "synthetic test split"}.get(name, name), m)
    click.echo(format_targets(results["targets"]))


@cli.command("train")
@_pipeline_options
@click.option("--force-data", is_flag=True, help="Regenerate the data (and so retrain and re-evaluate).")
@click.option("--force-train", is_flag=True, help="Retrain (and re-evaluate).")
@click.option("--force-eval", is_flag=True, help="Re-evaluate.")
@click.option("--force-all", is_flag=True, help="Redo every stage.")
def train_command(force_data, force_train, force_eval, force_all, **options):
    """Generate data, train and evaluate, each stage only when needed."""
    pipeline = _pipeline(**options)
    force = (
        {"data", "train", "eval"}
        if force_all
        else {n for n, f in (("data", force_data), ("train", force_train), ("eval", force_eval)) if f}
    )
    _print_results(pipeline.run(force), options["as_json"])


def _model_option(f):
    return click.option("--model", "model_path", type=click.Path(file_okay=False), default=None,
                        help="A trained model's checkpoint folder (default: models/<profile>/final under --root).")(f)  # fmt: skip


def _load_model(model_path, root, profile, rescore):
    """(detector, classifier or None, its TrainConfig) from a final checkpoint folder; one line when there is none."""
    from pathlib import Path

    from bongard_detector.training import load_classifier, load_trained
    from trainer_core import CheckpointError, UsageError

    path = Path(model_path) if model_path else Path(root) / "models" / profile / "final"
    if not (path / "manifest.json").is_file():
        raise UsageError(
            f"{path}: no trained model here; run `detector train --profile {profile} --root {root}` first, or give --model FOLDER"
        )
    try:
        model, config = load_trained(path)
        classifier = load_classifier(path) if rescore is not False else None
    except CheckpointError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return model, classifier, config


def _print_metrics(name: str, m: dict) -> None:
    click.echo(f"{name}: AP {m['AP']:.4f}  AP50 {m['AP50']:.4f}  AP75 {m['AP75']:.4f}  ({m['images']} images, {m['seconds']} s)")
    for key, label in (("per_class_ap50", "AP@0.5"), ("per_class", "AP@0.5:0.95")):
        if key in m:  # results written before per_class_ap50 existed have only per_class
            per_class = ", ".join(f"{k} {v:.3f}" for k, v in m[key].items() if v is not None)
            click.echo(f"   per class ({label}): {per_class}")
    confusion = m.get("confusions")
    if confusion:
        top = ", ".join(f"{t} as {p} {n}" for t, p, n in confusion["top"][:6]) or "none"
        click.echo(f"   shapes named right: {confusion['accuracy']:.3f}; most frequent confusions: {top}")
        worst = [(name, v) for name, v in confusion.get("shapes", {}).items() if v["right"] < v["count"]][:6]
        if worst:
            called = ", ".join(f"{name} ({v['class']}) {v['right']}/{v['count']} right, else {next(p for p in v['called'] if p != v['class'])}"
                               for name, v in worst)  # fmt: skip
            click.echo(f"   worst named figures: {called}")


@cli.command("evaluate")
@_pipeline_options
@click.option("--force", is_flag=True, help="Re-evaluate even if nothing changed.")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A folder with images/ and annotations.json (as `detector generate` writes; categories matched by name) to "
                   "evaluate on instead of the pipeline's sets; may be repeated.")  # fmt: skip
@_model_option
def evaluate_command(force, data_dirs, model_path, **options):
    """COCO metrics of the trained model on the synthetic test split and the held-out real shapes,
    or on any COCO folder given with --data."""
    from trainer_core import UsageError, single_process_only

    single_process_only("detector evaluate", "evaluation is one pass over the images; `detector train` is what torchrun spreads")
    if data_dirs:
        from bongard_detector.predict import InputError, evaluate_folder

        model, classifier, config = _load_model(model_path, options["root"], options["profile"], options["rescore"])
        if options["score_threshold"] is not None:
            model.score_thresh = options["score_threshold"]
        results = {}
        for data in data_dirs:
            try:
                results[data] = evaluate_folder(model, data, config.image_size, classifier=classifier, crop=config.classifier_crop,
                                                progress=not options["as_json"])  # fmt: skip
            except InputError as exc:
                raise UsageError(str(exc)) from None
        if options["as_json"]:
            echo_json(results)
        else:
            for name, m in results.items():
                _print_metrics(name, m)
        return
    if model_path:
        raise UsageError("--model goes with --data (the pipeline's own sets are evaluated with its own model)")
    pipeline = _pipeline(**options)
    check = pipeline.cache.check("training", pipeline.training_hash(), [pipeline._model_loads])
    if not check.fresh:
        raise UsageError(f"no trained model for these settings ({check.reason}); run `detector train` with the same options first")
    record, _ = pipeline.evaluate_model(force=force)
    if options["as_json"]:
        echo_json(record["metrics"])
        return
    for name, m in record["metrics"].items():
        _print_metrics({"real": "real (held-out human-designed shapes)"}.get(name, name), m)


@cli.command("predict")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--output", "out", type=click.Path(file_okay=False), required=True,
              help="Folder for one annotated PNG per image and predictions.json.")  # fmt: skip
@click.option(
    "--score-threshold", type=FiniteFloatRange(0, 1), default=0.3, show_default=True, help="Keep detections scoring at least this."
)
@click.option("--batch-size", type=click.IntRange(min=1, max=1024), default=8, show_default=True)
@click.option("--profile", type=click.Choice(["quick", "standard", "professional"]), default="standard", show_default=True,
              help="Whose model: models/<profile>/final under --root (unless --model).")  # fmt: skip
@click.option(
    "--rescore/--no-rescore", default=None, help="Multiply scores by the shape classifier's (default: on when the model has one)."
)
@_model_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON (no progress bar).")
def predict_command(inputs, out, score_threshold, batch_size, profile, rescore, model_path, root, as_json):
    """Detect shapes on PNG/JPEG images (or folders of them) of any size, grey or colour: each image
    is padded to a square, resized as in training and its boxes mapped back. Writes OUTPUT/<name>.png
    with the boxes, class names and scores drawn, and OUTPUT/predictions.json (COCO images and results)."""
    from bongard_detector.predict import InputError, image_paths, predict_to_folder
    from trainer_core import UsageError

    try:
        paths = image_paths(list(inputs))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    model, classifier, config = _load_model(model_path, root, profile, rescore)
    try:
        summary = predict_to_folder(paths, model, out, image_size=config.image_size, classifier=classifier, crop=config.classifier_crop,
                                    score_threshold=score_threshold, batch_size=batch_size, progress=not as_json)  # fmt: skip
    except InputError as exc:
        raise UsageError(str(exc)) from None
    results, images = summary["annotations"], summary["images"]
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{len(results)} detections on {len(images)} images; annotated PNGs and predictions.json in {out}")


@cli.command("validate")
@_pipeline_options
def validate_command(**options):
    """The whole pipeline, then the seed's target table with the status of each target."""
    pipeline = _pipeline(**options)
    results = pipeline.run()
    _print_results(results, options["as_json"])


@cli.command("status")
@_root_option
@click.option("--json", "as_json", is_flag=True)
def status_command(root, as_json):
    """Which stages are done (from checkpoints/*.json and their outputs)."""
    from bongard_detector.pipeline import Pipeline, make_config

    rows = Pipeline(make_config("standard"), root, echo=lambda line: None).status()
    if as_json:
        echo_json([{"stage": s, "ok": ok, "detail": d} for s, ok, d in rows])
        return
    names = {"data_generation": "Data Generation", "training": "Training", "evaluation": "Evaluation"}
    click.echo("🔍 Checkpoint Status:")
    for stage, ok, detail in rows:
        click.echo(f"   {names[stage]}: {'✅' if ok else '❌'} {detail}")


@cli.command("reset")
@click.argument("stage", type=click.Choice(["data", "train", "eval", "all"]))
@_root_option
def reset_command(stage, root):
    """Forget a stage (its outputs stay on disk; the next `detector train` redoes it)."""
    from bongard_detector.pipeline import SHORT
    from trainer_core import StageCache

    cache = StageCache(f"{root}/checkpoints", package="bongard-detector")
    done = cache.reset(None if stage == "all" else SHORT[stage])
    click.echo(f"reset: {', '.join(done) if done else 'nothing to reset'}")


@cli.command("generate")
@click.option("--output", "out", type=click.Path(file_okay=False), required=True, help="Directory for images/ and annotations.json.")
@click.option("--count", type=click.IntRange(min=1, max=1_000_000), default=1000, show_default=True, help="Number of images.")
@click.option("--image-size", type=click.IntRange(min=64, max=2048), default=416, show_default=True)
@click.option("--max-shapes", type=click.IntRange(min=1, max=64), default=4, show_default=True, help="Shapes per image: 1 to this.")
@click.option("--programs", type=click.Path(dir_okay=False), default=None,
              help="A TSV of Bongard-LOGO action programs (e.g. human_designed_shapes.tsv); default: the synthetic families.")  # fmt: skip
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1, max=256), default=None, help="Processes (default: every core).")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def generate_command(out, count, image_size, max_shapes, programs, seed, workers, as_json):
    """Compose images of shapes with COCO-format annotations (deterministic from --seed)."""
    import time

    from bongard_detector.generate import GenerationConfig, generate
    from bongard_detector.programs import ProgramError
    from trainer_core import UsageError

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


# the seed's train_system1_checkpointed.py --status / --reset STAGE / --professional --force-all ...
cli.legacy_forms = {"--status": "status", "--reset": "reset"}
cli.legacy_default = "train"


def main() -> None:
    cli.main(prog_name="detector")

"""bongard-detector: generation rate (serial against parallel, same run), training images/s (and
the shape classifier's crops/s), evaluation time (rescored by the classifier), and the stage
cache's promise: `detector train` run twice with nothing changed does no work the second time
(timed, and asserted from the stage files), and `detector predict` images/s against the model's
bare forward at the same batch.

Reproduce by hand:
    detector generate --output data/gen --count 400 --workers 1
    detector generate --output data/gen --count 400            # every core
    detector train --profile quick --root runs/quick           # then once more: nothing is redone
    detector predict data/gen/images --output data/pred --root runs/quick --profile quick
Pass section names to run some only: python bench/bench_detector.py generation pipeline predict
(BENCH_DETECTOR_MODEL=models/quick/final times `predict` with that model instead of a small one.)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OUT, report  # noqa: E402


def generation() -> None:
    from bongard_detector.generate import GenerationConfig, generate

    config = GenerationConfig(count=400, image_size=416, seed=5)
    workers = os.cpu_count() or 1
    rates = {}
    for name, n in (("serial", 1), ("parallel", workers)):
        out = OUT / f"det_gen_{name}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        generate(config, out, workers=n, progress=False)
        rates[name] = config.count / (time.perf_counter() - start)
    same = (OUT / "det_gen_serial/annotations.json").read_bytes() == (OUT / "det_gen_parallel/annotations.json").read_bytes()
    report(
        "detector_generation",
        {
            "serial_images_s": rates["serial"],
            "parallel_images_s": rates["parallel"],
            "workers": workers,
            "speedup": rates["parallel"] / rates["serial"],
            "identical": same,
        },  # fmt: skip
        "parallel faster than serial on this machine's cores, identical output",
        same and rates["parallel"] > rates["serial"],
    )


def pipeline() -> None:
    from bongard_detector.pipeline import Pipeline, make_config

    root = OUT / "det_pipeline"
    shutil.rmtree(root, ignore_errors=True)
    config = make_config("quick", dataset_size=200, test_size=50, real_size=50, epochs=1, classifier_steps=100)
    start = time.perf_counter()
    first = Pipeline(config, root, echo=lambda line: None, progress=False).run()
    first_s = time.perf_counter() - start
    stamps = {p.name: json.loads(p.read_text())["timestamp"] for p in (root / "checkpoints").glob("*.json")}
    start = time.perf_counter()
    second = Pipeline(config, root, echo=lambda line: None, progress=False).run()
    second_s = time.perf_counter() - start
    unchanged = stamps == {p.name: json.loads(p.read_text())["timestamp"] for p in (root / "checkpoints").glob("*.json")}
    no_work = not any(second["work_done"].values()) and unchanged
    training, evaluation = first["training"], first["evaluation"]
    report(
        "detector_pipeline",
        {
            "first_run_s": first_s,
            "second_run_s": second_s,
            "ratio": second_s / first_s,
            "second_run_did_work": not no_work,
            "train_images_s": training["images_per_second"],
            "classifier_crops_s": training["classifier"]["steps"] * config.train.classifier_batch_size / training["classifier"]["seconds"],
            "eval_synthetic_s": evaluation["synthetic"]["seconds"],
            "eval_real_s": evaluation["real"]["seconds"],
        },  # fmt: skip
        "the second `detector train` with nothing changed does no work (stage files untouched)",
        no_work,
    )


def predict() -> None:
    """`detector predict` (read PNGs, letterbox, forward, rescoring by the classifier, boxes mapped
    back, drawn and written with the JSON) against the model's bare forward on tensors already in
    memory (the detector, then its classifier's rescoring: the model's own compute), same batch of
    8; trials interleaved, median with min..max."""
    import statistics

    import torch

    from bongard_detector.generate import GenerationConfig, generate
    from bongard_detector.predict import letterbox, open_image, predict_to_folder
    from bongard_detector.shape_classifier import rescore
    from bongard_detector.training import load_classifier, load_trained

    model_dir = Path(os.environ.get("BENCH_DETECTOR_MODEL", OUT / "det_pipeline/models/quick/final"))
    if not (model_dir / "manifest.json").is_file():
        pipeline()  # trains the small quick model this section uses
    model, config = load_trained(model_dir)
    classifier = load_classifier(model_dir)
    images_dir = OUT / "det_predict_in"
    shutil.rmtree(images_dir, ignore_errors=True)
    generate(
        GenerationConfig(count=64, image_size=config.image_size, seed=11, min_size=0.3, max_size=0.55),
        images_dir,
        workers=1,
        progress=False,
    )
    paths = sorted((images_dir / "images").glob("*.png"))
    tensors = torch.stack([letterbox(open_image(p), config.image_size)[0] for p in paths])
    batch, trials = 8, int(os.environ.get("BENCH_TRIALS", "5"))

    @torch.no_grad()
    def bare() -> float:
        start = time.perf_counter()
        for i in range(0, len(tensors), batch):
            outputs = model(list(tensors[i : i + batch]))
            if classifier is not None:
                rescore(classifier, tensors[i : i + batch], outputs, config.classifier_crop)
        return time.perf_counter() - start

    def full() -> float:
        start = time.perf_counter()
        predict_to_folder(paths, model, OUT / "det_predict_out", image_size=config.image_size, classifier=classifier,
                          crop=config.classifier_crop, score_threshold=0.3, batch_size=batch)  # fmt: skip
        return time.perf_counter() - start

    model.score_thresh = 0.05  # what the evaluation and predict use at the bottom
    bare(), full()  # warm-up
    bare_s, full_s = [], []
    for _ in range(trials):
        bare_s.append(bare())
        full_s.append(full())
    ratios = sorted(f / b for f, b in zip(full_s, bare_s, strict=True))
    ratio = statistics.median(ratios)
    report(
        "detector_predict",
        {"images": len(paths), "batch": batch, "predict_images_s": len(paths) / statistics.median(full_s),
         "bare_forward_images_s": len(paths) / statistics.median(bare_s), "ratio": ratio,
         "spread": f"{ratios[0]:.2f}..{ratios[-1]:.2f}", "trials": trials, "rescored": classifier is not None},
        "`detector predict` within 1.2x of the model's bare forward at the same batch", ratio <= 1.2,
    )  # fmt: skip


SECTIONS = {"generation": generation, "pipeline": pipeline, "predict": predict}


def main() -> None:
    for name in sys.argv[1:] or SECTIONS:
        SECTIONS[name]()


if __name__ == "__main__":
    main()

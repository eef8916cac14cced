"""bongard-detector: generation rate (serial against parallel, same run), training images/s (and
the shape classifier's crops/s), evaluation time (rescored by the classifier), and the stage
cache's promise: `detector train` run twice with nothing changed does no work the second time
(timed, and asserted from the stage files).

Reproduce by hand:
    detector generate --output data/gen --count 400 --workers 1
    detector generate --output data/gen --count 400            # every core
    detector train --profile quick --root runs/quick           # then once more: nothing is redone
Pass section names to run some only: python bench/bench_detector.py generation pipeline
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


SECTIONS = {"generation": generation, "pipeline": pipeline}


def main() -> None:
    for name in sys.argv[1:] or SECTIONS:
        SECTIONS[name]()


if __name__ == "__main__":
    main()

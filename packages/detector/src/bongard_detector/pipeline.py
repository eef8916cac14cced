"""The three-stage pipeline with stage checkpointing (the seed's train_system1_checkpointed.py).

Stages, each recorded in ``checkpoints/<stage>.json`` through trainer-core's stage cache
(timestamp, config hash, metrics, the outputs it references):

* ``data_generation``: the human-designed shapes split by shape (:mod:`bongard_detector.shapes`,
  ``processed_data/shapes/{train,held_out}_shapes.tsv``); the training and validation splits (the
  synthetic families mixed with perturbed renders of the train shapes), the synthetic test split
  (families only) and the real set (the held-out shapes only, never seen in training); validated by
  each ``annotations.json``'s annotation count and the images;
* ``training``: the model in ``models/<profile>/final``; validated by its manifest and by loading it.
  An interrupted training (killed, stopped) resumes from its newest verified checkpoint when the
  same command runs again; a model directory of another config or data set is set aside, never deleted;
* ``evaluation``: COCO metrics of that model on the synthetic test split and on the real set;
  validated by the evaluated checkpoint still being there (and the results file).

A stage is redone when its config hash changes (each hash includes the previous stage's), when an
output is missing or corrupt, when it was reset or forced; and only then. A status file that cannot
be read is reported, reset and redone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bongard_detector.training import TrainConfig

STAGES = ("data_generation", "training", "evaluation")
SHORT = {"data": "data_generation", "train": "training", "eval": "evaluation"}
DATA_VERSION = 6  # 5: annotations record lines, arcs and vertices; 6: and the program's name (shape); bump when the generator's output changes for the same settings

TARGETS = (  # the seed's table: (dataset, metric, target)
    ("synthetic", "AP", 0.85),
    ("synthetic", "AP50", 0.95),
    ("real", "AP50", 0.70),
)
QUICK_TARGETS = (("synthetic", "AP50", 0.95), ("real", "AP50", 0.80))


@dataclass(frozen=True)
class PipelineConfig:
    profile: str = "standard"  # quick | standard | professional
    dataset_size: int = 2000
    test_size: int = 300
    real_size: int = 300
    val_size: int = 100  # validation images (same mix as training, another seed): AP after every epoch
    program_share: float = 0.5  # share of training shapes drawn from the train human-designed shapes (the rest: families)
    perturb: float = 0.15  # program-level jitter of those shapes (shapes.perturb)
    image_size: int = 416
    max_shapes: int = 4
    min_size: float = 0.15  # shape size (larger side) as a fraction of the image
    max_size: float = 0.45
    seed: int = 0
    split_seed: int = 0  # which human-designed shapes are held out (shapes.shape_split; 0 = the shipped split)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_batch_size: int = 8
    score_threshold: float = 0.05
    rescore: bool = True  # multiply detection scores by the shape classifier's (when the model has one)

    def data_settings(self) -> dict[str, Any]:
        from bongard_detector.shapes import HELD_OUT_FRACTION

        keys = ("dataset_size", "test_size", "real_size", "val_size", "program_share", "perturb", "image_size", "max_shapes",
                "min_size", "max_size", "seed")  # fmt: skip
        settings = {"version": DATA_VERSION, "held_out_fraction": HELD_OUT_FRACTION, **{k: getattr(self, k) for k in keys}}
        if self.split_seed:  # only when not the shipped split, so that existing roots keep their data and models
            settings["split_seed"] = self.split_seed
        return settings


PROFILES = {
    "quick": PipelineConfig(
        profile="quick", dataset_size=8000, test_size=300, real_size=300, image_size=160, max_shapes=4, min_size=0.3, max_size=0.55,
        train=TrainConfig(epochs=1, batch_size=8, swa_epochs=1, image_size=160, fpn_channels=64, classifier_steps=2400, frozen_stages=2),
    ),
    "standard": PipelineConfig(
        profile="standard", train=TrainConfig(epochs=25, batch_size=8, swa_epochs=3, classifier_steps=2000, frozen_stages=2),
    ),
    "professional": PipelineConfig(
        profile="professional", dataset_size=10_000, test_size=1000, real_size=500,
        train=TrainConfig(epochs=50, batch_size=12, swa_epochs=5, professional=True, fpn_channels=256, head_convs=4,
                          classifier_steps=4000, classifier_crop=96, frozen_stages=2),
    ),
}  # fmt: skip


def make_config(profile: str = "standard", **overrides: Any) -> PipelineConfig:
    """A profile with the command line's overrides (None = keep); image size and professional
    reach the training config too."""
    base = PROFILES[profile]
    train_keys = {"epochs", "swa_epochs", "batch_size", "workers", "precision", "learning_rate", "classifier_steps", "epoch_checkpoints"}
    top = {k: v for k, v in overrides.items() if v is not None and k not in train_keys and k != "professional"}
    train = {k: v for k, v in overrides.items() if v is not None and k in train_keys}
    if overrides.get("professional"):
        train.update(professional=True)
    if profile == "quick" and "classifier_steps" not in train and not _fast_precision(train.get("precision", base.train.precision)):
        train["classifier_steps"] = QUICK_FP32_CLASSIFIER_STEPS
    config = replace(base, **top)
    return replace(config, train=replace(config.train, image_size=config.image_size, seed=config.seed, **train))


# The quick profile's classifier takes 2,400 steps where autocast runs at bfloat16 natively (a CUDA GPU, a CPU
# with AVX-512 BF16 or AMX: 0.26 s a step on 2 cores); in float32 (0.40-0.44 s a step) 2,400 steps would take the
# run to about 25 minutes, so there it takes 1,600, as the profile did before (held-out AP@0.5 0.670 against 0.695,
# both measured with 4,000 images seen twice).
QUICK_FP32_CLASSIFIER_STEPS = 1600


def _fast_precision(precision: str) -> bool:
    """Whether ``precision`` resolves to a low precision on the device a run here would train on."""
    import torch

    from bongard_detector.training import resolved_precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return resolved_precision(device, precision) != "fp32"


def _hash(data: Any) -> str:
    from trainer_core import config_hash

    return config_hash(data)


class Pipeline:
    def __init__(self, config: PipelineConfig, root: str | Path = ".", echo=print, progress: bool = True):
        from trainer_core import StageCache

        # absolute: stage records hold paths relative to it, checked against it (a relative --root used to count twice)
        self.config, self.root, self.echo, self.progress = config, Path(root).absolute(), echo, progress
        self.cache = StageCache(self.root / "checkpoints", package="bongard-detector", base=self.root)
        self._told: set[str] = set()  # what rank 0 has told the other ranks (under torchrun)
        self.data_dir = self.root / "processed_data" / f"{config.profile}_synthetic"
        self.real_dir = self.root / "processed_data" / "real_bongard"
        self.model_dir = self.root / "models" / config.profile
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.log = logging.getLogger(f"bongard_detector.{id(self)}")
        self.log.setLevel(logging.INFO)
        handler = logging.FileHandler(
            self.root / "logs" / ("professional_training.log" if config.profile == "professional" else "training.log")
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)

    # hashes: each stage's includes the stage before it
    def data_hash(self) -> str:
        return _hash(self.config.data_settings())

    def _train_settings(self, *leave_out: str) -> dict:
        from bongard_detector.training import NOT_IN_MODEL

        return {k: v for k, v in asdict(self.config.train).items() if k not in NOT_IN_MODEL + leave_out}

    def training_hash(self) -> str:
        return _hash({"data": self.data_hash(), "train": self._train_settings()})

    def resumable_hash(self) -> str:
        """What a model directory must share with this run to be resumed: the data and every
        training setting but the number of epochs (a larger --epochs trains the same run longer)."""
        return _hash({"data": self.data_hash(), "train": self._train_settings("epochs")})

    def evaluation_hash(self) -> str:
        c = self.config
        return _hash({"training": self.training_hash(), "batch": c.eval_batch_size, "score": c.score_threshold, "rescore": c.rescore})

    def say(self, line: str) -> None:
        self.log.info(line)
        self.echo(line)

    def _unreadable(self, stage: str) -> None:
        record = self.cache.record(stage)
        if record is not None and (record.get("corrupt") or record.get("format") != "trainer-core/stage"):
            self.say(f"⚠️  {self.cache.path(stage)} is unreadable: reset; the {stage} stage runs again")
            self.cache.reset(stage)

    def run_stage(self, stage: str, config_hash: str, fn, force: bool | str, validators=()) -> tuple[dict, bool]:
        """Run ``fn`` unless the stage is fresh; ``force`` is True or the reason it must rerun."""
        self._unreadable(stage)
        check = self.cache.check(stage, config_hash, validators)
        if check.fresh and not force:
            self.say(f"✅ {stage}: up to date ({check.record.get('timestamp')}), skipped")
            return check.record, False
        self.say(f"▶ {stage}: {(force if isinstance(force, str) else 'forced') if force else check.reason}")
        record, _ = self.cache.run(stage, config_hash, fn, force=True, validators=validators)
        self.say(f"✅ {stage}: done in {record.get('duration_s')} s")
        return record, True

    # --- stages ---------------------------------------------------------------------------------
    def generate_data(self, force: bool | str = False) -> tuple[dict, bool]:
        from bongard_detector.generate import GenerationConfig, generate
        from bongard_detector.programs import human_designed_shapes, read_programs, write_programs
        from bongard_detector.shapes import shape_split
        from trainer_core import dir_output, file_output, json_count_output

        c = self.config
        shapes = dict(max_shapes=c.max_shapes, min_size=c.min_size, max_size=c.max_size)
        shape_dir = self.root / "processed_data" / "shapes"
        if c.split_seed:  # another split beside the shipped one: its own files, so neither stage's outputs move
            shape_dir = shape_dir / f"split_{c.split_seed}"
        train_shapes, held_out_shapes = shape_dir / "train_shapes.tsv", shape_dir / "held_out_shapes.tsv"
        mixed = dict(programs=str(train_shapes), program_share=c.program_share, perturb=c.perturb, **shapes)
        splits = {
            "train": (self.data_dir / "train", GenerationConfig(c.dataset_size, c.image_size, seed=c.seed, **mixed)),
            "val": (self.data_dir / "val", GenerationConfig(c.val_size, c.image_size, seed=c.seed + 3_000_017, **mixed)),
            "test": (self.data_dir / "test", GenerationConfig(c.test_size, c.image_size, seed=c.seed + 1_000_003, **shapes)),
            "real": (self.real_dir / f"{c.image_size}px_{c.real_size}_{self.data_hash()[:8]}", GenerationConfig(
                c.real_size, c.image_size, seed=c.seed + 2_000_003, programs=str(held_out_shapes), **shapes)),
        }  # fmt: skip

        def work():
            import shutil

            split = shape_split(read_programs(human_designed_shapes()), seed=c.split_seed)
            shape_dir.mkdir(parents=True, exist_ok=True)
            write_programs(list(split.train), train_shapes)
            write_programs(list(split.held_out), held_out_shapes)
            metrics = {"shapes": split.counts(), "split_seed": c.split_seed}
            outputs = [self._relative(file_output(p)) for p in (train_shapes, held_out_shapes)]
            for name, (out, gen) in splits.items():
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                coco = generate(gen, out, workers=self.config.train.workers, progress=self.progress)
                metrics[name] = {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
                                 "images_per_second": round(len(coco["images"]) / (time.perf_counter() - start), 1)}  # fmt: skip
                outputs += [json_count_output(out / "annotations.json", "annotations"), dir_output(out / "images", "*.png")]
            return metrics, [self._relative(o) for o in outputs]

        record, ran = self.run_stage("data_generation", self.data_hash(), work, force)
        return {**record, "dirs": {k: str(v[0]) for k, v in splits.items()}}, ran

    def train_model(self, force: bool | str = False, data: dict | None = None) -> tuple[dict, bool]:
        from bongard_detector.training import train
        from trainer_core import checkpoint_output

        data = data or self.generate_data()[0]

        def work():
            self._claim_model_dir(force)
            self._tell_ranks("train", "run")
            summary = train(self.config.train, data["dirs"]["train"], self.model_dir, echo=self.say, progress=self.progress,
                            val_dir=data["dirs"].get("val"))  # fmt: skip
            return ({k: summary[k] for k in ("epochs", "seconds", "images_per_second", "history", "classifier", "resources")},
                    [self._relative(checkpoint_output(self.model_dir / "final"))])  # fmt: skip

        try:
            result = self.run_stage("training", self.training_hash(), work, force, validators=[self._model_loads])
        except BaseException as exc:
            self._tell_ranks("train", f"failed: {type(exc).__name__}: {exc}")
            raise
        self._tell_ranks("train", "skip")  # up to date: nothing for the other ranks to do
        return result

    # --- under torchrun: rank 0 runs the stages, the other ranks join the training ------------
    def _tell_ranks(self, what: str, message: str) -> None:
        """Rank 0 tells the other ranks (once per topic) what comes next."""
        from trainer_core import current_world

        world = current_world()
        if world.multi and world.main and what not in self._told:
            self._told.add(what)
            world.publish(f"bongard_detector/{what}", message)

    def _follow(self, world) -> dict:
        """A rank other than 0: wait for rank 0's data, then train with it when rank 0 trains."""
        import json as _json

        from bongard_detector.training import train

        patience = max(world.timeout_s, 24 * 3600)  # the stages before take as long as they take
        dirs = world.receive("bongard_detector/data", "rank 0's training data", timeout_s=patience)
        if dirs.startswith("failed"):
            raise RuntimeError(f"rank 0's data generation {dirs}")
        decision = world.receive("bongard_detector/train", "rank 0's training decision", timeout_s=patience)
        if decision.startswith("failed"):
            raise RuntimeError(f"rank 0's training stage {decision}")
        if decision == "run":
            train(self.config.train, _json.loads(dirs)["train"], self.model_dir, echo=lambda line: None, progress=False)
        return {"rank": world.rank, "trained": decision == "run"}

    def evaluate_model(self, force: bool | str = False, data: dict | None = None) -> tuple[dict, bool]:
        from bongard_detector.training import evaluate, load_classifier, load_trained
        from trainer_core import checkpoint_output

        if data is None:
            data = self.generate_data()[0]
            self.train_model(data=data)

        def work():
            model, train_config = load_trained(self.model_dir / "final")
            model.score_thresh = self.config.score_threshold
            classifier = load_classifier(self.model_dir / "final") if self.config.rescore else None
            metrics = {}
            for name in ("test", "real"):
                key = "synthetic" if name == "test" else "real"
                metrics[key] = m = evaluate(model, data["dirs"][name], self.config.eval_batch_size, 0, classifier=classifier,
                                            crop=train_config.classifier_crop)  # fmt: skip
                alone = m.get("detector_only")
                also = f"   (detector alone: AP {alone['AP']:.4f}  AP50 {alone['AP50']:.4f})" if alone else ""
                self.say(f"   {key}: AP {m['AP']:.4f}  AP50 {m['AP50']:.4f}  AP75 {m['AP75']:.4f}{also}")
            return metrics, [self._relative(checkpoint_output(self.model_dir / "final"))]

        return self.run_stage("evaluation", self.evaluation_hash(), work, force)

    def _claim_model_dir(self, force: bool | str) -> None:
        """Training resumes from the newest verified checkpoint of an interrupted run of the same
        stage (same data, same training config). Checkpoints of another stage hash (a changed config,
        regenerated data) or a forced rerun are set aside as ``<profile>.replaced-<time>``, never deleted."""
        from trainer_core import atomic_write_bytes

        marker = self.model_dir / ".stage-hash"
        if self.model_dir.exists() and any(self.model_dir.iterdir()):
            same = marker.is_file() and marker.read_text().strip() == self.resumable_hash()
            if same and not force:
                self.say(f"   resuming the interrupted training in {self.model_dir}")
                return
            aside = self.model_dir.with_name(f"{self.model_dir.name}.replaced-{datetime.now():%Y%m%d_%H%M%S}")
            self.model_dir.rename(aside)
            why = force if isinstance(force, str) else "forced" if force else "another data set or training config"
            self.say(f"   {why}: the previous model directory is kept as {aside} (delete it when you no longer need it)")
        self.model_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(marker, (self.resumable_hash() + "\n").encode())

    def _model_loads(self, record: dict) -> str | None:
        from bongard_detector.training import load_trained

        try:
            load_trained(self.model_dir / "final")
        except Exception as exc:  # noqa: BLE001 - any failure means: retrain
            return f"model checkpoint does not load ({type(exc).__name__}: {exc})"
        return None

    def _relative(self, output: dict) -> dict:
        path = Path(output["path"])
        if path.is_absolute():
            try:
                output = {**output, "path": str(path.relative_to(self.root.absolute()))}
            except ValueError:
                pass
        return output

    # --- the whole run --------------------------------------------------------------------------
    def run(self, force: set[str] = frozenset()) -> dict:
        """Every stage (each only when needed), then the results file. Under torchrun rank 0 runs
        the stages and the other ranks join the training (DDP); they return ``{"rank": r}``."""
        import json as _json

        from trainer_core import current_world

        world = current_world()
        if world.multi and not world.main:
            return self._follow(world)
        try:
            data, data_ran = self.generate_data(force="data" in force)
        except BaseException as exc:
            self._tell_ranks("data", f"failed: {type(exc).__name__}: {exc}")
            raise
        self._tell_ranks("data", _json.dumps(data["dirs"]))
        training, train_ran = self.train_model(force="train" in force or (data_ran and "the data was regenerated"), data=data)
        evaluation, eval_ran = self.evaluate_model(force="eval" in force or (train_ran and "the model was retrained"), data=data)
        results = {
            "profile": self.config.profile,
            "config": asdict(self.config),
            "data": data["metrics"],
            "training": training["metrics"],
            "evaluation": evaluation["metrics"],
            "targets": self.targets(evaluation["metrics"]),
            "work_done": {"data_generation": data_ran, "training": train_ran, "evaluation": eval_ran},
        }
        path = self.results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        from trainer_core import atomic_write_json

        atomic_write_json(path, results)
        results["results_file"] = str(path)
        return results

    def results_path(self) -> Path:
        if self.config.profile == "professional":
            return self.root / "results" / f"professional_training_results_{datetime.now():%Y%m%d_%H%M%S}.json"
        return self.root / "results" / "system1_training_results.json"

    def targets(self, metrics: dict) -> list[dict]:
        table = QUICK_TARGETS if self.config.profile == "quick" else TARGETS
        rows = []
        for dataset, metric, target in table:
            value = (metrics.get(dataset) or {}).get(metric)
            rows.append({"dataset": dataset, "metric": metric, "target": target, "value": value,
                         "met": value is not None and value >= target})  # fmt: skip
        return rows

    def status(self) -> list[tuple[str, bool, str]]:
        """(stage, ok, timestamp or why not) from the stage files and their outputs."""
        from trainer_core import validate_output

        rows = []
        for stage in STAGES:
            record = self.cache.record(stage)
            if record is None:
                rows.append((stage, False, "never run"))
                continue
            if record.get("corrupt") or record.get("format") != "trainer-core/stage":
                rows.append((stage, False, f"{self.cache.path(stage)} is unreadable (it will be reset)"))
                continue
            problem = next((p for p in (validate_output(o, self.root) for o in record.get("outputs", [])) if p), None)
            when = datetime.fromisoformat(record["timestamp"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            rows.append((stage, problem is None, when if problem is None else problem))
        return rows


def format_targets(rows: list[dict]) -> str:
    lines = ["| Dataset | Metric | Target | Value | Status |", "|---------|--------|--------|-------|--------|"]
    names = {"AP": "AP@0.5:0.95", "AP50": "AP@0.5", "AP75": "AP@0.75"}
    for r in rows:
        value = "–" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(
            f"| {r['dataset'].capitalize()} | {names[r['metric']]} | ≥ {r['target']:.2f} | {value} | {'✅' if r['met'] else '❌'} |"
        )
    return "\n".join(lines)

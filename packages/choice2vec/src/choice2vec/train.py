"""`c2v train`: data, model, the jitted multi-step loop, checkpoints with their analysis, resume."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from choice2vec import checkpoints as ck
from choice2vec.config import Choice2VecConfig
from choice2vec.task import TaskConfig, Trials
from trainer_core import UsageError

RUN_PREFIX = "training_checkpoints_"  # + YYYYmmdd_HHMMSS


def new_run_dir(root: str | Path) -> Path:
    """``training_checkpoints_YYYY-mm-dd_HH-MM-SS`` (the seed's name), ``_2``... if taken."""
    from datetime import datetime

    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    suffix = 1
    while True:
        candidate = Path(root) / (f"{RUN_PREFIX}{stamp}" + (f"_{suffix}" if suffix > 1 else ""))
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            suffix += 1


@dataclass
class Prepared:
    config: Choice2VecConfig
    trials: Trials
    train_sequences: np.ndarray
    held_out: Any  # analysis.HeldOut

    @property
    def objective(self) -> dict[str, Any]:
        return {**self.config.training.model_dump(), "window": self.config.model.window}


def load_data(config: Choice2VecConfig) -> Trials:
    data = config.data
    if data.source == "simulated":
        from choice2vec.task import simulate

        return simulate(TaskConfig(participants=data.participants, trials_per_participant=data.trials_per_participant, seed=data.task_seed))
    from choice2vec.data import load_trials

    return load_trials(data.source)


def prepare(config: Choice2VecConfig, *, with_analysis: bool = True) -> Prepared:
    from choice2vec.analysis import prepare_held_out
    from choice2vec.features import sequences

    if config.training.checkpoint_every % config.training.log_every or config.training.epochs % config.training.log_every:
        raise UsageError(
            f"epochs ({config.training.epochs}) and checkpoint_every ({config.training.checkpoint_every}) must be multiples of "
            f"log_every ({config.training.log_every}): the training step runs log_every epochs per compiled call"
        )
    trials = load_data(config)
    ids = trials.participants()
    held = max(1, math.ceil(len(ids) * config.data.held_out_fraction))
    if len(ids) - held < 1:
        raise UsageError(f"{len(ids)} participant(s) leave none for training once {held} are held out; lower held_out_fraction")
    order = np.random.default_rng(config.data.split_seed).permutation(ids)
    test_ids, train_ids = np.sort(order[:held]), np.sort(order[held:])
    train_trials, test_trials = trials.subset(train_ids), trials.subset(test_ids)
    x_train, _ = sequences(train_trials)
    x_test, index = sequences(test_trials)
    if x_train.shape[1] < config.model.window:
        raise UsageError(f"participants have {x_train.shape[1]} trials but model.window is {config.model.window}; lower model.window")
    held_out = prepare_held_out(test_trials, x_test, index, config.data.cluster_trials, algorithms=config.analysis.algorithms) if with_analysis else None
    return Prepared(config, trials, x_train, held_out)


def _history_row(epoch: int, metrics: dict[str, Any]) -> dict[str, float]:
    return {"epoch": epoch, **{k: float(np.mean(np.asarray(v))) for k, v in metrics.items()}}


def console_line(row: dict[str, float], total: int) -> str:
    width = len(str(total))
    return (
        f"Epoch {row['epoch']:>{width}}/{total} | Total: {row['total']:.3f} | Behavioral: {row['behavioral']:.3f} | "
        f"Contrastive: {row['contrastive']:.3f} | Diversity: {row['diversity']:.3f}"
    )


def train(
    config: Choice2VecConfig,
    *,
    output_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
    stop_after: int | None = None,
    devices: int | None = None,
    processes: tuple[str | None, int | None, int | None] = (None, None, None),
) -> dict[str, Any]:
    """Train (or continue ``resume``, a run directory) and checkpoint every ``checkpoint_every`` epochs.

    ``stop_after`` stops this call after that many epochs (tests use it to interrupt a run).
    ``devices``: how many local devices share each batch (default: as many as split it evenly).
    ``processes``: (coordinator, process count, this process's id) of a multi-process job: every
    device of every process shares each batch; process 0 writes the checkpoints and the analysis."""
    import jax
    from tqdm.auto import tqdm

    from choice2vec.devices import CompileCounter, choose_device_count, data_mesh, pin_random_bits, replicate, start_processes
    from choice2vec.model import Choice2Vec
    from choice2vec.objective import init_state, make_optimizer, make_representer, make_train_chunk
    from trainer_core import JaxState, TrainingRun, is_url, jax_world

    start_processes(*processes)
    world = jax_world()
    if world.multi and resume is None and not output_dir:
        raise UsageError("several processes write one run: give them the same --output-dir (on a shared file system)")
    if not world.main:
        echo = lambda line: None  # noqa: E731 - process 0 reports
    if resume is None and is_url(output_dir):  # object storage: core refuses a URL that holds another run
        run_dir = str(output_dir)
    elif resume is None:
        run_dir = Path(output_dir) if output_dir else new_run_dir(".")
        run_dir.mkdir(parents=True, exist_ok=True)
        if any(run_dir.glob("checkpoint_epoch_*")):
            raise UsageError(f"{run_dir} already holds checkpoints; continue it with --resume {run_dir} or choose another --output-dir")

    random_bits = pin_random_bits()
    tc = config.training
    count = choose_device_count(devices, tc.batch_size, len(jax.local_devices()), jax.default_backend())
    if world.multi:  # every device of every process
        count = len(jax.devices())
        if tc.batch_size % count:
            raise UsageError(f"training.batch_size {tc.batch_size} does not split over the job's {count} devices; use a multiple of {count}")
    mesh = data_mesh(count)
    parallelism = {"devices": count, "processes": jax.process_count(), **random_bits}
    prep = prepare(config)
    model = Choice2Vec(**config.model.model_dump())
    optimizer = make_optimizer(prep.objective)
    state = init_state(model, optimizer, prep.objective, tc.seed)
    jax_state = JaxState(state["params"], state["opt_state"], state["key"])
    # metrics.jsonl and whatever sinks are installed (TensorBoard...); the console lines are ours
    run = TrainingRun(config, layout=ck.LAYOUT_SPEC, state=jax_state, run_dir=None if resume else run_dir, resume=resume,
                      disabled_sinks=("console",), seed=tc.seed, world=world)  # fmt: skip
    run_dir = run.run_dir
    history: list[dict[str, float]] = []
    epoch = int(run.position.get("epoch", 0))
    if run.resumed_from is not None:
        state = {
            "params": jax_state.params,
            "opt_state": jax_state.opt_state,
            "key": jax_state.key,
            "epoch": jax.numpy.asarray(epoch, jax.numpy.int32),
        }
        history = list(run.loaded_files[ck.META]["training_history"])
        echo(f"Resuming {run_dir} from epoch {epoch:,}")
        before = run.loaded_files[ck.META].get("parallelism", {"devices": 1, "processes": 1})
        if (before.get("devices"), before.get("processes")) != (count, parallelism["processes"]):
            echo(f"   written on {before.get('devices')} device(s) in {before.get('processes')} process(es), continued on {count} in "
                 f"{parallelism['processes']}: the same sampled data from epoch {epoch:,}; floats may differ in the last bits")  # fmt: skip
    state = replicate(state, mesh)
    chunk = make_train_chunk(model, optimizer, prep.train_sequences, prep.objective, mesh)
    compiles = CompileCounter()
    represent = make_representer(model, config.model.window, config.data.representation_passes)
    stop = tc.epochs if stop_after is None else min(tc.epochs, epoch + stop_after)
    started = time.perf_counter()
    checkpoint_seconds = 0.0
    summaries = []
    with run:
        with tqdm(
            total=tc.epochs, initial=epoch, disable=(None if progress is None else not progress) if world.main else True, unit="epoch",
            desc="c2v train",
        ) as bar:
            while epoch < stop:
                with compiles:
                    state, metrics = chunk(state, tc.log_every)
                epoch += tc.log_every
                row = _history_row(epoch, jax.device_get(metrics))
                history.append(row)
                run.log({k: v for k, v in row.items() if k != "epoch"}, step=epoch, epoch=epoch)
                bar.update(tc.log_every)
                (bar.write if not bar.disable else echo)(console_line(row, tc.epochs))
                if epoch % tc.checkpoint_every == 0 or epoch == tc.epochs:
                    t0 = time.perf_counter()
                    jax_state.update(params=state["params"], opt_state=state["opt_state"], key=state["key"])
                    summaries.append(_checkpoint(run, prep, state, represent, history, row, epoch, echo, parallelism))
                    checkpoint_seconds += time.perf_counter() - t0
        if epoch < tc.epochs:
            run.status = "interrupted"
    total = time.perf_counter() - started
    return {
        "status": run.status,
        "run_dir": run.location,
        "epoch": epoch,
        "checkpoints": summaries,
        "seconds": total,
        "checkpoint_seconds": checkpoint_seconds,
        "final": history[-1] if history else {},
        "devices": count,
        "compilations": compiles.count,  # of the scanned training step: once for the whole run
    }


def _checkpoint(run, prep: Prepared, state, represent, history, row, epoch: int, echo, parallelism: dict) -> dict[str, Any]:
    import jax

    if not run.world.main:  # the parameters are replicated: process 0 writes them and the analysis
        info = run.save(step=epoch, epoch=epoch, position={"epoch": epoch}, name=ck.checkpoint_name(epoch))
        return {"epoch": epoch, "path": str(info.path)}

    from choice2vec.analysis import analyse
    from choice2vec.figures import checkpoint_figure

    config = prep.config
    echo(f"💾 Saving checkpoint at epoch {epoch}...")
    echo("   🧠 Extracting representations and performing clustering...")
    params = jax.device_get(state["params"])
    reps = represent(params, prep.held_out.sequences)
    training_metrics = {k: v for k, v in row.items() if k != "epoch"}
    analysis, arrays = analyse(reps, prep.held_out, epoch, training_metrics, log=echo, algorithms=config.analysis.algorithms)
    files: dict[str, Any] = {
        ck.META: {
            "epoch": epoch,
            "model_config": config.model.model_dump(),
            "training_config": config.training.model_dump(),
            "data_config": config.data.model_dump() | ({"task": prep.trials.task.to_dict()} if prep.trials.task else {}),
            "training_history": history,
            "parallelism": parallelism,
        },
        ck.RESULTS_JSON: analysis,
        ck.RESULTS_NPZ: arrays,
    }
    if "algorithms" in analysis:
        echo("   📊 Creating visualization...")
        files[ck.figure_name(epoch)] = checkpoint_figure(Path(ck.figure_name(epoch)), analysis, arrays, history)
    metrics = {"total_loss": row["total"]}
    if "best_accuracy" in analysis:
        metrics |= {"best_accuracy": analysis["best_accuracy"], "best_algorithm": analysis["best_algorithm"]}
        if "oracle" in analysis["baselines"]:  # listed by `core list-checkpoints` with the rest
            metrics["gap_to_oracle"] = analysis["baselines"]["oracle"] - analysis["best_accuracy"]
        metrics |= {f"baseline_{k}": v for k, v in analysis["baselines"].items()}
    info = run.save(step=epoch, epoch=epoch, metrics=metrics, position={"epoch": epoch}, files=files, name=ck.checkpoint_name(epoch))
    if "best_accuracy" in analysis:
        b = analysis["baselines"]
        echo(
            f"   ✅ Checkpoint {epoch} completed in {info.path}: best {analysis['best_algorithm']} {analysis['best_accuracy']:.3f} "
            f"(raw k-means {b.get('raw_kmeans', float('nan')):.3f}, oracle {b.get('oracle', float('nan')):.3f}, "
            f"gap {metrics.get('gap_to_oracle', float('nan')):+.3f})"
        )
    else:
        echo(f"   ✅ Checkpoint {epoch} completed in {info.path}")
    return {"epoch": epoch, "path": str(info.path), **{k: v for k, v in metrics.items()}}

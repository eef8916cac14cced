"""`arc-serve`: the training web app (Flask). JSON API plus a dashboard page.

Training runs in a background thread; every request is answered from the session's thread-safe
status, so the server keeps serving while it trains. Safe by default: loopback only unless
``--host`` says otherwise (with a warning), checkpoint names limited to ``[A-Za-z0-9_.-]`` (no
path separators, no leading dot, at most 100 characters), no overwriting without ``overwrite``,
request bodies limited to 64 KiB, bad JSON / unknown config keys / wrong types answered with 400
naming the field.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
MAX_BODY = 64 * 1024


def create_app(checkpoint_dir: str | Path = "checkpoints", session_factory=None):
    from flask import Flask, jsonify, request

    from arc_comm.config import ArcConfig

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    checkpoint_dir = Path(checkpoint_dir)
    holder: dict[str, Any] = {"session": None, "thread": None, "mode": "idle", "error": None}
    lock = threading.Lock()

    def make_session(config: ArcConfig):
        if session_factory is not None:
            return session_factory(config, checkpoint_dir)
        from arc_comm.session import TrainingSession

        return TrainingSession(config, checkpoint_dir)

    def error(message: str, status: int):
        return jsonify({"status": "error", "error": message}), status

    def running() -> bool:
        thread = holder["thread"]
        return thread is not None and thread.is_alive()

    def body() -> tuple[dict | None, Any]:
        if not request.data:
            return {}, None
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return None, error("the body must be a JSON object", 400)
        return data, None

    @app.errorhandler(413)
    def too_large(_):
        return error(f"request body over {MAX_BODY // 1024} KiB", 413)

    @app.errorhandler(404)
    def not_found(_):
        return error("no such endpoint; see the README for the API", 404)

    @app.errorhandler(405)
    def wrong_method(_):
        return error("wrong HTTP method for this endpoint", 405)

    def start(mode: str):
        data, failure = body()
        if failure:
            return failure
        with lock:
            if running():
                return error(f"already {holder['mode']}; POST /stop first", 409)
            try:
                config = ArcConfig.model_validate(data)
            except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, reported by field
                errors = getattr(exc, "errors", lambda: [])()
                if errors:
                    first = errors[0]
                    field = ".".join(str(p) for p in first["loc"]) or "body"
                    return error(f"config field {field!r}: {first['msg']}", 400)
                return error(str(exc), 400)
            session = make_session(config)
            holder.update(session=session, mode=mode, error=None)

            def work():
                try:
                    session.pretrain() if mode == "pretraining" else session.run()
                except Exception as exc:  # noqa: BLE001 - reported through /status
                    holder["error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    session.close()

            thread = threading.Thread(target=work, name=f"arc-{mode}", daemon=True)
            holder["thread"] = thread
            thread.start()
        return jsonify({"status": "started", "mode": mode, "config": config.model_dump(mode="json")})

    @app.post("/start_train")
    def start_train():
        return start("training")

    @app.post("/start_pretrain")
    def start_pretrain():
        """Body: a config with ``pretrain_task`` (binary | selection) and ``pretrain_epochs``;
        writes ``pretrained_encoder_<task>.pth`` when done."""
        return start("pretraining")

    @app.post("/stop")
    def stop():
        if not running():
            return error("nothing is training", 400)
        holder["session"].stop()
        return jsonify({"status": "stopping"})

    @app.get("/status")
    def status():
        session = holder["session"]
        data = session.status() if session is not None else {"mode": "idle", "epoch": 0, "batch": 0, "losses": [], "accuracies": []}
        if session is not None and not running() and data["mode"] == "training":
            data["mode"] = "finished"
        data["error"] = data.get("error") or holder["error"]
        return jsonify(data)

    @app.post("/save_checkpoint")
    def save_checkpoint():
        data, failure = body()
        if failure:
            return failure
        if not running():
            return error("training is not running; start it with POST /start_train", 400)
        if holder["mode"] != "training":
            return error("checkpoints can be saved during main training only, not pretraining", 400)
        session = holder["session"]
        name = data.get("name") or f"manual_checkpoint_epoch_{session.status()['epoch']}"
        overwrite = data.get("overwrite", False)
        if not isinstance(name, str) or not NAME.match(name) or ".." in name:
            return error("field 'name': use letters, digits, '_', '-' and '.', at most 100 characters, not starting with '.'", 400)
        if not isinstance(overwrite, bool):
            return error("field 'overwrite': must be true or false", 400)
        if (checkpoint_dir / f"{name}.pth").exists() and not overwrite:
            return error(f'checkpoint {name!r} exists; choose another name or send "overwrite": true', 409)
        session.request_save(name, overwrite)
        return jsonify({"status": "requested", "checkpoint_name": name, "message": f"Checkpoint save requested: {name}"})

    @app.get("/examples")
    def examples():
        session = holder["session"]
        if session is None:
            return jsonify({"examples": []})
        return jsonify({"examples": session.examples()})

    @app.get("/list_checkpoints")
    def list_checkpoints():
        return jsonify({"checkpoints": list_system_checkpoints(checkpoint_dir)})

    @app.get("/")
    def dashboard():
        from importlib.resources import files

        return (files("arc_comm") / "dashboard.html").read_text(encoding="utf-8")

    return app


def list_system_checkpoints(checkpoint_dir: Path) -> list[dict[str, Any]]:
    """The seed's fields, read from each file's manifest (weights are not opened)."""
    from trainer_core import list_committed

    rows = []
    for info in list_committed(checkpoint_dir, layout="arc.system"):
        extra = info.extra or {}
        rows.append(
            {
                "filename": Path(info.path).name,
                "path": str(Path(checkpoint_dir) / Path(info.path).name),
                "size_mb": round(info.size / 2**20, 3),
                "modified": datetime.fromtimestamp(info.modified).strftime("%Y-%m-%d %H:%M:%S") if info.modified else None,
                "epoch": info.epoch,
                "batch": info.step,
                "val_loss": info.metrics.get("val_loss"),
                "val_acc": info.metrics.get("val_acc"),
                **{k: extra.get(k) for k in ("task_type", "bottleneck_type", "hidden_dim", "latent_dim", "vocab_size")},
                "status": info.status,
            }
        )
    return rows


def main() -> None:
    import warnings

    import click

    @click.command()
    @click.option(
        "--host", default="127.0.0.1", show_default=True, help="Interface to bind; anything but loopback is reachable from other machines."
    )
    @click.option("--port", default=5002, show_default=True, type=int)
    @click.option("--checkpoint-dir", default="checkpoints", show_default=True, type=click.Path(file_okay=False))
    def serve(host, port, checkpoint_dir):
        """Serve the ARC training web app (JSON API and dashboard)."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(
                f"arc-serve is listening on {host}: anyone who can reach it can start training and write checkpoints", stacklevel=1
            )
        create_app(checkpoint_dir).run(host=host, port=port, threaded=True)

    serve()

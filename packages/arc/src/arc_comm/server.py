"""`arc-serve`: the training web app (Flask). JSON API plus a dashboard page.

Training runs in a background thread; every request is answered from the session's thread-safe
status, so the server keeps serving while it trains. Safe by default: loopback only unless
``--host`` says otherwise (with a warning); only loopback (and ``--allowed-host``) in ``Host`` and
``Origin`` (DNS rebinding, cross-site forms); ``application/json`` on every POST; checkpoint names
limited to ``[A-Za-z0-9_.-]`` (no path separators, no leading dot, at most 100 characters, matched
whole), paths in requests resolved inside the checkpoint directory only; no overwriting without
``overwrite`` and 409 for a name already being saved; request bodies limited to 64 KiB (413);
bad JSON / unknown config keys / wrong types / out-of-range sizes answered with a JSON 400 naming
the field; a failed save reported in ``/status`` while training goes on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 64 * 1024
CLOSE_WAIT_S = 60  # a start right after a run reported finished waits this long for it to close (its last uploads)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _hostname(value: str) -> str:
    """``example.com:5002`` -> ``example.com``; ``[::1]:5002`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def create_app(checkpoint_dir: str | Path = "checkpoints", session_factory=None, allowed_hosts: Iterable[str] = ()):
    """The app. Requests must name an allowed host (loopback, plus ``allowed_hosts``) in ``Host`` and,
    when they carry one, in ``Origin``; state-changing requests must be ``application/json``."""
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException

    from arc_comm.config import ArcConfig
    from arc_comm.session import SaveConflict, checkpoint_name_problem
    from trainer_core import TrainerCoreError

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    from trainer_core import is_url, join_location, location_exists

    remote = is_url(checkpoint_dir)  # s3://... : checkpoints on object storage, named by URL
    checkpoint_dir = str(checkpoint_dir).rstrip("/") if remote else Path(checkpoint_dir).absolute()
    hosts = LOOPBACK | {_hostname(h) for h in allowed_hosts}
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
        raw = request.get_data(cache=True)  # a Content-Length over MAX_BODY: 413 here
        if len(raw) >= MAX_BODY and request.stream.read(1):  # a chunked body is cut at the limit: read one byte more
            return None, error(f"request body over {MAX_BODY // 1024} KiB", 413)
        if not raw:
            return {}, None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return None, error("the body must be a JSON object", 400)
        return data, None

    @app.before_request
    def guard():
        """DNS rebinding and cross-site requests: a foreign Host or Origin is refused, and a
        state-changing request must say it is JSON (a plain HTML form cannot)."""
        if _hostname(request.host or "") not in hosts:
            return error(f"host {request.host!r} is not served here; start arc-serve with --allowed-host NAME to allow it", 403)
        origin = request.headers.get("Origin")
        if origin is not None and _hostname(urlsplit(origin).netloc or origin) not in hosts:
            return error(f"cross-origin request from {origin!r} refused", 403)
        if request.method == "POST" and request.mimetype != "application/json":
            return error("send the request body as JSON with Content-Type: application/json", 415)
        return None

    @app.errorhandler(413)
    def too_large(_):
        return error(f"request body over {MAX_BODY // 1024} KiB", 413)

    @app.errorhandler(404)
    def not_found(_):
        return error("no such endpoint; see the README for the API", 404)

    @app.errorhandler(405)
    def wrong_method(_):
        return error("wrong HTTP method for this endpoint", 405)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return error(exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def internal(exc):  # never an HTML page or a traceback to the client
        app.logger.error("internal error: %s: %s", type(exc).__name__, exc)
        return error(f"internal error ({type(exc).__name__}); see the server log", 500)

    def confined(field: str, value: Any) -> Path:
        """A path named in a request: a file inside the checkpoint directory, or a TrainerCoreError."""
        if not isinstance(value, str) or not value or "\x00" in value:
            raise TrainerCoreError(f"field {field!r}: give a file name in the checkpoint directory")
        if remote:  # a plain name inside the bucket prefix: no separators, no dot names
            if "/" in value or "\\" in value or value.startswith("."):
                raise TrainerCoreError(f"field {field!r}: {value!r} is outside the checkpoint directory; give a file inside it")
            if not location_exists(join_location(checkpoint_dir, value, "manifest.json")):
                raise TrainerCoreError(f"field {field!r}: no file {value!r} in the checkpoint directory (GET /list_checkpoints shows what exists)")
            return join_location(checkpoint_dir, value)
        path = (checkpoint_dir / value).resolve()
        if not path.is_relative_to(checkpoint_dir.resolve()):
            raise TrainerCoreError(f"field {field!r}: {value!r} is outside the checkpoint directory; give a file inside it")
        if not path.is_file():
            raise TrainerCoreError(f"field {field!r}: no file {value!r} in the checkpoint directory (GET /list_checkpoints shows what exists)")
        return path

    def start(mode: str):
        data, failure = body()
        if failure:
            return failure
        save_at_end = data.pop("save_at_end", False)  # the server's option, not the run's config
        if not isinstance(save_at_end, bool):
            return error("field 'save_at_end': must be true or false", 400)
        with lock:
            if running() and holder["session"].status()["mode"] in ("finished", "stopped", "failed"):
                holder["thread"].join(timeout=CLOSE_WAIT_S)  # /status said it was over: it is only closing its run
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
            try:
                if config.pretrained_encoder:
                    config = config.model_copy(update={"pretrained_encoder": str(confined("pretrained_encoder", config.pretrained_encoder))})
                session = make_session(config)
            except TrainerCoreError as exc:
                return error(str(exc), 400)
            holder.update(session=session, mode=mode, error=None)

            def work():
                try:
                    if mode == "pretraining":
                        session.pretrain()
                    else:
                        session.run()
                        if save_at_end:
                            session.save_final()
                except Exception as exc:  # noqa: BLE001 - reported through /status
                    holder["error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    session.close()

            thread = threading.Thread(target=work, name=f"arc-{mode}", daemon=True)
            holder["thread"] = thread
            thread.start()
        return jsonify({"status": "started", "mode": mode, "save_at_end": save_at_end, "config": config.model_dump(mode="json")})

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
        problem = checkpoint_name_problem(name)
        if problem:
            return error(f"field 'name': {problem}", 400)
        if not isinstance(overwrite, bool):
            return error("field 'overwrite': must be true or false", 400)
        if location_exists(join_location(checkpoint_dir, f"{name}.pth")) and not overwrite:
            return error(f'checkpoint {name!r} exists; choose another name or send "overwrite": true', 409)
        try:
            session.request_save(name, overwrite)
        except SaveConflict as exc:
            return error(str(exc), 409)
        # the seed's answer; GET /status lists each requested save as requested, written or failed
        return jsonify({"status": "requested", "checkpoint_name": name, "message": f"Checkpoint save requested: {name}"})

    @app.get("/examples")
    def examples():
        session = holder["session"]
        if session is None:
            return jsonify({"examples": [], "messages": None})
        return jsonify({"examples": session.examples(), "messages": session.message_usage()})

    @app.get("/list_checkpoints")
    def list_checkpoints():
        return jsonify({"checkpoints": list_system_checkpoints(checkpoint_dir)})

    @app.get("/static/plotly.min.js")
    def plotly_js():
        """The dashboard's charting library, served from the installed plotly package (no CDN)."""
        from importlib.resources import as_file, files

        from flask import send_file

        with as_file(files("plotly") / "package_data" / "plotly.min.js") as path:
            return send_file(path, mimetype="text/javascript", max_age=3600)

    @app.get("/")
    def dashboard():
        from importlib.resources import files

        return (files("arc_comm") / "dashboard.html").read_text(encoding="utf-8")

    return app


def list_system_checkpoints(checkpoint_dir: Path) -> list[dict[str, Any]]:
    """The seed's fields, read from each file's manifest (weights are not opened)."""
    from trainer_core import join_location, list_committed, location_name

    rows = []
    for info in list_committed(checkpoint_dir, layout="arc.system"):
        extra = info.extra or {}
        rows.append(
            {
                "filename": location_name(info.path),
                "path": str(join_location(checkpoint_dir, location_name(info.path))),
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
    @click.option(
        "--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
        help="Another host name the app answers to (the Host header), besides loopback and --host; repeatable.",
    )  # fmt: skip
    def serve(host, port, checkpoint_dir, allowed_hosts):
        """Serve the ARC training web app (JSON API and dashboard). One process: it trains in the
        server's own thread (for data-parallel training use `arc train` without the app)."""
        from trainer_core import UsageError, single_process_only

        try:
            single_process_only("arc-serve", "the web app trains in its own thread and serves one dashboard")
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(2) from None
        if host not in LOOPBACK:
            warnings.warn(
                f"arc-serve is listening on {host}: anyone who can reach it can start training and write checkpoints", stacklevel=1
            )
        create_app(checkpoint_dir, allowed_hosts=(*allowed_hosts, host)).run(host=host, port=port, threaded=True)

    serve.main(prog_name="arc-serve", standalone_mode=True)

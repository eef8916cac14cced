"""Every command and every HTTP endpoint fed bad input: one line, exit 1 or 2, nothing saved changed.

The cases are generated: for each command, each path-taking option gets a missing path, a
directory where a file is expected, a garbage file, a path below a regular file (ENOTDIR) and a
path inside the existing checkpoint tree; each number gets negative, huge, non-numeric and
non-finite values. Each case asserts: exit code 1 or 2, no traceback, no "unexpected" error (the
last-resort handler means a bug), and every file under a pre-existing checkpoint tree unchanged.
The HTTP half posts malformed bodies, wrong types, huge values, foreign hosts and paths outside
the checkpoint directory to every arc-serve endpoint: a 4xx JSON answer each time.
The number of cases is printed in the session's closing lines (``fuzz: N CLI (0 failed), ...``)
and checked against a floor.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.filterwarnings("ignore")

BAD_NUMBERS = ("-1", "100000000000000", "abc", "inf", "nan", "1e400")
SUMMARY: dict[str, int] = {"cli": 0, "http": 0}


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A pre-existing checkpoint tree (a real example run) and a set of bad files."""
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    root = tmp_path_factory.mktemp("fuzz")
    train(ExampleConfig(epochs=2, samples=300, batch_size=60, async_save=False), root / "tree" / "run", progress=False)
    bad = root / "bad"
    bad.mkdir()
    rng = __import__("random").Random(7)
    for name in ("garbage.pt", "garbage.h5", "garbage.csv", "garbage.npz", "garbage.pth"):
        (bad / name).write_bytes(bytes(rng.randrange(256) for _ in range(512)))
    (bad / "empty.pt").write_bytes(b"")
    (bad / "garbage.json").write_text("{not json")
    (bad / "garbage.yaml").write_text("key: [unclosed\n")
    (bad / "list.yaml").write_text("- 1\n- 2\n")
    (bad / "adir.h5").mkdir()
    (bad / "afile").write_text("a file, not a directory")
    checkpoint = next((root / "tree" / "run" / "checkpoints").iterdir())
    return {"root": root, "tree": root / "tree", "bad": bad, "checkpoint": checkpoint, "digest": _tree_digest(root / "tree")}


def _paths(world, suffix: str) -> list[str]:
    bad = world["bad"]
    garbage = bad / f"garbage{suffix}" if (bad / f"garbage{suffix}").exists() else bad / "garbage.pt"
    return [str(bad / f"missing{suffix}"), str(bad / "adir.h5"), str(garbage), str(bad / "afile" / f"below{suffix}")]


def _cli_cases(world) -> list[tuple[str, list[str]]]:
    """(program, arguments): each has exactly one bad value."""
    bad, tree, ck = world["bad"], world["tree"], world["checkpoint"]
    cases: list[tuple[str, list[str]]] = []

    def paths(prog, prefix, option, suffix, rest=()):
        for value in _paths(world, suffix):
            cases.append((prog, [*prefix, option, value, *rest]))

    def numbers(prog, prefix, option, rest=()):
        for value in BAD_NUMBERS:
            cases.append((prog, [*prefix, option, value, *rest]))

    # core
    for sub in ("show", "verify"):
        for value in [*_paths(world, ".pt"), str(bad / "garbage.json")]:
            cases.append(("core", [sub, value]))
    cases.append(("core", ["prune", str(bad / "missing")]))
    cases.append(("core", ["prune", str(tree / "run" / "checkpoints")]))  # nothing said to keep
    for value in ("-1", "abc"):
        cases.append(("core", ["prune", str(tree / "run" / "checkpoints"), "--keep-last", value]))
    cases.append(("core", ["prune", str(tree / "run" / "checkpoints"), "--keep-best", "1", "--metric", "val_loss **"]))
    cases.append(("core", ["list-checkpoints", str(tree), "--sort", "val_loss", "--package", "x", "--bogus"]))
    cases.append(("core", ["config", "check", str(bad / "garbage.yaml"), "--schema", "vqvae"]))
    cases.append(("core", ["config", "check", str(bad / "list.yaml"), "--schema", "vqvae"]))
    cases.append(("core", ["config", "schema", "no-such-schema"]))
    for value in _paths(world, ""):
        cases.append(("core", ["plot", value]))
    cases.append(("core", ["plot", str(tree / "run"), "--metrics", "no_such_metric"]))
    cases.append(("core", ["plot", str(tree / "run"), "--columns", "0"]))
    paths("core", ["example-train"], "--config", ".yaml", ["--output", str(bad / "o1")])
    paths("core", ["example-train"], "--resume", ".pt")
    for option in ("--epochs", "--batch-size", "--learning-rate", "--seed"):
        numbers("core", ["example-train", "--output", str(bad / "o2")], option)
    cases.append(("core", ["example-train", "--output", str(tree / "run")]))  # another run's checkpoints
    cases.append(("core", ["example-train", "--output", str(bad / "afile" / "x")]))
    cases.append(("core", ["example-train", "--output", str(bad / "o3"), "--set", "epochs=true"]))
    cases.append(("core", ["example-train", "--output", str(bad / "o3"), "--set", "no_such_key=1"]))
    # spinlock
    ds = str(bad / "garbage.h5")
    paths("spinlock", ["train-vqvae", "--config", "configs/vqvae/quick.json", "--output", str(bad / "v1")], "--input", ".h5")
    paths("spinlock", ["train-vqvae", "--input", ds, "--output", str(bad / "v2")], "--config", ".yaml")
    paths("spinlock", ["train-vqvae", "--config", "configs/vqvae/quick.json", "--input", ds, "--output", str(bad / "v3")], "--resume-from", ".pt")
    for option in ("--epochs", "--batch-size", "--learning-rate"):
        numbers("spinlock", ["train-vqvae", "--config", "configs/vqvae/quick.json", "--output", str(bad / "v4")], option)
    paths("spinlock", ["encode-to-tokens", "--vqvae-model", str(ck), "--output", str(bad / "t.h5")], "--dataset", ".h5")
    paths("spinlock", ["encode-to-tokens", "--dataset", ds, "--output", str(bad / "t.h5")], "--vqvae-model", ".pt")
    cases.append(("spinlock", ["encode-to-tokens", "--dataset", ds, "--vqvae-model", str(bad / "empty.pt"), "--output", ds, "--force"]))
    paths("spinlock", ["evaluate-tokens", "--vqvae-model", str(ck), "--output", str(bad / "q.json")], "--dataset", ".h5")
    paths("spinlock", ["evaluate-tokens", "--dataset", ds, "--output", str(bad / "q.json")], "--vqvae-model", ".pt")
    paths("spinlock", ["evaluate-tokens", "--dataset", ds, "--vqvae-model", str(ck), "--output", str(bad / "q.json")], "--tokens", ".h5")
    for value in _paths(world, ".pt"):
        cases.append(("spinlock", ["visualize-codebooks", value, "--output", str(bad / "c.png")]))
    paths("spinlock", ["train-ano", "--dataset", ds, "--output", str(bad / "n1")], "--tokens", ".h5")
    paths("spinlock", ["train-ano", "--tokens", ds, "--output", str(bad / "n2")], "--dataset", ".h5")
    paths("spinlock", ["train-ano"], "--resume-from", "")
    paths("spinlock", ["train-ano", "--output", str(bad / "n3")], "--config", ".yaml")
    numbers("spinlock", ["train-ano", "--output", str(bad / "n4")], "--epochs")
    cases.append(("spinlock", ["train-ano", "--output", str(bad / "n5"), "--set", "dropout=2"]))
    cases.append(("spinlock", ["train-ano", "--output", str(bad / "n5"), "--set", "token_embedding=onehot"]))
    numbers("spinlock", ["generate-dataset", "--output", str(bad / "g.h5")], "--samples")
    numbers("spinlock", ["generate-dataset", "--output", str(bad / "g.h5")], "--workers")
    numbers("spinlock", ["generate-dataset", "--output", str(bad / "g.h5")], "--seed")
    cases.append(("spinlock", ["generate-dataset", "--samples", "5", "--output", str(bad / "afile" / "g.h5")]))
    cases.append(("spinlock", ["generate-dataset", "--samples", "5", "--output", str(bad / "garbage.h5")]))  # exists, no --force
    # c2v
    paths("c2v", ["train", "--config", "configs/choice2vec/quick.yaml", "--output-dir", str(bad / "c1")], "--data", ".csv")
    paths("c2v", ["train", "--output-dir", str(bad / "c2")], "--config", ".yaml")
    paths("c2v", ["train", "--config", "configs/choice2vec/quick.yaml"], "--resume", "")
    for option in ("--epochs", "--checkpoint-every", "--log-every", "--seed"):
        numbers("c2v", ["train", "--config", "configs/choice2vec/quick.yaml", "--output-dir", str(bad / "c3")], option)
    for option in ("--training-dir", "--checkpoint", "--compare"):
        paths("c2v", ["analyze"], option, "")
    for option in ("--participants", "--trials", "--seed", "--lapse-accuracy"):
        numbers("c2v", ["generate-data", "--output", str(bad / "d.csv")], option)
    cases.append(("c2v", ["generate-data", "--output", str(bad / "d.txt")]))
    # arc
    paths("arc", ["train", "--checkpoint-dir", str(bad / "a1")], "--config", ".yaml")
    paths("arc", ["train", "--checkpoint-dir", str(bad / "a1")], "--resume", ".pth")
    paths("arc", ["train", "--checkpoint-dir", str(bad / "a1")], "--fine-tune", ".pth")
    for key in ("hidden_dim", "batch_size", "epochs", "learning_rate", "max_grids", "vocab_size"):
        for value in ("-1", "100000000000", "abc", "inf", "true"):
            cases.append(("arc", ["train", "--checkpoint-dir", str(bad / "a2"), "--set", f"{key}={value}"]))
    for name in ("../x", "sub/x", ".x", "x" * 200):
        cases.append(("arc", ["train", "--checkpoint-dir", str(bad / "a3"), "--save-as", name]))
    cases.append(("arc", ["train", "--checkpoint-dir", str(bad / "afile")]))
    for value in [*_paths(world, ".pth"), str(ck)]:
        cases.append(("arc", ["checkpoint-info", value]))
    paths("arc", ["pretrain", "--checkpoint-dir", str(bad / "a4")], "--config", ".yaml")
    cases.append(("arc", ["pretrain", "--task", "telepathy"]))
    # detector
    for option in ("--epochs", "--batch-size", "--dataset-size", "--image-size", "--seed", "--score-threshold"):
        numbers("detector", ["train", "--profile", "quick", "--root", str(bad / "d1")], option)
    cases.append(("detector", ["train", "--profile", "quick", "--root", str(bad / "afile")]))
    cases.append(("detector", ["train", "--profile", "nonsense"]))
    for option in ("--count", "--image-size", "--max-shapes", "--workers", "--seed"):
        numbers("detector", ["generate", "--output", str(bad / "gen")], option)
    paths("detector", ["generate", "--output", str(bad / "gen2"), "--count", "2"], "--programs", ".tsv")
    cases.append(("detector", ["evaluate", "--profile", "quick", "--root", str(bad / "never")]))
    cases.append(("detector", ["reset", "nonsense", "--root", str(bad / "d1")]))
    cases.append(("detector", ["status", "--root", str(bad / "afile")]))
    # vizwatch
    for option in ("--classes", "--samples", "--epochs", "--batch-size", "--learning-rate", "--focal-gamma", "--viz-every", "--seed"):
        numbers("vizwatch", ["train", "--output", str(bad / "w1")], option)
    cases.append(("vizwatch", ["train", "--dataset", "nonsense", "--output", str(bad / "w2")]))
    paths("vizwatch", ["train"], "--resume", "")
    paths("vizwatch", ["train", "--output", str(bad / "w3")], "--config", ".yaml")
    for value in _paths(world, ""):
        cases.append(("vizwatch", ["animate", value]))
        if not value.endswith("adir.h5"):  # an empty folder has no runs: a valid answer
            cases.append(("vizwatch", ["runs", value]))
    numbers("vizwatch", ["animate", str(bad)], "--fps")
    return cases


def _program(name: str):
    if name == "core":
        from trainer_core.cli import build_cli

        return build_cli()
    module = {
        "spinlock": "spinlock_vqvae.cli",
        "c2v": "choice2vec.cli",
        "arc": "arc_comm.cli",
        "detector": "bongard_detector.cli",
        "vizwatch": "vizwatch.cli",
    }[name]
    return __import__(module, fromlist=["cli"]).cli


def test_every_command_answers_bad_input_with_one_line(world, monkeypatch, fuzz_report):
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # configs/... paths
    cases = _cli_cases(world)
    assert len(cases) >= 300, len(cases)
    failures = []
    runner = CliRunner()
    for prog, args in cases:
        result = runner.invoke(_program(prog), args)
        text = result.output
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        problem = None
        if crashed:
            problem = f"raised {type(result.exception).__name__}: {result.exception}"
        elif result.exit_code not in (1, 2):
            problem = f"exit {result.exit_code}"
        elif "Traceback" in text or "unexpected " in text:
            problem = "traceback or unexpected error"
        elif not [line for line in text.splitlines() if line.startswith(("error:", "Error:", "Usage:"))]:
            problem = "no error line"
        if problem:
            failures.append(f"{prog} {' '.join(args)}: {problem}: {text.strip().splitlines()[-1:] if text.strip() else ''}")
        SUMMARY["cli"] += 1
    assert _tree_digest(world["tree"]) == world["digest"], "a file under the pre-existing checkpoint tree changed"
    fuzz_report("CLI", SUMMARY["cli"], len(failures))
    assert not failures, "\n".join(failures[:40])


# --- HTTP --------------------------------------------------------------------------------------
def _http_cases(world):
    from arc_comm.config import ArcConfig

    ok_host = {"Host": "127.0.0.1:5002"}
    cases = []
    for endpoint in ("/start_train", "/start_pretrain", "/save_checkpoint", "/stop"):
        for body in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe\x00", b"null", b"1e999"):
            cases.append(("POST", endpoint, {"data": body, "content_type": "application/json", "headers": ok_host}))
        cases.append(("POST", endpoint, {"data": "epochs=1", "content_type": "application/x-www-form-urlencoded", "headers": ok_host}))
        cases.append(("POST", endpoint, {"data": "{}", "content_type": "text/plain", "headers": ok_host}))
        cases.append(("POST", endpoint, {"json": {}, "headers": {"Host": "evil.example"}}))
        cases.append(("POST", endpoint, {"json": {}, "headers": {**ok_host, "Origin": "http://evil.example"}}))
        cases.append(("POST", endpoint, {"data": "x" * (70 * 1024), "content_type": "application/json", "headers": ok_host}))
        cases.append(("GET", endpoint, {"headers": ok_host}))
    tiny = {"hidden_dim": 16, "latent_dim": 16, "embedding_dim": 8, "num_conv_layers": 2, "max_grid_size": 6, "max_grids": 200}
    for field, info in ArcConfig.model_fields.items():
        values = ["not a value", [1], {"a": 1}, -(10**12), 10**12, 1e308]
        if info.annotation in (int, float) or "int" in str(info.annotation) or "float" in str(info.annotation):
            values += [True, "inf", "nan"]
        for value in values:
            for endpoint in ("/start_train", "/start_pretrain"):
                body = {**tiny, field: value}
                try:
                    ArcConfig.model_validate(body)
                    valid = True
                except Exception:  # noqa: BLE001 - only invalid bodies are cases here
                    valid = False
                if not valid or field == "pretrained_encoder":
                    cases.append(("POST", endpoint, {"json": body, "headers": ok_host}))
    for path in ("/etc/hostname", "../x.pth", str(world["checkpoint"]), "missing.pth", "a\x00b"):
        cases.append(("POST", "/start_train", {"json": {**tiny, "pretrained_encoder": path}, "headers": ok_host}))
    for name in ("../x", "a/b", ".hidden", "x" * 101, "ok\n", 5, None, ["x"]):
        cases.append(("POST", "/save_checkpoint", {"json": {"name": name}, "headers": ok_host}))
    cases.append(("POST", "/save_checkpoint", {"json": {"name": "x", "overwrite": "yes"}, "headers": ok_host}))
    for path in ("/nope", "/../etc/passwd", "/status/x", "/list_checkpoints/../../"):
        cases.append(("GET", path, {"headers": ok_host}))
    for endpoint in ("/status", "/examples", "/list_checkpoints", "/"):
        cases.append(("GET", endpoint, {"headers": {"Host": "evil.example:80"}}))
        cases.append(("DELETE", endpoint, {"headers": ok_host}))
    return cases


def test_every_endpoint_answers_bad_input_with_a_json_4xx(world, tmp_path, fuzz_report):
    from arc_comm.server import create_app

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "garbage.pth").write_bytes(os.urandom(256))
    app = create_app(checkpoints)
    cases = _http_cases(world)
    assert len(cases) >= 300, len(cases)
    failures = []
    with app.test_client() as client:
        for method, path, options in cases:
            response = client.open(path, method=method, **options)
            ok = 400 <= response.status_code < 500 and response.is_json and "error" in (response.get_json(silent=True) or {})
            if not ok:
                failures.append(f"{method} {path} {str(options)[:120]}: {response.status_code} {response.data[:120]!r}")
            SUMMARY["http"] += 1
            if client.get("/status").get_json()["mode"] not in ("idle",):
                failures.append(f"{method} {path} {str(options)[:120]}: started something")
                client.post("/stop", json={})
    assert _tree_digest(world["tree"]) == world["digest"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["garbage.pth"]
    fuzz_report("HTTP", SUMMARY["http"], len(failures))
    assert not failures, "\n".join(failures[:40])

"""Config: JSON/YAML + overrides, typed validation, one-line errors with exit 2, stable hash."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import Field

from trainer_core.config import TrainerConfig, config_hash, load_config, write_resolved_config
from trainer_core.errors import ConfigError


class Optim(TrainerConfig):
    learning_rate: float = 1e-3
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999])


class Demo(TrainerConfig):
    epochs: int = 10
    name: str = "run"
    use_torch_compile: bool = False
    optim: Optim = Field(default_factory=Optim)


def test_json_and_yaml_fill_defaults_and_apply_overrides(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 3, "optim": {"learning_rate": 0.01}}))
    (tmp_path / "c.yaml").write_text("epochs: 3\noptim:\n  learning_rate: 0.01\n")
    a = load_config(Demo, tmp_path / "c.json")
    b = load_config(Demo, tmp_path / "c.yaml")
    assert a == b and a.name == "run" and a.optim.betas == [0.9, 0.999]
    c = load_config(
        Demo, tmp_path / "c.yaml", {"epochs": 7, "name": None}, ["optim.learning_rate=0.5", "use_torch_compile=true", "name=3:4:5"]
    )
    assert (c.epochs, c.name, c.optim.learning_rate, c.use_torch_compile) == (7, "3:4:5", 0.5, True)  # not YAML's base-60 number


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"epoch": 3}, "unknown key 'epoch' (did you mean 'epochs'?)"),
        ({"optim": {"learnig_rate": 1}}, "unknown key 'optim.learnig_rate' (did you mean 'learning_rate'?)"),
        ({"epochs": "ten"}, "key 'epochs'"),
        ({"optim": {"betas": "x"}}, "key 'optim.betas'"),
    ],
)
def test_errors_name_the_key(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError) as err:
        load_config(Demo, path)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_missing_file_and_bad_syntax(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(Demo, tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Demo, tmp_path / "broken.yaml")
    (tmp_path / "c.toml").write_text("")
    with pytest.raises(ConfigError, match="unsupported config format"):
        load_config(Demo, tmp_path / "c.toml")


def test_hash_is_canonical_stable_across_processes_and_sensitive(tmp_path):
    base = Demo()
    same = load_config(Demo, None, {"optim.learning_rate": 1e-3})
    assert config_hash(base) == config_hash(same)
    assert config_hash(base) != config_hash(load_config(Demo, None, {"optim.learning_rate": 1.0001e-3}))
    assert config_hash(base) != config_hash(load_config(Demo, None, {"use_torch_compile": True}))
    code = (
        "from trainer_core.example.config import ExampleConfig as C; from trainer_core.config import config_hash; print(config_hash(C()))"
    )
    hashes = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": str(seed)}, check=True).stdout
        for seed in (1, 2)
    }
    from trainer_core.example.config import ExampleConfig

    assert hashes == {config_hash(ExampleConfig()) + "\n"}


def test_resolved_config_is_written_and_reloads_to_the_same_hash(tmp_path):
    config = load_config(Demo, None, {"epochs": 4})
    path = write_resolved_config(config, tmp_path)
    assert config_hash(load_config(Demo, path)) == config_hash(config)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "epoch=3"], "unknown key 'epoch' (did you mean 'epochs'?)"),
        (["--config", "missing.yaml"], "config file not found"),
        (["--epochs", "x"], "'x' is not a valid integer"),
        (["--set", "learning_rate=fast"], "key 'learning_rate'"),
    ],
)
def test_cli_config_errors_exit_2_with_one_line(tmp_path, run_core, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    result = run_core("example-train", "--output", "out", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.output
    assert not (tmp_path / "out" / "checkpoints").exists()  # nothing was started


def test_core_config_schema_and_check(tmp_path, run_core):
    schema = json.loads(run_core("config", "schema", "core.example").stdout)
    assert schema["title"] == "core.example" and schema["properties"]["epochs"]["default"] == 20
    good = tmp_path / "good.yaml"
    good.write_text("epochs: 3\nlearning_rate: 0.05\n")
    ok = run_core("config", "check", good, "--schema", "core.example")
    assert ok.exit_code == 0 and "valid core.example" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("epoch: 3\n")
    refused = run_core("config", "check", bad, "--schema", "core.example")
    assert refused.exit_code == 2 and "unknown key 'epoch'" in refused.stderr and "did you mean 'epochs'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.output
    unknown = run_core("config", "schema", "core.exampel")
    assert unknown.exit_code == 2 and "did you mean 'core.example'" in unknown.stderr
    written = run_core("config", "schema", "core.example", "--output", tmp_path / "s.json")
    assert written.exit_code == 0 and json.loads((tmp_path / "s.json").read_text())["title"] == "core.example"


def test_a_dataclass_schema_validates_and_refuses_unknown_keys(tmp_path):
    from dataclasses import dataclass

    from trainer_core.config import ConfigSchema
    from trainer_core.errors import ConfigError

    @dataclass(frozen=True)
    class Settings:
        epochs: int = 3
        rate: float = 0.1

    schema = ConfigSchema(name="dc", model=Settings)
    assert schema.json_schema()["properties"]["rate"]["default"] == 0.1
    path = tmp_path / "s.json"
    path.write_text('{"epochs": 5}')
    assert schema.check_file(path) == Settings(epochs=5)
    path.write_text('{"epocs": 5}')
    with pytest.raises(ConfigError, match="unknown key 'epocs'.*did you mean 'epochs'"):
        schema.check_file(path)
    path.write_text('{"epochs": "many"}')
    with pytest.raises(ConfigError, match="key 'epochs'"):
        schema.check_file(path)

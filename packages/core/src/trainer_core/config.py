"""Typed configs: JSON/YAML files plus CLI overrides, validated, defaults filled, hashed.

A package declares its schema as a pydantic model deriving from :class:`TrainerConfig` (field
defaults are the defaults) and registers it through ``register_config_schemas``. Errors are one
line naming the key or file, with a close-match suggestion, and map to exit code 2.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from trainer_core.checkpoint.atomic import atomic_write_bytes
from trainer_core.errors import ConfigError

C = TypeVar("C", bound="TrainerConfig")
FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


class TrainerConfig(BaseModel):
    """Base of every config schema: unknown keys are errors; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class ConfigSchema:
    """A registered config format: ``name`` (e.g. ``vqvae``), its model and readable formats.

    ``model`` is a :class:`TrainerConfig` subclass, or a dataclass (validated through pydantic,
    unknown keys refused all the same).
    """

    name: str
    model: type
    formats: tuple[str, ...] = ("json", "yaml")
    description: str = ""

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the config (for editors), with the schema's name as its title."""
        schema = _adapter(self.model).json_schema()
        schema["title"] = self.name
        if self.description:
            schema.setdefault("description", self.description)
        return schema

    def check_file(self, path: str | os.PathLike) -> Any:
        """Read and validate a config file; one-line :class:`ConfigError` naming the key."""
        return load_config(self.model, path)


def _adapter(model: type) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(model)


def _unknown_keys(model: Any, data: Any, loc: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A dataclass ignores unknown keys in pydantic; refuse them like TrainerConfig does (first one,
    as a pydantic error dict)."""
    fields = _field_names(model)
    if not fields or not isinstance(data, dict):
        return None
    for key, value in data.items():
        if key not in fields:
            return {"type": "extra_forbidden", "loc": (*loc, key), "msg": "extra inputs are not permitted", "input": value}
        annotation = getattr(fields[key], "type", None)
        if isinstance(annotation, type) and _field_names(annotation):
            found = _unknown_keys(annotation, value, (*loc, key))
            if found:
                return found
    return None


def read_config_file(path: str | os.PathLike, formats: Iterable[str] = ("json", "yaml")) -> dict[str, Any]:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None or fmt not in formats:
        raise ConfigError(f"{path}: unsupported config format {path.suffix!r}; use one of {', '.join('.' + f for f in formats)}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (check the path, or omit --config to use the defaults)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    import yaml

    try:
        data = (json.loads(text) if text.strip() else {}) if fmt == "json" else (yaml.safe_load(text) or {})
    except (ValueError, yaml.YAMLError) as exc:
        line = getattr(exc, "lineno", None) or getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" near line {line + (0 if fmt == 'json' else 1)}" if line is not None else ""
        raise ConfigError(f"{path}: not valid {fmt.upper()}{where}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values, not {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=3`` -> (["a", "b"], 3); values are parsed as YAML scalars/lists."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. learning_rate=0.001)")
    key, raw = item.split("=", 1)
    import yaml

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (int, float)) and ":" in raw:  # YAML 1.1 reads 3:4:5 as a base-60 number
        value = raw
    return key.strip().split("."), value


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise ConfigError(f"cannot set {'.'.join(keys)}: {key} is not a section")
    data[keys[-1]] = value


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_names(model: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(model):
        return {f.name: f for f in dataclasses.fields(model)}
    return dict(getattr(model, "model_fields", {}))


def _fields_at(model: type, loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = _field_names(current).get(part)
        annotation = getattr(field, "annotation", None) or getattr(field, "type", None)
        if not isinstance(annotation, type) or not _field_names(annotation):
            return []
        current = annotation
    return list(_field_names(current))


def _describe_error(model: type[BaseModel], err: dict[str, Any], source: str) -> str:
    loc = tuple(p for p in err["loc"] if not isinstance(p, int)) or ("<root>",)
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'{_suggest(str(loc[-1]), _fields_at(model, loc))}; valid keys: {', '.join(_fields_at(model, loc))}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    return f"{source}: key '{key}': {err['msg'].lower()} (got {err.get('input')!r})"


def load_config(
    schema: type[C],
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> C:
    """Read ``path`` (optional), apply ``overrides`` then ``sets`` (``key=value``), validate.

    ``None`` values in ``overrides`` are ignored, so click options left unset do not override.
    Nested keys use dots: ``training.learning_rate=0.001``.
    """
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, key.split("."), value)
    for item in sets:
        keys, value = parse_override(item)
        _set_path(data, keys, value)
    flag = _boolean_for_number(schema, data)
    if flag is not None:
        raise ConfigError(f"{source}: key '{flag}': a number is expected, not true/false")
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            config = schema.model_validate(data)
        else:
            unknown = _unknown_keys(schema, data)
            if unknown is not None:
                raise ConfigError(_describe_error(schema, unknown, source))
            config = _adapter(schema).validate_python(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe_error(schema, exc.errors()[0], source)) from None
    problem = _number_problem(config)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
    return config


SEED_RANGE = (0, 2**32 - 1)  # what numpy's and torch's generators accept


def _hints(model: Any) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(model)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: no check rather than a crash
        return {}


def _boolean_for_number(model: Any, data: Any, loc: tuple[str, ...] = ()) -> str | None:
    """The first key whose field is a number but whose value is true/false (pydantic would read 1/0)."""
    import typing

    if not isinstance(data, dict):
        return None
    hints = _hints(model)
    for key, value in data.items():
        choices = typing.get_args(hints.get(key)) or (hints.get(key),)
        if isinstance(value, bool) and bool not in choices and any(c in (int, float) for c in choices):
            return ".".join((*loc, key))
        nested = next((c for c in choices if isinstance(c, type) and _field_names(c)), None)
        if nested is not None and isinstance(value, dict):
            found = _boolean_for_number(nested, value, (*loc, key))
            if found:
                return found
    return None


def _number_problem(config: Any, loc: tuple[str, ...] = ()) -> str | None:
    """Non-finite floats (inf, nan, also given as strings) and seeds outside 0..2**32-1."""
    for name in _field_names(type(config)):
        value = getattr(config, name, None)
        key = ".".join((*loc, name))
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                return f"key '{key}': {item} is not a finite number"
        if (name == "seed" or name.endswith("_seed")) and isinstance(value, int) and not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
            return f"key '{key}': a seed must be between 0 and {SEED_RANGE[1]} (got {value})"
        if _field_names(type(value)):
            found = _number_problem(value, (*loc, name))
            if found:
                return found
    return None


RESUME_FREE = ("epochs", "training.epochs")  # how long to train: a resume may extend (or shorten) it


def resume_free_keys(config: Any) -> tuple[str, ...]:
    """Keys a resume may change: the length of training and, per schema (``resume_free`` on the
    class), paths that locate files but are no part of what was trained (output folders, inputs)."""
    return (*RESUME_FREE, *getattr(type(config), "resume_free", ()))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old value, new value) for every leaf that differs."""
    a, b = _flatten(old), _flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def config_json(config: Any) -> dict[str, Any]:
    """A config as plain JSON values: a pydantic model, a dataclass or a mapping."""
    import dataclasses

    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return dict(config)


def canonical_json(config: Any) -> str:
    data = config_json(config)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces): stable across processes."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def write_resolved_config(config: Any, directory: str | os.PathLike, name: str = "config.yaml") -> Path:
    """Write the fully resolved config (defaults filled) atomically next to the checkpoints."""
    path = Path(directory) / name
    data = config_json(config)
    if path.suffix == ".json":
        payload = (json.dumps(data, indent=2) + "\n").encode()
    else:
        import yaml

        payload = yaml.safe_dump(data, sort_keys=False).encode()
    atomic_write_bytes(path, payload)
    return path

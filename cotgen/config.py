"""Typed run configs: YAML files into dataclasses, `key=value` overrides, and the resolved copy.

A config class is a dataclass whose fields have defaults that work and one docstring line each;
nested sections are dataclasses too. Unknown keys and values of the wrong type are rejected with the
file and the dotted field name.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cotgen.errors import InputError

T = TypeVar("T")


def _check_value(value: Any, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, where)
            except InputError:
                continue
        raise InputError(f"{where}: expected {kind}, got {value!r}")
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return build_config(kind, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        key_kind, value_kind = typing.get_args(kind) or (Any, Any)
        return {_check_value(k, key_kind, f"{where} key {k!r}"): _check_value(v, value_kind, f"{where}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)[:1] or (Any,)
        items = [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        # YAML 1.1 reads exponents without a dot (`lr: 3e-4`) as strings
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    if kind is Any or (isinstance(kind, type) and isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise InputError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def check_device(device: str, name: str = "device") -> None:
    """A torch device a job may run on: cpu or cuda[:N]; `name` is the field that holds it."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise InputError(f"{name}: expected cpu or cuda[:N], got {device!r}")


def check_ray_device(device: str, name: str) -> None:
    """Where a Ray actor, replica or Train worker runs: cpu or cuda; Ray picks the GPU itself
    (CUDA_VISIBLE_DEVICES), so an index would be wrong."""
    if device not in ("cpu", "cuda"):
        raise InputError(f"{name}: expected cpu or cuda (Ray chooses the GPU), got {device!r}")


def check_resources(resources: dict[str, float], name: str) -> None:
    """Custom Ray resources that place work on chosen nodes: positive amounts, not the built-in ones."""
    for resource, amount in resources.items():
        if amount <= 0 or resource in ("CPU", "GPU", "memory"):
            raise InputError(f"{name}.{resource}: a custom resource with an amount above 0 (CPUs and GPUs have their own fields), got {amount}")  # fmt: skip


def build_config(cls: type[T], data: dict, where: str = "") -> T:
    """`cls` from a mapping (parsed YAML, JSON), validated; `where` prefixes the field names in errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        field_name = f"{where}.{unknown[0]}".lstrip(".")
        raise InputError(f"{field_name}: unknown field (known: {', '.join(sorted(names))})")
    values = {k: _check_value(v, hints[k], f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: {err}" if where else str(err)) from None


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise InputError(f"override {dotted}: {key} is not a section")
    data[leaf] = value


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] = ()) -> T:
    """Read `path` (YAML) into `cls`, apply `a.b=value` overrides (values parsed as YAML), validate."""
    data: dict = {}
    where = str(path) if path else cls.__name__
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except yaml.YAMLError as err:
            raise InputError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping at the top level")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"override {item!r}: expected key=value")
        _set_dotted(data, key, yaml.safe_load(raw))
    try:
        return build_config(cls, data)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def save_config(config: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

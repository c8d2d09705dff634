from dataclasses import dataclass, field

import pytest

from cotgen.config import load_config, save_config
from cotgen.errors import InputError


@dataclass
class Inner:
    minutes: float = 1.0
    sizes: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class Outer:
    out: str = "runs/x"
    seed: int = 0
    note: str | None = None
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self):
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


def test_defaults_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 3\ninner:\n  minutes: 2\n")
    cfg = load_config(Outer, path, ["inner.sizes=[4, 5]", "note=hello", "out=elsewhere"])
    assert cfg == Outer(out="elsewhere", seed=3, note="hello", inner=Inner(minutes=2.0, sizes=[4, 5]))
    assert isinstance(cfg.inner.minutes, float)
    assert load_config(Outer, None) == Outer()


def test_exponents_without_a_dot_are_floats(tmp_path):
    # YAML 1.1 (PyYAML) reads 3e-4 as the string "3e-4"
    path = tmp_path / "run.yaml"
    path.write_text("inner:\n  minutes: 3e-4\n")
    assert load_config(Outer, path).inner.minutes == 3e-4
    assert load_config(Outer, None, ["inner.minutes=2e1"]).inner.minutes == 20.0


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(Outer, None, ["seed=9", "inner.minutes=0.5"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Outer, tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("sed: 3\n", [], "run.yaml: sed: unknown field"),
        ("inner:\n  minutse: 3\n", [], "run.yaml: inner.minutse: unknown field"),
        ("seed: three\n", [], "run.yaml: seed: expected int, got 'three'"),
        ("inner:\n  sizes: [1, x]\n", [], "run.yaml: inner.sizes[1]: expected int"),
        ("seed: -1\n", [], "seed must be >= 0"),
        ("seed: [\n", [], "run.yaml: invalid YAML"),
        ("", ["seed"], "override 'seed': expected key=value"),
        ("", ["inner.minutes=soon"], "inner.minutes: expected float"),
        ("", ["inner.minutes=nan"], "inner.minutes: expected float"),
    ],
)
def test_bad_configs_name_file_and_field(tmp_path, text, overrides, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(Outer, path, overrides)
    assert message in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_config(Outer, tmp_path / "absent.yaml")

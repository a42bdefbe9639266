from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from isofield.config import from_dict, load_yaml, merge, to_dict
from isofield.errors import InputError


@dataclass
class Inner:
    lr: float = 1e-3
    schedule: Literal["constant", "step"] = "constant"


@dataclass
class Outer:
    name: str = "x"
    steps: Optional[int] = None
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)


def test_builds_nested_and_coerces_ints_to_floats():
    cfg = from_dict(Outer, {"steps": 5, "sizes": [3, 4], "inner": {"lr": 1}})
    assert cfg.steps == 5 and cfg.sizes == (3, 4)
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert to_dict(cfg) == {"name": "x", "steps": 5, "sizes": [3, 4], "inner": {"lr": 1.0, "schedule": "constant"}}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"stepz": 1}, "config: unknown key 'stepz'"),
        ({"inner": {"lrr": 1}}, "config.inner: unknown key 'lrr'"),
        ({"steps": "many"}, "config.steps: expected an integer"),
        ({"steps": True}, "config.steps: expected an integer"),
        ({"inner": {"schedule": "cosine"}}, "config.inner.schedule: must be one of 'constant', 'step'"),
        ({"sizes": 3}, "config.sizes: expected a list"),
    ],
)
def test_rejects_bad_keys_and_types(data, message):
    with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        from_dict(Outer, data)


def test_merge_is_recursive():
    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"c": 5}}) == {"a": {"b": 1, "c": 5}, "d": 3}


def test_load_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml: invalid YAML at line"):
        load_yaml(bad)
    with pytest.raises(InputError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(InputError, match="must be a mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_a_named_schedule_replaces_the_presets_whole():
    from isofield.fitting.config import resolve_config
    from isofield.methods import get_method

    igr = get_method("igr")
    config = resolve_config(igr.presets, [{"train": {"steps": 10, "schedule": {"name": "constant"}}}])
    assert config.train.schedule == {"name": "constant"}
    kept = resolve_config(igr.presets, [{"train": {"steps": 10, "lr": 1e-3}}])
    assert kept.train.schedule == {"name": "cosine", "end": 1.0, "final_factor": 0.02, "unit": "progress"} and kept.train.lr == 1e-3
    digs = get_method("digs")
    paper = resolve_config(digs.presets, [{"preset": "paper", "train": {"steps": 10},
                                          "options": {"divergence_schedule": {"name": "anneal", "start": 1, "end": 2}}}])
    assert paper.options["divergence_schedule"] == {"name": "anneal", "start": 1, "end": 2}
    assert paper.options["batch"] == 15000                # the preset's other options stay

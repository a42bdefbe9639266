"""The fit family's hooks (:mod:`isofield.registry`): single-shape fits (``isofield fit``), whose
runs ``isofield mesh`` and ``isofield slice`` sample."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from isofield.config import load_yaml, merge
from isofield.errors import InputError
from isofield.fitting.config import FitConfig, chosen_method, resolve_config as _resolve
from isofield.fitting.fit import fit, load_field, resume
from isofield.fitting.outputs import canonical_bounds
from isofield.fitting.rundir import RunDir
from isofield.methods import get_method, method_names
from isofield.nn import as_numpy_field
from isofield.registry import FamilyHooks, FieldSource
from isofield.runs import Run


def resolve_config(layers: list[Mapping[str, Any]]) -> FitConfig:
    """A fit's config from ``layers`` (lowest first) over the presets of their method."""
    merged: dict = {}
    for layer in layers:
        merged = merge(merged, layer)
    return _resolve(get_method(chosen_method(None, merged)).presets, layers)


def normals_option(method: str | None, config_file: str | Path | None, normals: str) -> dict[str, str]:
    """The ``options`` layer of ``isofield fit --normals NORMALS``: InputError unless the fit's
    method (``method``, else the config file's, else igr) has the ``normals`` option (igr)."""
    chosen = chosen_method(method, load_yaml(config_file) if config_file else {})
    if "normals" not in {option.name for option in fields(get_method(chosen).options_type)}:
        raise InputError(f"--normals: method {chosen} does not use normals (igr does); leave the flag out")
    return {"normals": normals}


def run_field(run: Run | str | Path) -> FieldSource:
    """The trained field of a fit (its weight average where it keeps one) as a NumPy field in
    the canonical frame, with the run's extraction bounds and normalisation."""
    root = run.root if isinstance(run, Run) else Path(run)
    run_dir = RunDir.open(root)
    config = run_dir.load_config()
    field = as_numpy_field(load_field(run_dir, config))
    return FieldSource(field, canonical_bounds(config), run_dir.load_normalization(), str(run_dir.root))


HOOKS = FamilyHooks(
    config_type=FitConfig,
    presets={name: get_method(name).presets for name in method_names()},
    resolve_config=resolve_config,
    train=fit,
    resume=resume,
    load=load_field,
    verbs={"mesh": run_field, "slice": run_field},
)

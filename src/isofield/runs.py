"""One way to open any run: :func:`open_run` reads a run directory's family once.

    >>> run = open_run("runs/chairs").require("reconstruct")
    >>> lines = run.hook("reconstruct")(run, "chair_0007", None, guard=..., steps=800, ...)

A run's family comes from the ``method`` of its ``config.yaml`` (:data:`isofield.registry.FAMILIES`;
a config without one is a DeepSDF run where ``shapes.json`` exists, else a fit), and its marker
files must be there. Reading it imports no torch: the family's hooks are imported by
:attr:`Run.hooks` on first use. :func:`train_run` and :func:`resume_run` start and continue a
run of any family that trains from a config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

from isofield.config import load_yaml
from isofield.errors import InputError
from isofield.registry import Family, FamilyHooks, family_named, family_of_method, refusal

CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class Run:
    """An opened run directory.

    Attributes:
        root: the run directory.
        family: its row of the family table.
        config: its ``config.yaml`` as read (a mapping; the family's hooks validate it).
    """

    root: Path
    family: Family
    config: Mapping[str, Any]

    @cached_property
    def hooks(self) -> FamilyHooks:
        """The family's hooks (imports its package)."""
        return self.family.hooks()

    def require(self, verb: str) -> "Run":
        """This run, if its family supports ``verb``; else a one-line InputError saying which
        families do and what to use instead."""
        if not self.family.supports(verb):
            raise InputError(refusal(str(self.root), self.family, verb))
        return self

    def hook(self, verb: str) -> Callable[..., Any]:
        """The family's hook of ``verb`` (after :meth:`require`)."""
        self.require(verb)
        return self.hooks.verbs[verb]


def open_run(path: str | Path) -> Run:
    """The run in ``path``; a folder without a readable ``config.yaml``, with an unknown
    ``method`` or without its family's marker files is a one-line InputError naming it."""
    root = Path(path)
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(f"{root}: not an isofield training run (no {CONFIG_NAME})")
    config = load_yaml(config_path)
    family = _family(root, config, config_path)
    missing = [name for name in family.markers if not (root / name).is_file()]
    if missing:
        raise InputError(f"{root}: {family.title} without {' and '.join(missing)} "
                         f"(training did not get that far)")
    return Run(root, family, config)


def _family(root: Path, config: Mapping[str, Any], config_path: Path) -> Family:
    if "method" in config:
        return family_of_method(config["method"], str(config_path))
    return family_named("deepsdf" if (root / "shapes.json").is_file() else "fit")


def config_family(config: str | Path | Mapping[str, Any]) -> Family:
    """The family of a training config (a YAML file or a mapping): its ``method``, by default
    ``deepsdf``, as ``isofield train`` reads it."""
    where = str(config) if isinstance(config, (str, Path)) else "config"
    layer = load_yaml(config) if isinstance(config, (str, Path)) else config
    return family_of_method(layer.get("method", "deepsdf"), where)


def train_run(config: str | Path | Mapping[str, Any], output: str | Path, **options: Any) -> Any:
    """Train a run of the config's family into ``output`` (``options``: the family's train
    keywords: ``overrides``, ``exit_after``, ``progress``); returns its training result."""
    family = config_family(config)
    if not family.supports("train"):
        raise InputError(f"{config}: the method of a single-shape fit; start it with "
                         f"`isofield fit INPUT --config {config}`")
    return family.hooks().train(config, output, **options)


def resume_run(path: str | Path, **options: Any) -> Any:
    """Continue the run in ``path`` from its latest checkpoint (``options``: ``steps``,
    ``time_budget``, ``exit_after``, ``progress``); a fit is refused (``isofield fit --resume``)."""
    run = open_run(path).require("train")
    return run.hooks.resume(run.root, **options)

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
from typing import Any, Callable, Mapping, NamedTuple

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


def resume_run(path: str | Path, *, steps: int | None = None, time_budget: float | None = None,
               **options: Any) -> Any:
    """Continue the run in ``path`` from its latest checkpoint (``steps`` / ``time_budget``
    replace its limits; ``options``: ``device``, ``exit_after``, ``progress``); a fit is refused
    (``isofield fit --resume``). A run that already reached its limits, resumed without new
    ones, is not trained again; its outputs are written if the run stopped before its report,
    else the result is a :class:`FinishedRun`."""
    run = open_run(path).require("train")
    if steps is None and time_budget is None:
        finished = _finished(run)
        if finished is not None:
            return finished
    return run.hooks.resume(run.root, steps=steps, time_budget=time_budget, **options)


ALREADY_FINISHED = "already-finished"
"""The reason of a resumed run that had already reached its limits: nothing was trained."""


class FinishedRun(NamedTuple):
    """A run that had reached its limits when it was resumed (its latest checkpoint's step,
    seconds of training and schedule progress)."""

    run_dir: Path
    step: int
    elapsed: float
    progress: float
    reason: str = ALREADY_FINISHED


def _finished(run: Run) -> FinishedRun | None:
    """The run's :class:`FinishedRun` when its latest checkpoint reached the end of its
    schedule and its report was written, else None (no checkpoint yet, stopped before its
    end, or stopped while writing its outputs: resuming then writes them)."""
    from isofield.train.checkpoint import load_checkpoint
    from isofield.train.rundir import RunDirectory

    directory = RunDirectory(run.root)
    path = directory.checkpoint_path
    if not path.is_file() or not directory.report_path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint.progress < 1:
        return None
    return FinishedRun(run.root, checkpoint.step, checkpoint.elapsed, checkpoint.progress)


def describe_finished(result: Any) -> str:
    """``RUN already finished at step N (of 500 steps, 102 s of 120 s); ...``: what resuming a
    finished run says (``result``: a run directory's training result, reason
    :data:`ALREADY_FINISHED`)."""
    train = open_run(result.run_dir).config.get("train") or {}
    limits = []
    if train.get("steps") is not None:
        limits.append(f"of {train['steps']} {train.get('unit', 'steps')}")
    if train.get("time_budget") is not None:
        limits.append(f"{result.elapsed:.0f} s of {train['time_budget']:g} s")
    return (f"{result.run_dir} already finished at step {result.step} ({', '.join(limits)}); "
            f"give a larger --steps or --time-budget to train on")

"""The model families and what each one does: one table, read without importing torch.

A *family* is a kind of run directory with its own config, training and verbs:

======== ============================================ ===================================
family   ``method`` values in its ``config.yaml``     hook module (``HOOKS``)
======== ============================================ ===================================
fit      igr, sdf, sal, sald, digs (``isofield fit``) ``isofield.fitting.family``
deepsdf  deepsdf (``isofield train``)                 ``isofield.deepsdf.family``
occupancy onet, convonet, sald-vae                    ``isofield.occupancy.family``
shapegf  shapegf                                      ``isofield.shapegf.family``
======== ============================================ ===================================

The table (:data:`FAMILIES`) names each family's methods, the files that mark one of its runs,
its evaluation protocols and the commands (*verbs*) it supports; the code behind a family is its
hook module, imported on first use (:meth:`Family.hooks`), whose ``HOOKS`` is a
:class:`FamilyHooks`. :func:`isofield.runs.open_run` reads a run's family from its config;
``run.require(verb)`` refuses, in one line, a verb its family does not support.

Verb hooks (``FamilyHooks.verbs[verb]``) take the opened run first, then keyword arguments,
and return the lines a command prints (``evaluate`` returns an evaluation record instead):

- ``mesh`` / ``slice``: ``(run) -> FieldSource`` (the field the command samples);
- ``reconstruct``: ``(run, shape, output, *, guard, steps, resolution, seed)``;
- ``complete``: ``(run, points, output, *, frame, resolution, seed, **options)``;
- ``interpolate``: ``(run, a, b, *, count, output, guard, resolution)``;
- ``generate``: ``(run, output, *, count, seed, **options)``;
- ``upsample``: ``(run, points, output, *, count, mesh, resolution, seed)``;
- ``evaluate``: ``(run, *, protocol, split, data, out_dir, seed, progress, guard, **options)
  -> dict`` (the content of ``results.json``, written by the hook after ``guard(results path)``
  once the options are checked; see :mod:`isofield.evaluation`).

``options`` are a command's family-specific flags; a hook refuses those it does not use with
:func:`refuse_unused` (one line naming the flags).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field as _field
from typing import Any, Callable, Mapping, NamedTuple

from isofield.errors import InputError

TRAIN_VERBS = ("fit", "train")
"""The commands that train and resume runs: ``fit`` for single-shape fits, ``train`` for the
families trained on a dataset from a config file."""


@dataclass(frozen=True)
class FamilyHooks:
    """What a family's hook module provides (its ``HOOKS``).

    Attributes:
        config_type: the dataclass stored in a run's ``config.yaml``.
        presets: the named presets of its config (``preset: NAME``), by name (for the fit
            family: by method, then name).
        resolve_config: config layers (mappings, lowest first) -> a validated ``config_type``.
        train: starts a run (``fit(input, ...)`` for fits, ``(config, output, *, overrides,
            exit_after, progress)`` for the others); returns a training result with ``run_dir``,
            ``reason``, ``step``, ``elapsed`` and ``progress``.
        resume: ``(run_dir, *, steps, time_budget, exit_after, progress, ...)``: continues a run.
        load: ``(run_dir) -> the trained model`` (a fit's field, a ShapeSpace, ...).
        verbs: the verb hooks (see the module notes), by verb.
    """

    config_type: type
    presets: Mapping[str, Any]
    resolve_config: Callable[[list[Mapping[str, Any]]], Any]
    train: Callable[..., Any]
    resume: Callable[..., Any]
    load: Callable[[Any], Any]
    verbs: Mapping[str, Callable[..., Any]] = _field(default_factory=dict)


class FieldSource(NamedTuple):
    """A field a command samples: ``field(points (N, 3) float32) -> (N,)`` in the canonical
    frame, its canonical ``bounds`` ((3,), (3,)), the ``normalization`` to user coordinates and
    a ``name`` for messages."""

    field: Callable[[Any], Any]
    bounds: tuple[tuple[float, ...], tuple[float, ...]]
    normalization: Any
    name: str


@dataclass(frozen=True)
class Family:
    """One row of :data:`FAMILIES` (see the module notes).

    Attributes:
        name: the family's name in messages ("fit", "deepsdf", ...).
        methods: the ``method`` values of its configs.
        markers: files every run of the family holds besides ``config.yaml``.
        hooks_module: the import path of its hook module.
        verbs: the commands that work on its runs (``fit`` / ``train`` train and resume them).
        protocols: its evaluation protocols, the default first (``evaluate --mode``).
        hints: what to use instead of a verb it does not support, by verb.
    """

    name: str
    methods: tuple[str, ...]
    markers: tuple[str, ...]
    hooks_module: str
    verbs: tuple[str, ...]
    protocols: tuple[str, ...] = ()
    hints: Mapping[str, str] = _field(default_factory=dict)

    def hooks(self) -> FamilyHooks:
        """The family's :class:`FamilyHooks` (imports its hook module, and torch)."""
        return importlib.import_module(self.hooks_module).HOOKS

    def supports(self, verb: str) -> bool:
        return verb in self.verbs

    @property
    def title(self) -> str:
        """``a fit run``, ``an occupancy run``: the family in a sentence."""
        article = "an" if self.name[0] in "aeiou" else "a"
        return f"{article} {self.name} run"


FAMILIES: tuple[Family, ...] = (
    Family(
        name="fit",
        methods=("igr", "sdf", "sal", "sald", "digs"),
        markers=(),
        hooks_module="isofield.fitting.family",
        verbs=("fit", "mesh", "slice"),
        hints={
            "train": "resume a fit with `isofield fit --resume`",
            "evaluate": "a fit is measured against its reference when it finishes (metrics.json); "
                        "compare its mesh with `isofield eval RUN/mesh.ply REFERENCE`",
            "complete": "a fit holds one shape: fit the partial points themselves with `isofield fit`",
            "reconstruct": "a fit holds one shape: its mesh is RUN/mesh.ply, or `isofield mesh RUN`",
            "upsample": "sample its mesh with `isofield sample --kind surface`",
        },
    ),
    Family(
        name="deepsdf",
        methods=("deepsdf",),
        markers=("shapes.json",),
        hooks_module="isofield.deepsdf.family",
        verbs=("train", "evaluate", "complete", "reconstruct", "interpolate"),
        protocols=("reconstruct", "complete", "codes"),
        hints={
            "fit": "resume a deepsdf run with `isofield train --resume`",
            "mesh": "for a deepsdf shape use `isofield reconstruct`, or `isofield interpolate` "
                    "between training shapes",
            "slice": "mesh a deepsdf shape with `isofield reconstruct` first",
            "generate": "a deepsdf space has no latent model: use `isofield interpolate`",
        },
    ),
    Family(
        name="occupancy",
        methods=("onet", "convonet", "sald-vae"),
        markers=("shapes.json",),
        hooks_module="isofield.occupancy.family",
        verbs=("train", "evaluate", "complete", "generate"),
        protocols=("onet",),
        hints={
            "fit": "resume an occupancy run with `isofield train --resume`",
            "mesh": "an occupancy network meshes its input: `isofield complete RUN POINTS`, or "
                    "`isofield generate` for a VAE",
            "slice": "mesh a shape with `isofield complete RUN POINTS` first",
            "reconstruct": "use `isofield complete RUN POINTS` (one pass of its encoder)",
        },
    ),
    Family(
        name="shapegf",
        methods=("shapegf",),
        markers=("shapes.json",),
        hooks_module="isofield.shapegf.family",
        verbs=("train", "evaluate", "generate", "upsample"),
        protocols=("autoencode",),
        hints={
            "fit": "resume a shapegf run with `isofield train --resume`",
            "mesh": "mesh a shape's field with `isofield upsample RUN POINTS --mesh MESH`",
            "slice": "mesh a shape's field with `isofield upsample RUN POINTS --mesh MESH`",
            "complete": "encode the points and sample the surface with `isofield upsample`",
            "reconstruct": "use `isofield upsample RUN POINTS --mesh MESH`",
        },
    ),
)


def family_named(name: str) -> Family:
    """The family called ``name``; KeyError for an unknown one (a programming error)."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(name)


def family_of_method(method: object, where: str) -> Family:
    """The family whose configs have ``method: <method>``; an unknown one is an InputError
    naming ``where`` (the config file) and every known method."""
    for family in FAMILIES:
        if method in family.methods:
            return family
    known = ", ".join(m for family in FAMILIES for m in family.methods)
    raise InputError(f"{where}: method: unknown method {method!r} (known: {known})")


def families_supporting(verb: str) -> list[Family]:
    return [family for family in FAMILIES if family.supports(verb)]


def refusal(where: str, family: Family, verb: str) -> str:
    """The one-line message for ``verb`` on a run of ``family`` that does not support it."""
    names = [f.name for f in families_supporting(verb)]
    which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    hint = family.hints.get(verb)
    return (f"{where}: {family.title}; `isofield {verb}` works on {which} runs"
            + (f" ({hint})" if hint else ""))


def refuse_unused(options: Mapping[str, Any], used: tuple[str, ...] = (),
                  neutral: Mapping[str, Any] | None = None) -> None:
    """InputError naming the flags among ``options`` (by keyword: ``free_space`` is
    ``--free-space``) that were given although this kind of run does not use them (not in
    ``used``); a value of None, False, 0 or ``neutral[key]`` counts as not given."""
    neutral = neutral or {}
    given = [f"--{key.replace('_', '-')}" for key, value in options.items()
             if key not in used and value not in (None, False, 0)
             and not (key in neutral and value == neutral[key])]
    if given:
        raise InputError(f"{', '.join(given)}: not used by this kind of run")

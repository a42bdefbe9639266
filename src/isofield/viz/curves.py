"""Training curves: one line per loss term against the step, log-scale y, and the learning rate
in a second panel when it was logged and changed (a rate that never changes is named under the
loss panel instead).

A history is either a mapping ``term -> sequence of (step, value)`` or the path of a CSV file
with a header ``step,<term1>,<term2>,...`` (empty cells allowed: terms logged at different
steps). Columns or keys named ``lr`` or ``lr_<group>`` are learning rates (the trainer's
``losses.csv`` logs one per parameter group).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from isofield.errors import InputError
from isofield.viz.figures import axes_at, save_figure

Series = tuple[np.ndarray, np.ndarray]  # (steps (K,), values (K,)), float64
LR_NAME = "lr"
LR_PREFIX = "lr_"
ROLLBACKS_NAME = "rollbacks"
PROGRESS_NAME = "progress"
SCHEDULE_PREFIX = "schedule_"
# Above this many points a term is drawn faint and a running geometric mean on top of it.
_SMOOTH_ABOVE = 200
# The figure is _WIDTH inches wide. Room around the panels, in inches: y tick labels of a log
# axis ("2x10^-1") and the axis label on the left, the title on top, the step axis below, and
# between the two panels; the panels' heights.
_WIDTH = 7.5
_MARGINS = {"left": 1.0, "right": 0.2, "top": 0.4, "bottom": 0.55, "between": 0.15}
_LOSS_HEIGHT, _LR_HEIGHT = 3.55, 1.35


def read_history_csv(path: str | os.PathLike) -> dict[str, Series]:
    """Read a history CSV (header ``step,<term>,...``) into ``term -> (steps, values)``.

    Empty cells are skipped; anything else that is not a number is an :class:`InputError`. A
    last line without its newline (a run killed mid-write) is ignored.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read loss history ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: loss history is not UTF-8 text") from None
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete (or empty)
    rows = list(csv.reader(lines))
    if not rows or "step" not in rows[0]:
        raise InputError(f"{path}: loss history needs a header with a 'step' column")
    header = [name.strip() for name in rows[0]]
    step_column = header.index("step")
    columns: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in header if n != "step"}
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        step = _number(row[step_column] if step_column < len(row) else "", path, line_number, "step")
        for name, cell in zip(header, row):
            if name != "step" and cell.strip():
                columns[name][0].append(step)
                columns[name][1].append(_number(cell, path, line_number, name))
    return {
        name: (np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64))
        for name, (steps, values) in columns.items()
    }


def plot_loss_curves(
    history: Mapping[str, Sequence[tuple[float, float]]] | str | os.PathLike,
    path: str | os.PathLike,
    title: str | None = None,
    terms: Sequence[str] | None = None,
) -> None:
    """Plot loss terms against the step (log y) and write a PNG to ``path``
    (the figure of :func:`loss_curves_figure`)."""
    save_figure(loss_curves_figure(history, title, terms), path)


def loss_curves_figure(
    history: Mapping[str, Sequence[tuple[float, float]]] | str | os.PathLike,
    title: str | None = None,
    terms: Sequence[str] | None = None,
) -> Figure:
    """Loss terms against the step (log y).

    ``terms`` selects the columns to draw (default: all but ``step``, the learning rates, the
    ``rollbacks`` count and the trainer's schedule position: ``progress``, ``schedule_<name>``). A log axis cannot show zero or negative values: they are left out (the
    line breaks there), and the legend entry of a term says how many were left out ("3 values
    <= 0 not shown"). Terms with more than 200 points are drawn faint with a running geometric
    mean on top. Learning-rate series (``lr``, ``lr_<group>``), if present and not all constant,
    are drawn in a second panel below (log y, shared step axis); constant ones are only named in
    the step axis label ("step (learning rate 0.001 throughout)"). The trainer's ``rollbacks``
    count (loss-spike rollbacks) is drawn as a dotted vertical line at each logged step where it
    grew.
    """
    series = read_history_csv(history) if isinstance(history, (str, os.PathLike)) else _from_mapping(history)
    rates = [n for n in series if _is_learning_rate(n)]
    names = [n for n in series if n not in rates and not _is_position(n)] if terms is None else list(terms)
    constant = _constant_rates(series, rates)
    if constant is not None:
        rates = []   # nothing to draw: named in the step axis label
    unknown = [n for n in names if n not in series]
    if unknown:
        raise InputError(f"plot_loss_curves: unknown loss terms {unknown}; the history has {sorted(series)}")
    if not names:
        raise InputError("plot_loss_curves: the history has no loss terms to plot")
    figure = _figure(with_lr_panel=bool(rates))
    loss_ax = figure.axes[0]
    for index, name in enumerate(names):
        _plot_positive(loss_ax, *series[name], name, f"C{index % 10}")
    if ROLLBACKS_NAME in series:
        _mark_rollbacks(loss_ax, *series[ROLLBACKS_NAME])
    loss_ax.set_ylabel("loss")
    loss_ax.set_title(title or "training losses")
    loss_ax.legend(fontsize=8, loc="upper right")
    if rates:
        lr_ax = figure.axes[1]
        for index, name in enumerate(rates):
            color = "0.3" if len(rates) == 1 else f"C{index % 10}"
            _plot_positive(lr_ax, *series[name], name.removeprefix(LR_PREFIX), color, smooth=False)
        if len(rates) > 1:
            lr_ax.legend(fontsize=8, loc="upper right")
        lr_ax.set_ylabel("learning rate")
        lr_ax.set_xlabel("step")
    else:
        loss_ax.set_xlabel("step" if not constant else f"step ({constant} throughout)")
    return figure


def _constant_rates(series: Mapping[str, Series], rates: Sequence[str]) -> str | None:
    """When every learning-rate series in ``rates`` holds one value: their text ("learning rate
    0.001", "learning rates decoder 0.001, latent 0.01"), "" without rates; else None."""
    values = {}
    for name in rates:
        finite = np.unique(series[name][1][np.isfinite(series[name][1])])
        if len(finite) > 1:
            return None
        if len(finite):
            values[name.removeprefix(LR_PREFIX)] = f"{finite[0]:.3g}"
    if len(values) == 1:
        return f"learning rate {next(iter(values.values()))}"
    return ("learning rates " + ", ".join(f"{k} {v}" for k, v in values.items())) if values else ""


def _is_position(name: str) -> bool:
    """A log column that is not a loss: the rollback count, the run's progress, a schedule value."""
    return name in (ROLLBACKS_NAME, PROGRESS_NAME) or name.startswith(SCHEDULE_PREFIX)


def _mark_rollbacks(ax: object, steps: np.ndarray, counts: np.ndarray) -> None:
    """A dotted vertical line at each logged step where the rollback count grew."""
    order = np.argsort(steps, kind="stable")
    steps, counts = steps[order], counts[order]
    grew = steps[1:][np.diff(counts) > 0]     # the first row has none: no rollback at step 0
    for index, step in enumerate(grew):
        label = f"loss-spike rollback ({int(counts.max())})" if index == 0 else None
        ax.axvline(step, color="0.45", linestyle=":", linewidth=0.8, label=label)


def _is_learning_rate(name: str) -> bool:
    return name == LR_NAME or name.startswith(LR_PREFIX)


def _plot_positive(
    ax: object, steps: np.ndarray, values: np.ndarray, name: str, color: str, smooth: bool = True
) -> None:
    """Draw the positive, finite part of one series on a log axis, labelled with what was dropped.

    Dropped values break the line (no segment is drawn across them).
    """
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    keep = np.isfinite(values) & (values > 0)
    dropped = int(np.count_nonzero(~keep & ~np.isnan(values)))
    label = name if not dropped else f"{name} ({dropped} value{'s' if dropped > 1 else ''} <= 0 not shown)"
    if not keep.any():
        ax.plot([], [], color=color, label=f"{name} (no positive values)")
        return
    shown = np.where(keep, values, np.nan)
    if smooth and keep.sum() > _SMOOTH_ABOVE:
        ax.plot(steps, shown, color=color, alpha=0.25, linewidth=0.8)
        window = max(5, int(keep.sum()) // 50)
        kernel = np.ones(window) / window
        mean_log = np.convolve(np.log(values[keep]), kernel, mode="valid")
        centre = np.convolve(steps[keep], kernel, mode="valid")
        ax.plot(centre, np.exp(mean_log), color=color, linewidth=1.6, label=label)
    else:
        ax.plot(steps, shown, color=color, linewidth=1.4, label=label, marker="." if steps.size < 30 else None)
    ax.set_yscale("log")


def _figure(with_lr_panel: bool) -> Figure:
    """A figure with the loss axes (and a smaller learning-rate axes below, sharing x), laid
    out in inches (:data:`_MARGINS`)."""
    margin = _MARGINS
    height = margin["bottom"] + _LOSS_HEIGHT + margin["top"] + (_LR_HEIGHT + margin["between"] if with_lr_panel else 0.0)
    figure = Figure(figsize=(_WIDTH, height))
    FigureCanvasAgg(figure)
    width = _WIDTH - margin["left"] - margin["right"]
    axes = [axes_at(figure, margin["left"], height - margin["top"] - _LOSS_HEIGHT, width, _LOSS_HEIGHT)]
    if with_lr_panel:
        axes.append(axes_at(figure, margin["left"], margin["bottom"], width, _LR_HEIGHT, sharex=axes[0]))
        axes[0].tick_params(labelbottom=False)
    for ax in axes:
        ax.grid(True, which="major", alpha=0.5)
        ax.grid(True, which="minor", alpha=0.15)
    return figure


def _from_mapping(history: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, Series]:
    """``term -> (steps, values)`` float64 arrays from ``term -> [(step, value), ...]``."""
    if not isinstance(history, Mapping):
        raise InputError(f"loss history must be a mapping or a CSV path, got {type(history).__name__}")
    series = {}
    for name, pairs in history.items():
        try:
            array = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise InputError(f"loss history term {name!r}: expected a sequence of (step, value) pairs") from None
        series[str(name)] = (array[:, 0], array[:, 1])
    return series


def _number(cell: str, path: Path, line_number: int, column: str) -> float:
    """``float(cell)`` or an InputError naming the file, line and column."""
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{path}:{line_number}: column '{column}' is not a number: {cell!r}") from None
    if column == "step" and not math.isfinite(value):
        raise InputError(f"{path}:{line_number}: step is not finite: {cell!r}")
    return value

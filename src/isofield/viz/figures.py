"""matplotlib figure plumbing shared by the pictures: axes placed in inches, and atomic saving.

The fit's figures are laid out by hand in inches (:func:`axes_at`) rather than by matplotlib's
constrained layout: their contents have fixed sizes (panels, tick labels of short numbers, one
line of title), and the layout engine measured every text of the figure twice per save (on the
kitten's fit, 0.28 of slices.png's 0.67 s; ``docs/fit-ablations.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from isofield.errors import InputError
from isofield.files import atomic_path

# zlib level of the PNGs: 3 encodes slices.png 2.2x faster than matplotlib's 6, for 15% more bytes
PNG_COMPRESS_LEVEL = 3


def axes_at(figure: Figure, left: float, bottom: float, width: float, height: float, **options: object) -> Axes:
    """Axes whose box starts ``left`` and ``bottom`` inches from the figure's lower-left corner,
    ``width`` x ``height`` inches (``options``: those of ``Figure.add_axes``)."""
    figure_width, figure_height = figure.get_size_inches()
    return figure.add_axes((left / figure_width, bottom / figure_height, width / figure_width,
                            height / figure_height), **options)


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write a matplotlib figure to ``path`` (PNG unless the suffix says otherwise), atomically.

    The image is exactly ``figure.get_size_inches() * dpi`` pixels (the figures are laid out to
    fit, nothing is trimmed).
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise InputError(f"{path}: unknown picture format {suffix!r} (use one of: {', '.join(sorted(supported))})")
    options = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if suffix == "png" else {}
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format=suffix, **options)

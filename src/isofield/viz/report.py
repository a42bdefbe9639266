"""A run's HTML report: one self-contained page (inline CSS, no JavaScript, no external
resources) with metrics tables, figures, notes, the resolved config and timings.

Build it section by section, in the order they should appear::

    Report("igr on bunny").add_metrics("evaluation", {"chamfer_l1": 0.0042}) \\
        .add_figure("figures/loss.png", "training losses").add_config(config).write(run_dir / "report.html")

Every piece of text is HTML-escaped. Figures and linked pages (the interactive 3-D views of
:mod:`isofield.viz.viewer`, which do use JavaScript) are referenced by paths relative to the
report's folder and must lie inside it, so the run directory can be moved or archived as one unit.
"""

from __future__ import annotations

import datetime
import html
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import yaml

from isofield._version import __version__
from isofield.errors import InputError
from isofield.files import write_text_atomic

REPORT_NAME = "report.html"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1200px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; color: #333; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .95em; }
th, td { border: 1px solid #ddd; padding: .3em .8em; text-align: left; }
th { background: #f2f4f7; }
tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92em; margin-top: .3em; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: .8em 1em; overflow-x: auto;
      font-size: .88em; line-height: 1.35; }
footer { margin-top: 3em; color: #888; font-size: .85em; border-top: 1px solid #eee; padding-top: .5em; }
"""


def format_value(value: object) -> str:
    """A readable string for a table cell: integers with thousands separators; floats with four
    significant digits, rounded to integers with separators from 1e4 to 1e6, and in scientific
    notation below 1e-3 or from 1e6 up; booleans as yes/no."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "∞" if number > 0 else "-∞"
        if number == 0.0:
            return "0"
        if 1e-3 <= abs(number) < 1e4:
            return f"{number:.4g}"
        if 1e4 <= abs(number) < 1e6:
            return f"{number:,.0f}"
        return f"{number:.3e}"
    return str(value)


def format_duration(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class _Figure:
    path: Path
    caption: str


class Report:
    """An HTML report built from sections; each ``add_*`` returns the report for chaining."""

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = str(title)
        self.subtitle = subtitle
        self._sections: list[tuple[str, str, object]] = []  # (kind, heading, payload)

    def add_text(self, text: str, heading: str | None = None) -> "Report":
        """Paragraphs of plain text (blank lines separate paragraphs)."""
        self._sections.append(("text", heading or "", str(text)))
        return self

    def add_metrics(self, name: str, metrics: Mapping[str, object]) -> "Report":
        """A two-column table ``metric | value``; give units in the key (``"chamfer_l1 (m)"``)."""
        if not isinstance(metrics, Mapping):
            raise InputError(f"add_metrics({name!r}): metrics must be a mapping, got {type(metrics).__name__}")
        self._sections.append(("metrics", name, dict(metrics)))
        return self

    def add_table(
        self, name: str, rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None
    ) -> "Report":
        """A table with one row per mapping (e.g. one per shape); ``columns`` default to the
        keys in order of first appearance; missing cells stay empty."""
        rows = [dict(row) for row in rows]
        if columns is None:
            columns = list(dict.fromkeys(key for row in rows for key in row))
        self._sections.append(("table", name, (list(columns), rows)))
        return self

    def add_figure(self, path: str | os.PathLike, caption: str = "", heading: str | None = None) -> "Report":
        """An image (PNG, ...); a relative ``path`` is relative to the report's folder."""
        self._sections.append(("figure", heading or "", _Figure(Path(path), str(caption))))
        return self

    def add_links(self, heading: str, links: Sequence[tuple[str | os.PathLike, str]]) -> "Report":
        """A list of links ``(path, text)`` to files in the report's folder (e.g. 3-D views)."""
        self._sections.append(("links", heading, [(Path(path), str(text)) for path, text in links]))
        return self

    def add_config(self, config: Mapping[str, object] | str, heading: str = "Resolved config") -> "Report":
        """The config as YAML (a mapping is dumped in key order; a string is shown as is)."""
        text = config if isinstance(config, str) else yaml.safe_dump(
            _plain(config), sort_keys=False, default_flow_style=None, allow_unicode=True
        )
        self._sections.append(("pre", heading, text))
        return self

    def add_timings(self, timings: Mapping[str, float], heading: str = "Timings") -> "Report":
        """A table ``stage | duration`` from seconds."""
        rows = {stage: format_duration(seconds) for stage, seconds in timings.items()}
        self._sections.append(("metrics", heading, rows))
        return self

    def add_closing(self, figures: Sequence[tuple[str | os.PathLike, str]] = (),
                    timings: Mapping[str, float] | None = None,
                    config: Mapping[str, object] | str | None = None) -> "Report":
        """The sections every report ends with, in this order: the figures (``(path,
        caption)`` pairs), the timings and the config (each left out when empty)."""
        for path, caption in figures:
            self.add_figure(path, caption)
        if timings:
            self.add_timings(timings)
        if config is not None:
            self.add_config(config)
        return self

    def render(self, folder: str | os.PathLike) -> str:
        """The HTML page, with figure paths made relative to ``folder`` (checked to exist there)."""
        folder = Path(folder)
        parts = [f"<h1>{_esc(self.title)}</h1>"]
        if self.subtitle:
            parts.append(f"<p>{_esc(self.subtitle)}</p>")
        for kind, heading, payload in self._sections:
            if heading:
                parts.append(f"<h2>{_esc(heading)}</h2>")
            parts.append(_RENDERERS[kind](payload, folder))
        return _page(self.title, "\n".join(parts))

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page atomically to ``path``, or to ``path/report.html`` when ``path`` does
        not end in ``.html``/``.htm`` (a run directory); returns the file written."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            path = path / REPORT_NAME
        write_text_atomic(path, self.render(path.parent))
        return path


def write_report(
    run_dir: str | os.PathLike,
    title: str,
    metrics: Mapping[str, object] | None = None,
    figures: Sequence[tuple[str | os.PathLike, str]] = (),
    config: Mapping[str, object] | str | None = None,
    timings: Mapping[str, float] | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``run_dir/report.html`` with the usual sections in the usual order; returns its path.

    ``figures``: ``(path, caption)`` pairs, paths relative to ``run_dir``.
    """
    report = Report(title)
    if notes:
        report.add_text(notes)
    if metrics:
        report.add_metrics("Metrics", metrics)
    return report.add_closing(figures, timings, config).write(Path(run_dir) / REPORT_NAME)


# --- HTML pieces ---------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: object) -> str:
    numeric = isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{_esc(format_value(value))}</td>"


def _metrics_html(metrics: Mapping[str, object], folder: Path) -> str:
    rows = "".join(f"<tr><th>{_esc(key)}</th>{_cell(value)}</tr>" for key, value in metrics.items())
    return f"<table>{rows}</table>"


def _table_html(payload: tuple[list[str], list[dict]], folder: Path) -> str:
    columns, rows = payload
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c, "")) for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _relative(path: Path, folder: Path, what: str) -> str:
    """``path`` (absolute, relative to ``folder``, or else relative to the working directory, as
    a run's own paths are when the user named the run folder relatively) as a POSIX path
    relative to ``folder``; InputError when it does not exist or lies outside."""
    absolute = path if path.is_absolute() else folder / path
    if not absolute.is_file() and not path.is_absolute() and path.is_file():
        absolute = path.resolve()
    if not absolute.is_file():
        raise InputError(f"report {what} {absolute} does not exist")
    try:
        return absolute.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        raise InputError(f"report {what} {absolute} is outside the report folder {folder}") from None


def _figure_html(figure: _Figure, folder: Path) -> str:
    relative = _relative(figure.path, folder, "figure")
    caption = f"<figcaption>{_esc(figure.caption)}</figcaption>" if figure.caption else ""
    return f'<figure><img src="{_esc(relative)}" alt="{_esc(figure.caption)}">{caption}</figure>'


def _links_html(links: list[tuple[Path, str]], folder: Path) -> str:
    items = "".join(f'<li><a href="{_esc(_relative(path, folder, "link"))}">{_esc(text)}</a></li>'
                    for path, text in links)
    return f"<ul>{items}</ul>"


def _text_html(text: str, folder: Path) -> str:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{_esc(p)}</p>" for p in paragraphs)


def _pre_html(text: str, folder: Path) -> str:
    return f"<pre>{_esc(text)}</pre>"


_RENDERERS = {
    "metrics": _metrics_html,
    "table": _table_html,
    "figure": _figure_html,
    "links": _links_html,
    "text": _text_html,
    "pre": _pre_html,
}


def _page(title: str, body: str) -> str:
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>isofield {_esc(__version__)}, written {_esc(stamp)}</footer>\n</body>\n</html>\n"
    )


def _plain(value: object) -> object:
    """Config values as plain YAML types (NumPy scalars/arrays, paths, tuples converted)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

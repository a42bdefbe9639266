"""The CSV loss log of a training run (``losses.csv``).

One row per logged step: ``step`` (0-based index of the step), every loss term the task returned
(``total`` first), then the learning rate: ``lr`` when the task has one parameter group, else
``lr_<group>`` per group. Rows are appended and flushed one at a time, so a killed process leaves at worst a last
line without its newline; such a line is never read back. On resume the log is cut back to the
rows before the checkpoint's step by an atomic rewrite, so a resumed run never repeats a step.
A resumed run that logs more columns than its log has (a run started by an older version) widens
the log first, with ``nan`` in the new columns of the rows already there.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Mapping

import numpy as np

from isofield.errors import InputError
from isofield.files import write_text_atomic

LOG_NAME = "losses.csv"
STEP_COLUMN = "step"


class LossLog:
    """Appends rows to a CSV file; use as a context manager (or call :meth:`close`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._columns: list[str] | None = None

    def __enter__(self) -> "LossLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def truncate(self, before_step: int) -> None:
        """Keep only the complete rows whose step is below ``before_step`` (atomic rewrite).

        ``before_step=0`` empties the log of a run that starts afresh. Call it before appending
        to a log that a killed process may have left.
        """
        self.close()
        if not self.path.exists():
            return
        text = self.path.read_text(encoding="utf-8")
        header, rows = _complete_lines(text)
        kept = []
        if header is not None:
            step_index = _step_index(header, self.path)
            kept = [header]
            kept += [row for row in rows if _row_step(row, step_index, self.path) < before_step]
        if "".join(kept) != text:
            write_text_atomic(self.path, "".join(kept))

    def append(self, row: Mapping[str, float | int]) -> None:
        """Append one row and flush it. The first row fixes the columns (or must match the
        header of the existing file); every later row must have the same keys in that order."""
        if self._file is None:
            self._open(list(row))
        if list(row) != self._columns:
            raise ValueError(f"{self.path}: row columns {list(row)} differ from {self._columns}")
        csv.writer(self._file, lineterminator="\n").writerow(row.values())
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self, columns: list[str]) -> None:
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        header, rows = _complete_lines(text)
        if header is not None and _parse(header) != columns:
            if not set(_parse(header)) <= set(columns):
                raise InputError(
                    f"{self.path}: the log has columns {_parse(header)}, this run logs {columns}; "
                    "use a new run directory"
                )
            write_text_atomic(self.path, _widened(header, rows, columns))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", newline="")
        self._columns = columns
        if header is None:
            csv.writer(self._file, lineterminator="\n").writerow(columns)


def _widened(header: str, rows: list[str], columns: list[str]) -> str:
    """The log's text with ``columns`` (a superset of the header's), ``nan`` where a row has none."""
    names = _parse(header)
    lines = [",".join(columns) + "\n"]
    for line in rows:
        values = dict(zip(names, _parse(line)))
        lines.append(",".join(values.get(name, "nan") for name in columns) + "\n")
    return "".join(lines)


def read_loss_log(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a loss log: ``step`` as int64 (R,), every other column float64 (R,)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: loss log not found") from None
    header, rows = _complete_lines(text)
    if header is None:
        raise InputError(f"{path}: empty loss log")
    names = _parse(header)
    _step_index(header, path)
    table = [_parse(line) for line in rows]
    columns = {name: np.array([float(row[i]) for row in table]) for i, name in enumerate(names)}
    columns[STEP_COLUMN] = columns[STEP_COLUMN].astype(np.int64)
    return columns


def _complete_lines(text: str) -> tuple[str | None, list[str]]:
    """(header, data rows) of a log's text: only lines that end with a newline and, for rows,
    have as many fields as the header."""
    lines = [line + "\n" for line in text.split("\n")[:-1]]
    if not lines:
        return None, []
    header, width = lines[0], len(_parse(lines[0]))
    return header, [line for line in lines[1:] if len(_parse(line)) == width]


def _parse(line: str) -> list[str]:
    return next(csv.reader([line.rstrip("\n")]), [])


def _step_index(header: str, path: str | Path) -> int:
    names = _parse(header)
    if STEP_COLUMN not in names:
        raise InputError(f"{path}: not a loss log (no '{STEP_COLUMN}' column)")
    return names.index(STEP_COLUMN)


def _row_step(line: str, step_index: int, path: Path) -> int:
    try:
        return int(_parse(line)[step_index])
    except ValueError:
        raise InputError(f"{path}: row with a non-integer step: {line.strip()!r}") from None


"""CPU threads of training on a busy machine: ``ISOFIELD_THREADS``.

torch's intra-op pool takes every core. When other jobs hold some of them, its threads wait
for each other at every parallel region, and a fit's small steps have many: measured on 2
cores with the slow test suite running beside (load 3.1-3.7), the fast igr fit of 100k points
made 6.1 steps/s on 2 threads and 11.7 on 1 (docs/fit-ablations.md).

``ISOFIELD_THREADS`` decides: unset, torch's own choice stays (the library's default);
``auto`` (what the ``isofield`` command sets when it is not set) gives training the cores that
other jobs leave free, at most torch's own count, at least one; a number fixes the count.
``OMP_NUM_THREADS`` (which torchrun sets to 1) wins over ``auto``. The busy cores are the
smaller of the one-minute load average and the cores other processes used (``/proc/stat``,
Linux, less this process's own CPU time) since the command started (:func:`start_busy_sample`),
or over a quarter of a second where nothing started a sample: the average alone still counts a
job that ended a minute ago, e.g. the fit before this one in a script.

torch is imported only when the threads are set, so that the command can start its sample
before its heavy imports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from isofield.errors import InputError

ENV = "ISOFIELD_THREADS"
PROC_STAT = Path("/proc/stat")
_sample_start: list[tuple[float, list[int], float]] = []
"""the :func:`_snapshot` taken by :func:`start_busy_sample`"""
_decided: list[int] = []
"""the count chosen by the first training of this process (later ones keep it, so that runs
compared within one process use the same threads)"""


def threads_for_load(threads: int, cores: int, load: float) -> int:
    """Threads for training: ``threads`` less the cores other jobs hold (``load``, rounded),
    at least 1."""
    return max(1, min(threads, cores - round(load)))


def apply_thread_setting() -> str | None:
    """Set torch's intra-op threads from ``ISOFIELD_THREADS`` once per process.

    Returns:
        a one-line note when ``auto`` lowered the count (for the user), else None.
    Raises:
        InputError: a value that is neither ``auto`` nor a positive integer.
    """
    setting = os.environ.get(ENV, "").strip()
    if not setting or _decided:
        return None
    if setting != "auto":
        if not setting.isdigit() or int(setting) < 1:
            raise InputError(f"{ENV} must be 'auto' or a positive number of threads, got {setting!r}")
        _decide(int(setting))
        return None
    if "OMP_NUM_THREADS" in os.environ:
        return None
    import torch

    threads, cores, load = torch.get_num_threads(), os.cpu_count() or 1, busy_cores()
    chosen = threads_for_load(threads, cores, load)
    _decide(chosen)
    if chosen == threads:
        return None
    return (f"the machine is busy (load {load:.1f} on {cores} cores): training on {chosen} of "
            f"{threads} threads ({ENV}=N to choose)")


def start_busy_sample() -> None:
    """Open the busy-core sample of :func:`busy_cores` now (the ``isofield`` command does, first
    thing): it then spans the command's start-up, imports and preparation, instead of a sleep."""
    if PROC_STAT.exists():
        _sample_start[:] = [_snapshot()]


def busy_cores(window: float = 0.25) -> float:
    """Cores held by other running jobs: min(one-minute load average, cores in use by other
    processes since :func:`start_busy_sample`, or over ``window`` seconds from now when no
    sample was started or it is younger than that; the load average alone where
    ``/proc/stat`` is missing). The cores in use are those ``/proc/stat`` counts busy, less
    this process's own CPU time over the same wall time."""
    average = os.getloadavg()[0]
    if not PROC_STAT.exists():
        return average
    if _sample_start and time.monotonic() - _sample_start[0][0] >= window:
        began, first, own_before = _sample_start[0]
    else:
        began, first, own_before = _snapshot()
        time.sleep(window)
    second, own = _cpu_times(PROC_STAT), time.process_time() - own_before
    elapsed = sum(second) - sum(first)
    wall = time.monotonic() - began
    if elapsed <= 0 or wall <= 0:
        return average
    idle = (second[3] + second[4]) - (first[3] + first[4])       # idle + iowait
    in_use = (os.cpu_count() or 1) * (1.0 - idle / elapsed)
    return min(average, max(0.0, in_use - own / wall))


def _snapshot() -> tuple[float, list[int], float]:
    """(monotonic seconds, /proc/stat jiffies, this process's CPU seconds) now."""
    return time.monotonic(), _cpu_times(PROC_STAT), time.process_time()


def _cpu_times(stat: Path) -> list[int]:
    """The all-CPU jiffies of ``/proc/stat``: user, nice, system, idle, iowait, irq, ..."""
    return [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]


def _decide(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _decided.append(threads)

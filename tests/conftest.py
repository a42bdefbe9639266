"""Shared fixtures: the CGAL test data (skipped cleanly where it was not fetched) and a
launcher for ``isofield`` commands under torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CGAL_DATA = Path(os.environ.get("ISOFIELD_CGAL_DATA", REPO / ".cache" / "cgal" / "data"))


@pytest.fixture(scope="session")
def cgal_data() -> Path:
    """Folder with ``meshes/*.off`` and ``points_3/*`` of Debian's libcgal-demo (`make data`)."""
    if not (CGAL_DATA / "meshes" / "bunny00.off").exists():
        pytest.skip(f"CGAL data not found in {CGAL_DATA} (run `make data`)")
    return CGAL_DATA


def launch(arguments: list[str], processes: int, timeout: float = 300) -> str:
    """Run ``python ARGUMENTS`` under torchrun on ``processes`` CPU processes (gloo, one thread
    each) and return its output; fails the test with the output's tail when it does not exit 0.

    ``--standalone`` lets the rendezvous pick a free port, so concurrent test runs on one machine
    do not collide; the whole process group is killed on timeout.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(processes), *arguments]
    child = subprocess.Popen(command, env=os.environ | {"OMP_NUM_THREADS": "1"}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
    assert child.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="session")
def torchrun() -> Callable[[list[str], int], str]:
    """:func:`launch`, for tests that start several training processes."""
    return launch


class FakeTime:
    """Stands in for the ``time`` module in the trainer: ``monotonic()`` advances ``tick``
    seconds per call."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now


@pytest.fixture
def slow_steps(monkeypatch):
    """Make every training step take ``seconds`` of fake time (the trainer reads its clock once
    per step and once when it starts), so time limits stop runs at known steps."""
    import isofield.train.loop as loop

    def install(seconds: float) -> None:
        monkeypatch.setattr(loop, "time", FakeTime(seconds))
    return install

"""Training threads on a busy machine (issue 22): ISOFIELD_THREADS and the `isofield` command."""

from __future__ import annotations

import os

import pytest
import torch

from isofield import cli
from isofield.errors import InputError
from isofield.train import threads


@pytest.fixture
def fresh_process(monkeypatch):
    """No thread decision made yet; torch's count restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_decided", [])
    monkeypatch.setattr(threads, "_sample_start", [])
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield monkeypatch
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads_now, cores, load, expected", [
    (2, 2, 0.2, 2),      # idle
    (2, 2, 1.4, 1),      # one other job
    (2, 2, 3.6, 1),      # overloaded: never below one
    (8, 16, 3.0, 8),     # torch's own count is the most
    (4, 4, 1.5, 2),      # 1.5 rounds to 2 busy cores
])
def test_threads_for_load_leaves_the_busy_cores(threads_now, cores, load, expected):
    assert threads.threads_for_load(threads_now, cores, load) == expected


def test_auto_lowers_the_threads_on_a_busy_machine_and_says_so(fresh_process):
    fresh_process.setenv(threads.ENV, "auto")
    fresh_process.setattr(torch, "get_num_threads", lambda: 2)
    fresh_process.setattr(os, "cpu_count", lambda: 2)
    fresh_process.setattr(threads, "busy_cores", lambda: 1.3)
    chosen = []
    fresh_process.setattr(torch, "set_num_threads", chosen.append)
    note = threads.apply_thread_setting()
    assert chosen == [1]
    assert note == "the machine is busy (load 1.3 on 2 cores): training on 1 of 2 threads (ISOFIELD_THREADS=N to choose)"
    assert threads.apply_thread_setting() is None and chosen == [1]     # decided once per process


def test_a_number_fixes_the_threads_and_unset_or_omp_leaves_torch_alone(fresh_process):
    before = torch.get_num_threads()
    assert threads.apply_thread_setting() is None and torch.get_num_threads() == before
    fresh_process.setenv(threads.ENV, "auto")
    fresh_process.setenv("OMP_NUM_THREADS", "1")
    assert threads.apply_thread_setting() is None and torch.get_num_threads() == before
    fresh_process.setenv(threads.ENV, "1")
    assert threads.apply_thread_setting() is None and torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_setting_is_a_one_line_error(fresh_process, value):
    fresh_process.setenv(threads.ENV, value)
    with pytest.raises(InputError, match=f"ISOFIELD_THREADS must be 'auto' or a positive number of threads, got '{value}'"):
        threads.apply_thread_setting()


def test_the_isofield_command_trains_on_auto_unless_told(fresh_process):
    fresh_process.setattr(cli, "main", lambda: os.environ[threads.ENV])
    assert cli.console_main() == "auto"
    fresh_process.setenv(threads.ENV, "3")
    assert cli.console_main() == "3"
    assert len(threads._sample_start) == 1                            # the busy-core sample began


def test_busy_cores_since_the_start_leave_out_this_process(fresh_process, tmp_path):
    """2 cores; from the start sample to now /proc/stat counts 200 busy and 100 idle jiffies
    (4/3 cores in use) over 1.5 s, of which this process used 1.0 CPU second (2/3 core): the
    others hold 2/3 of a core."""
    stat = tmp_path / "stat"
    fresh_process.setattr(threads, "PROC_STAT", stat)
    fresh_process.setattr(os, "cpu_count", lambda: 2)
    fresh_process.setattr(os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    clock, cpu = iter([10.0, 11.5, 11.5]), iter([3.0, 4.0])
    fresh_process.setattr(threads.time, "monotonic", lambda: next(clock))
    fresh_process.setattr(threads.time, "process_time", lambda: next(cpu))
    stat.write_text("cpu  100 0 0 300 0 0 0 0 0 0\ncpu0 ...\n")
    threads.start_busy_sample()
    stat.write_text("cpu  300 0 0 400 0 0 0 0 0 0\ncpu0 ...\n")
    assert threads.busy_cores() == pytest.approx(2 / 3)
    fresh_process.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))  # the average, if smaller
    clock, cpu = iter([11.5, 11.5]), iter([3.0, 4.0])
    assert threads.busy_cores() == pytest.approx(0.4)


def test_busy_cores_is_at_most_the_load_average(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.busy_cores(0.01) == 0.0
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 0.0, 0.0))
    assert 0.0 <= threads.busy_cores(0.05) <= os.cpu_count()

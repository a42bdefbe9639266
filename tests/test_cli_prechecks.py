"""`isofield fit` checks before it works, lets flags beat files, and resumes honestly (issue 24).

- Everything that can be checked is checked before training, and a command that fails leaves
  nothing behind: not the reference's file (read before training), not the device (resolved
  before anything is written), not the run folder it created.
- Flags win over the ``--config`` file; ``--resume`` refuses flags that would change the run,
  honours ``--device``, ``--steps`` and ``--time-budget``, and does not redo a finished run.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import yaml

from isofield.errors import InputError
from isofield.train.checkpoint import load_checkpoint
from test_cli import (_in_tmp_path, assert_one_line_error, refuses, run_cli,  # noqa: F401 (fixtures)
                      sdf_npz, snapshot)


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    """Tiny settings for the sdf method; ``method: igr``, which the --method flag must beat."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"method": "igr", "options": {"batch": 256},
                                    "extract": {"resolution": 16}, "train": {"log_every": 1}}))
    return path


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fit_tiny(capsys, sdf_npz, tiny_yaml, run: Path, *extra: object) -> str:
    """A 2-step sdf fit into ``run``; returns stdout."""
    code, out, err = run_cli(capsys, "fit", sdf_npz, "--method", "sdf", "--config", tiny_yaml,
                             "--steps", 2, "-o", run, "-q", *extra)
    assert code == 0, err
    return out


def stored(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


# ---- checks before work ------------------------------------------------------------------------


def test_a_missing_reference_is_refused_before_training(capsys, tmp_path, sdf_npz, tiny_yaml):
    # Before: read after training; checkpoints and no report were left behind.
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", tiny_yaml, "--steps", 2,
                               "-o", tmp_path / "run", "--reference", tmp_path / "missing.off"],
            "missing.off")


def test_a_broken_reference_is_refused_before_training(capsys, tmp_path, sdf_npz, tiny_yaml):
    broken = tmp_path / "broken.off"
    broken.write_text("OFF\n3 1 0\n0 0 0\n")
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", tiny_yaml, "--steps", 2,
                               "-o", tmp_path / "run", "--reference", broken], "broken.off")


def test_cuda_without_cuda_is_refused_before_anything_is_written(capsys, tmp_path, sdf_npz, tiny_yaml,
                                                                no_cuda):
    # Before: failed after preparation, leaving config.yaml and normalization.json behind.
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", tiny_yaml, "--steps", 2,
                               "-o", tmp_path / "run", "--device", "cuda"], "'cuda'", "CUDA is not available")


@pytest.mark.parametrize("where", ["new/nested/run", "empty"])
def test_a_fit_failing_before_training_removes_only_what_it_created(capsys, tmp_path, sdf_npz, tiny_yaml,
                                                                   monkeypatch, where):
    def failing_prepare(config):
        assert (Path(config_root) / "config.yaml").is_file()  # the run folder was made first
        raise InputError("prepare failed")

    (tmp_path / "empty").mkdir()
    config_root = tmp_path / where
    monkeypatch.setattr(importlib.import_module("isofield.fitting.fit"), "_prepare", failing_prepare)
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", tiny_yaml, "--steps", 2,
                               "-o", config_root], "prepare failed")
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_a_gpu_run_resumes_on_the_cpu_with_device(capsys, tmp_path, sdf_npz, tiny_yaml, no_cuda):
    run = tmp_path / "run"
    fit_tiny(capsys, sdf_npz, tiny_yaml, run, "--exit-after", 0)
    config = stored(run)
    config["device"] = "cuda"  # as if trained on a GPU
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Without --device: the stored device is checked before anything is written.
    refuses(capsys, tmp_path, ["fit", "--resume", run], "'cuda'", "CUDA is not available")
    # Before: --device was ignored with --resume.
    code, out, err = run_cli(capsys, "fit", "--resume", run, "--device", "cpu", "-q")
    assert code == 0, err
    assert f"{run}: finished after 2 steps" in out and (run / "mesh.ply").is_file()
    assert stored(run)["device"] == "cpu"


# ---- flags beat files --------------------------------------------------------------------------


def test_the_method_flag_beats_the_config_file(capsys, tmp_path, sdf_npz, tiny_yaml):
    # Before: the file's `method: igr` silently won over --method sdf.
    run = tmp_path / "run"
    fit_tiny(capsys, sdf_npz, tiny_yaml, run, "--exit-after", 0)
    assert stored(run)["method"] == "sdf"


def test_every_flag_beats_the_config_file(capsys, tmp_path, sdf_npz):
    config = tmp_path / "file.yaml"
    config.write_text(yaml.safe_dump({"method": "igr", "preset": "paper", "device": "cuda",
                                      "options": {"batch": 256}, "extract": {"resolution": 16},
                                      "train": {"steps": 100, "time_budget": 50.0}}))
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", sdf_npz, "--config", config, "--method", "sdf", "--preset", "fast",
                           "--device", "cpu", "--steps", 2, "--time-budget", 9, "-o", run,
                           "--exit-after", 0, "-q")
    assert code == 0, err
    config = stored(run)
    assert (config["method"], config["preset"], config["device"]) == ("sdf", "fast", "cpu")
    assert (config["train"]["steps"], config["train"]["time_budget"]) == (2, 9.0)


def test_the_config_file_method_is_used_without_the_flag(capsys, tmp_path, sdf_npz):
    config = tmp_path / "file.yaml"
    config.write_text(yaml.safe_dump({"method": "sdf", "options": {"batch": 256}}))
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", sdf_npz, "--config", config, "--steps", 2, "-o", run,
                           "--exit-after", 0, "-q")
    assert code == 0, err
    assert stored(run)["method"] == "sdf"


@pytest.mark.parametrize("flag, value, names", [
    ("--method", "igr", ("--method igr", "sdf")),
    ("--preset", "paper", ("--preset paper", "fast")),
    ("--config", "tiny.yaml", ("--config", "--resume")),
    ("--reference", "sphere_sdf.npz", ("--reference", "was made without one")),
])
def test_resume_refuses_flags_that_would_change_the_run(capsys, tmp_path, sdf_npz, tiny_yaml, flag, value,
                                                        names):
    # Before: silently ignored.
    run = tmp_path / "run"
    fit_tiny(capsys, sdf_npz, tiny_yaml, run, "--exit-after", 0)
    refuses(capsys, tmp_path, ["fit", "--resume", run, flag, value], *names)


def test_resume_accepts_flags_that_repeat_the_run(capsys, tmp_path, sdf_npz, tiny_yaml):
    run = tmp_path / "run"
    fit_tiny(capsys, sdf_npz, tiny_yaml, run, "--exit-after", 0)
    code, out, err = run_cli(capsys, "fit", "--resume", run, "--method", "sdf", "--preset", "fast", "-q")
    assert code == 0, err
    assert f"{run}: finished after 2 steps" in out


def test_resuming_a_finished_run_says_so_and_redoes_nothing(capsys, tmp_path, sdf_npz, tiny_yaml):
    # Before: redid the mesh, pictures and report without a word.
    run = tmp_path / "run"
    fit_tiny(capsys, sdf_npz, tiny_yaml, run)
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "fit", "--resume", run, "-q")
    assert (code, err) == (0, "")
    assert out == (f"{run} already finished at step 2 (of 2 steps); "
                   f"give a larger --steps or --time-budget to train on\n")
    assert snapshot(tmp_path) == before
    # A run killed while writing its outputs (no report yet) gets them, without a step more.
    # Before: "already finished", and the run never had a mesh or a report.
    (run / "report.html").unlink()
    (run / "mesh.ply").unlink()
    code, out, err = run_cli(capsys, "fit", "--resume", run, "-q")
    assert code == 0, err
    assert f"{run}: finished after 2 steps" in out
    assert (run / "report.html").is_file() and (run / "mesh.ply").is_file()
    assert load_checkpoint(run / "checkpoints" / "latest.pt").step == 2
    # A larger limit trains on.
    code, out, err = run_cli(capsys, "fit", "--resume", run, "--steps", 3, "-q")
    assert code == 0, err
    assert f"{run}: finished after 3 steps" in out and stored(run)["train"]["steps"] == 3

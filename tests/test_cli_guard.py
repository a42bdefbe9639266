"""The command line never surprises: the output guard (an existing output is replaced only with
--overwrite), interrupted training (exit code 130 after the checkpoint, with how to resume), and
the help (every argument described, defaults shown, --version).

Commands run in-process through :func:`isofield.cli.main`, from ``tmp_path``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import trimesh
import yaml

from isofield import cli
from isofield.cli import build_parser, main
from isofield.geometry.io import PointCloud, write_points
from test_cli import _in_tmp_path, run_cli  # noqa: F401 (an autouse fixture)

PRECIOUS = b"years of work\n"


@pytest.fixture
def sphere_ply(tmp_path) -> Path:
    path = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=2).export(path)
    return path


@pytest.fixture
def cloud_ply(tmp_path) -> Path:
    path = tmp_path / "cloud.ply"
    sphere = trimesh.creation.icosphere(subdivisions=2)
    write_points(PointCloud(sphere.vertices), path)
    return path


@pytest.fixture
def meshes(tmp_path) -> Path:
    folder = tmp_path / "meshes"
    folder.mkdir()
    for index in range(4):
        trimesh.creation.icosphere(subdivisions=1).export(folder / f"ball_{index}.ply")
    return folder


# command -> (arguments with {out} for the output and {mesh} / {cloud} / {meshes} for inputs, output)
WRITERS = {
    "sample": (["sample", "{mesh}", "--kind", "surface", "-n", 500, "-o", "{out}"], "out.npz"),
    "mesh": (["mesh", "--shape", "sphere", "--resolution", 16, "-o", "{out}"], "out.ply"),
    "slice": (["slice", "--shape", "sphere", "--resolution", 16, "-o", "{out}"], "out.png"),
    "render": (["render", "{mesh}", "--size", 32, "-o", "{out}"], "out.png"),
    "scan": (["scan", "{mesh}", "--camera", "resolution=32", "-o", "{out}"], "out.ply"),
    "normals": (["normals", "{cloud}", "-o", "{out}"], "out.ply"),
    "split": (["split", "{meshes}", "-o", "splits"], "splits/train.json"),
}


@pytest.mark.parametrize("command", WRITERS)
def test_an_existing_output_is_kept_without_overwrite_and_replaced_with_it(
        capsys, tmp_path, sphere_ply, cloud_ply, meshes, command):
    template, name = WRITERS[command]
    target = tmp_path / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(PRECIOUS)
    inputs = {"{mesh}": sphere_ply, "{cloud}": cloud_ply, "{meshes}": meshes, "{out}": name}
    args = [inputs.get(item, item) if isinstance(item, str) else item for item in template]
    before = sorted(tmp_path.rglob("*"))

    code, out, err = run_cli(capsys, *args)
    assert (code, out) == (2, "")
    assert err == f"isofield: error: {name}: already exists; choose another -o or pass --overwrite\n"
    assert target.read_bytes() == PRECIOUS and sorted(tmp_path.rglob("*")) == before

    code, out, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert target.read_bytes() != PRECIOUS and target.stat().st_size > 100


def test_overwrite_never_writes_over_an_input(capsys, tmp_path, sphere_ply):
    before = sphere_ply.read_bytes()
    code, _, err = run_cli(capsys, "render", sphere_ply, "-o", sphere_ply, "--overwrite")
    assert code == 2 and "same as an input" in err and sphere_ply.read_bytes() == before


@pytest.mark.parametrize("args, target", [
    (["generate", "no-run", "-o", "folder"], "folder"),                       # folders of outputs
    (["evaluate-meshes", "meshes", "--data", "d", "--split", "test", "-o", "folder"], "folder/results.json"),
])
def test_outputs_of_run_commands_are_guarded_before_the_run_is_read(capsys, tmp_path, args, target):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "results.json").write_bytes(PRECIOUS)
    code, out, err = run_cli(capsys, *args)
    what = "folder is not empty" if target == "folder" else "already exists"
    assert (code, out) == (2, "")
    assert err == f"isofield: error: {target}: {what}; choose another -o or pass --overwrite\n"
    assert (tmp_path / "folder" / "results.json").read_bytes() == PRECIOUS


# --------------------------------------------------------------------------------------------
# interrupted training
# --------------------------------------------------------------------------------------------


def test_ctrl_c_during_a_fit_saves_exits_130_and_says_how_to_resume(capsys, tmp_path):
    from isofield.data.formats import write_sdf_samples
    from isofield.geometry.samples import sdf_samples

    write_sdf_samples(*sdf_samples(trimesh.creation.icosphere(subdivisions=2), n=2000, seed=0),
                      tmp_path / "sdf.npz")
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(
        {"options": {"batch": 256}, "extract": {"resolution": 16}, "train": {"log_every": 1}}))
    run = tmp_path / "run"

    def interrupt_once_training() -> None:  # Ctrl-C as soon as the first step is logged
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = run / "losses.csv"
            if log.is_file() and log.read_text().count("\n") >= 2:
                os.kill(os.getpid(), signal.SIGINT)  # process-directed: the main thread handles it
                return
            time.sleep(0.02)

    thread = threading.Thread(target=interrupt_once_training, daemon=True)
    thread.start()
    code, out, err = run_cli(capsys, "fit", tmp_path / "sdf.npz", "--method", "sdf", "--config",
                             tmp_path / "small.yaml", "--steps", 10**7, "--time-budget", 60, "-o", run, "-q")
    thread.join()
    assert code == 130, err
    first, second = out.splitlines()
    assert first.startswith(f"{run}: interrupted after ")
    assert second == f"resume with: isofield fit --resume {run}"
    assert (run / "checkpoints" / "latest.pt").is_file() and not (run / "mesh.ply").exists()


@pytest.mark.parametrize("reason, code", [("interrupted", 130), ("exit-after", 0), ("finished", 0)])
def test_train_exit_code_follows_the_stop_reason(capsys, tmp_path, monkeypatch, reason, code):
    result = SimpleNamespace(run_dir=tmp_path / "space", reason=reason, step=7, elapsed=3.0, progress=0.5)
    monkeypatch.setattr(cli, "_train_shape_space", lambda args: result)
    exit_code, out, _ = run_cli(capsys, "train", "config.yaml")
    assert exit_code == code
    last = out.splitlines()[-1]
    if reason == "finished":
        assert last == f"report: {tmp_path / 'space' / 'report.html'}"
    else:
        assert last == f"resume with: isofield train --resume {tmp_path / 'space'}"


def test_an_interrupted_demo_says_how_to_resume_and_exits_130(capsys, tmp_path, monkeypatch):
    from isofield import demo
    from isofield.fitting import FitResult

    result = FitResult(tmp_path / "demo", "interrupted", 7, 3.0, mesh_path=None, metrics={}, progress=0.1)
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: result)
    code, out, _ = run_cli(capsys, "demo", "-q")
    assert code == 130
    assert out.splitlines()[-1] == f"resume with: isofield fit --resume {tmp_path / 'demo'}"


# --------------------------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"isofield {version('isofield')}\n"


def test_commands_are_listed_in_the_order_users_meet_them():
    assert list(_subparsers())[:15] == [
        "fit", "mesh", "eval", "render", "slice", "info", "sample", "normals", "shapes", "scan",
        "preprocess", "split", "train", "reconstruct", "complete"]
    assert list(_subparsers())[-1] == "demo"


@pytest.mark.parametrize("command", list(_subparsers()))
def test_every_argument_has_help_and_its_default_is_shown(capsys, command):
    subparser = _subparsers()[command]
    for action in subparser._actions:
        assert action.help, f"{command} {action.dest}: no help"
        if not any(action.default is value for value in (None, False, argparse.SUPPRESS)):
            shown = subparser.formatter_class(subparser.prog)._get_help_string(action)
            assert "default" in shown, f"{command} {action.dest}: default not shown"
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: isofield {command}")


def test_fit_help_says_that_a_training_limit_is_required(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "One of --steps and --time-budget is required" in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------


def test_slice_offset_outside_the_bounds_is_refused(capsys, tmp_path):
    code, out, err = run_cli(capsys, "slice", "--shape", "sphere", "--offset", 5, "-o", "s.png")
    assert (code, out) == (2, "")
    assert err == "isofield: error: --offset 5: outside the bounds along z, -0.55 to 0.55 (canonical frame)\n"
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("size", [0, 5000])
def test_render_size_out_of_range_names_the_flag(capsys, tmp_path, sphere_ply, size):
    code, _, err = run_cli(capsys, "render", sphere_ply, "--size", size, "-o", "r.png")
    assert code == 2
    assert err == f"isofield: error: --size must be between 1 and 4096 pixels, got {size}\n"
    assert not (tmp_path / "r.png").exists()


def test_counts_take_the_right_number():
    from isofield.geometry.io import count_of

    assert [count_of(n, "vertex", "vertices") for n in (0, 1, 2)] == ["0 vertices", "1 vertex", "2 vertices"]
    assert count_of(1, "face") == "1 face" and count_of(3, "point") == "3 points"


def test_info_of_a_point_cloud_gives_bounds_as_a_mesh_does(capsys, tmp_path):
    write_points(PointCloud(np.array([[0.0, 0, 0], [1 / 3, 2.0, -1e-5]])), tmp_path / "two.xyz")
    code, out, _ = run_cli(capsys, "info", "two.xyz")
    assert code == 0
    assert out == "two.xyz: 2 points without normals; bounds [0, 0, -1e-05] to [0.3333, 2, 0], diagonal 2.028\n"

"""One table of model families, one way to open a run, one evaluation driver.

Every (verb, family) pair of the run commands either works or refuses in one line with exit
code 2; the tiny runs (a 2-step fit, 4-step DeepSDF, ONet and ShapeGF runs on 3 chairs and 6
spheres) are trained once for the module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from isofield.data.datasets import DeepSDFDataDir, write_split
from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.errors import InputError
from isofield.evaluation import evaluate, evaluate_mesh_folder, format_results
from isofield.fitting import fit
from isofield.geometry.io import PointCloud, write_points
from isofield.occupancy import train_occupancy_network
from isofield.occupancy.config import METHODS as OCCUPANCY_METHODS
from isofield.methods import method_names
from isofield.registry import FAMILIES, TRAIN_VERBS, family_named, refuse_unused
from isofield.runs import open_run
from isofield.shapegf import train_gradient_field
from isofield.train.checkpoint import load_checkpoint
from isofield.deepsdf import train_shape_space
from test_cli import _in_tmp_path, run_cli  # noqa: F401 (an autouse fixture)
from test_occupancy import TEST_RADIUS, _config, spheres  # noqa: F401 (a fixture)

STEPS = 4


# --------------------------------------------------------------------------------------------
# tiny runs of every family
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chairs(tmp_path_factory) -> Path:
    """A DeepSDF-layout data directory of 3 procedural chairs; train.json (2) and test.json (1)."""
    base = tmp_path_factory.mktemp("chairs")
    write_family("chairs", 3, base / "meshes", resolution=32)
    preprocess(base / "meshes", base / "data", samples=4000, surface_points=2000, progress=False)
    refs = DeepSDFDataDir(base / "data").shapes()
    write_split(base / "train.json", refs[:2])
    write_split(base / "test.json", refs[2:])
    return base / "data"


def bare(data: Path) -> Path:
    """A copy of a DeepSDF data directory without its manifest (as DeepSDF's own), once."""
    copy = data.with_name("bare")
    if not copy.exists():
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("manifest.json"))
    return copy


@pytest.fixture(scope="module")
def runs(chairs, spheres, tmp_path_factory) -> dict[str, Path]:
    """One tiny finished run per family, by family name; tests write only outside them. The
    DeepSDF decoder starts as a sphere's SDF (geometric init), so that 4 steps leave a surface."""
    base = tmp_path_factory.mktemp("runs")
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    points = base / "sphere.ply"
    write_points(PointCloud(sphere.vertices, sphere.vertex_normals), points)
    config = base / "fit.yaml"
    config.write_text(yaml.safe_dump({"extract": {"resolution": 16}, "train": {"log_every": 1}}))
    fit(points, method="igr", config_file=config, steps=2, output=base / "fit", progress=False)
    split = str(chairs.parent / "train.json")
    train_shape_space({"data": str(chairs), "split": split, "preset": "cpu", "latent_dim": 8,
                       "shapes_per_batch": 2, "samples_per_shape": 256, "max_samples_per_shape": 2000,
                       "reconstruction_every": None, "reconstruction_shapes": 1,
                       "decoder": {"depth": 3, "hidden": 64, "skip": [1], "geometric_init": True},
                       "train": {"steps": STEPS, "log_every": 2, "checkpoint_every": STEPS},
                       "extract": {"resolution": 16, "progress_resolution": 16}},
                      base / "deepsdf", progress=False)
    train_occupancy_network(_config(spheres, train={"steps": STEPS, "log_every": 2, "checkpoint_every": STEPS},
                                    extract={"resolution": 16, "coarse_resolution": 8}),
                            base / "occupancy", progress=False)
    train_gradient_field({"method": "shapegf", "data": str(chairs), "split": split, "latent_dim": 4,
                          "points_per_shape": 500, "input_points": 64, "target_points": 64,
                          "shapes_per_batch": 2, "noise": {"levels": 2, "sigma_min": 0.05},
                          "encoder": {"widths": [8], "head": [8]}, "score": {"hidden": 16, "blocks": 1},
                          "langevin": {"steps_per_level": 2}, "latent": {"kind": "gmm", "options": {"components": 1}},
                          "surface": {"resolution": 16},
                          "train": {"steps": STEPS, "log_every": 2, "checkpoint_every": STEPS}},
                         base / "shapegf", progress=False)
    return {name: base / name for name in ("fit", "deepsdf", "occupancy", "shapegf")}


@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    """Points with normals on a sphere of radius 0.6 about (1, 1, 1), user coordinates."""
    directions = np.random.default_rng(3).normal(size=(1500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    path = tmp_path_factory.mktemp("scan") / "scan.ply"
    write_points(PointCloud(1.0 + 0.6 * directions, directions), path)
    return path


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


def test_the_table_names_every_method_once_and_matches_the_hooks():
    methods = [method for family in FAMILIES for method in family.methods]
    assert len(methods) == len(set(methods))
    assert set(family_named("fit").methods) == set(method_names())
    assert set(family_named("occupancy").methods) == set(OCCUPANCY_METHODS)
    for family in FAMILIES:
        hooks = family.hooks()
        assert set(hooks.verbs) == set(family.verbs) - set(TRAIN_VERBS), family.name
        assert len([verb for verb in family.verbs if verb in TRAIN_VERBS]) == 1, family.name
        assert ("evaluate" in family.verbs) == bool(family.protocols), family.name
        assert set(family.hints).isdisjoint(family.verbs), family.name


def test_the_table_and_open_run_import_no_torch():
    code = ("import sys, isofield.registry, isofield.runs, isofield.evaluation; "
            "print(sorted(m for m in ('torch', 'isofield.fitting', 'isofield.deepsdf') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_flags_a_family_does_not_use_are_named():
    refuse_unused({"steps": None, "restarts": 0, "up": False})   # not given
    with pytest.raises(InputError, match=r"^--free-space, --camera-origin: not used by this kind of run$"):
        refuse_unused({"steps": 3, "free_space": 10, "camera_origin": [0, 0, 1]}, used=("steps",))


# --------------------------------------------------------------------------------------------
# open_run
# --------------------------------------------------------------------------------------------


def test_open_run_reads_each_family_from_its_config(runs):
    for name, path in runs.items():
        run = open_run(path)
        assert (run.family.name, run.root) == (name, path)
        assert run.config["method"] in run.family.methods


@pytest.mark.parametrize("content, message", [
    (None, "not_a_run: not an isofield training run (no config.yaml)"),
    ("method: [unclosed", "config.yaml: invalid YAML at line 1"),
    ("- a list", "config.yaml: a config must be a mapping"),
    ("method: pointnet", "config.yaml: method: unknown method 'pointnet' (known: igr, sdf"),
    ("method: onet", "not_a_run: an occupancy run without shapes.json"),
])
def test_open_run_refuses_a_folder_without_a_readable_run_in_one_line(tmp_path, content, message):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    if content is not None:
        (folder / "config.yaml").write_text(content)
    with pytest.raises(InputError) as error:
        open_run(folder)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_mesh_of_a_deepsdf_run_says_what_to_use_instead(runs, capsys):
    """Before: `isofield mesh RUN` read any config.yaml as a fit's: "config.yaml: unknown key 'data'"."""
    code, out, err = run_cli(capsys, "mesh", runs["deepsdf"], "-o", "mesh.ply")
    assert (code, out) == (2, "")
    assert err == (f"isofield: error: {runs['deepsdf']}: a deepsdf run; `isofield mesh` works on fit runs "
                   "(for a deepsdf shape use `isofield reconstruct`, or `isofield interpolate` between "
                   "training shapes)\n")
    assert not Path("mesh.ply").exists()


# --------------------------------------------------------------------------------------------
# every (verb, family) pair
# --------------------------------------------------------------------------------------------


def _command(verb: str, run: Path, chairs: Path, spheres: Path, scan: Path) -> tuple[list[object], str]:
    """(arguments of `isofield VERB` on ``run`` that work where its family supports the verb,
    the output they write)."""
    test_shape = DeepSDFDataDir(chairs).shapes(chairs.parent / "test.json")[0].shape_id
    split = spheres / "test.json" if open_run(run).family.name == "occupancy" else chairs.parent / "test.json"
    commands = {
        "mesh": (["mesh", run, "--resolution", 16, "-o", "out.ply"], "out.ply"),
        "slice": (["slice", run, "--resolution", 16, "-o", "out.png"], "out.png"),
        # DeepSDF: measured against the 2,000 surface samples, not 100,000 points of the source mesh
        "evaluate": (["evaluate", run, "--split", split, "-o", "evaluation", "-q"]
                     + {"deepsdf": ["--steps", 3, "--resolution", 16, "--no-emd", "--data", bare(chairs)],
                        "occupancy": ["--resolution", 16],
                        "shapegf": ["--points", 64, "--generate", 2, "--no-emd"]}.get(open_run(run).family.name, []),
                     "evaluation/results.json"),
        "complete": (["complete", run, scan, "-o", "out.ply", "--resolution", 16]
                     + (["--steps", 3, "--restarts", 1, "--rotations", 1]
                        if open_run(run).family.name == "deepsdf" else []), "out.ply"),
        "reconstruct": (["reconstruct", run, test_shape, "--steps", 3, "--resolution", 16, "-o", "out.ply"],
                        "out.ply"),
        "interpolate": (["interpolate", run, 0, 1, "-n", 2, "--resolution", 16, "-o", "strip"],
                        "strip/interpolation.png"),
        "generate": (["generate", run, "-n", 2, "-o", "generated"]
                     + (["--points", 64] if open_run(run).family.name == "shapegf" else []),
                     "generated/generated.png"),
        "upsample": (["upsample", run, scan, "-n", 100, "-o", "out.ply"], "out.ply"),
    }
    return commands[verb]


VERBS = ("mesh", "slice", "evaluate", "complete", "reconstruct", "interpolate", "generate", "upsample")


@pytest.mark.parametrize("family", [family.name for family in FAMILIES])
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_works_on_a_run_whose_family_supports_it_or_refuses_in_one_line(
        runs, chairs, spheres, scan, capsys, tmp_path, verb, family):
    run = runs[family]
    args, output = _command(verb, run, chairs, spheres, scan)
    code, out, err = run_cli(capsys, *args)
    if family_named(family).supports(verb) and (verb, family) != ("generate", "occupancy"):
        assert code == 0, err
        assert (tmp_path / output).is_file() and out
    else:
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and err.startswith(f"isofield: error: {run}: ")
        assert ("`isofield " + verb + "` works on") in err or "not a VAE" in err
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, family", [("fit", "deepsdf"), ("train", "fit")])
def test_resuming_with_the_other_training_command_is_refused(runs, capsys, command, family):
    code, out, err = run_cli(capsys, command, "--resume", runs[family])
    assert (code, out) == (2, "")
    assert err == (f"isofield: error: {runs[family]}: a {family} run; `isofield {command}` works on "
                   + ("deepsdf, occupancy and shapegf runs (resume a fit with `isofield fit --resume`)\n"
                      if command == "train" else
                      "fit runs (resume a deepsdf run with `isofield train --resume`)\n"))


def test_a_flag_the_family_does_not_use_is_named(runs, scan, capsys):
    code, _, err = run_cli(capsys, "complete", runs["occupancy"], scan, "-o", "x.ply", "--free-space-margin", 0.1)
    assert code == 2 and err == "isofield: error: --free-space-margin: not used by this kind of run\n"
    code, _, err = run_cli(capsys, "evaluate", runs["occupancy"], "--split", "test", "--mode", "complete")
    assert code == 2 and err == ("isofield: error: --mode complete: not used by this kind of run (an occupancy "
                                 "run is evaluated by onet)\n")
    code, _, err = run_cli(capsys, "evaluate", runs["deepsdf"], "--threshold", 0.3)
    assert code == 2 and err == "isofield: error: --threshold: not used by this kind of run\n"


# --------------------------------------------------------------------------------------------
# one evaluation driver
# --------------------------------------------------------------------------------------------


def test_every_evaluation_writes_one_schema_and_a_report(runs, chairs, spheres, tmp_path):
    splits = {"deepsdf": chairs.parent / "test.json", "occupancy": spheres / "test.json",
              "shapegf": chairs.parent / "test.json"}
    options = {"deepsdf": {"steps": 3, "resolution": 16, "no_emd": True, "onet_points": 4000, "deepsdf_points": 2000},
               "occupancy": {"resolution": 16}, "shapegf": {"points": 64, "generate": 2, "no_emd": True}}
    for family, split in splits.items():
        result = evaluate(runs[family], split, out_dir=tmp_path / family, **options[family])
        record = json.loads((tmp_path / family / "results.json").read_text())
        assert record == json.loads(json.dumps(result.record))
        assert (record["format"], record["version"], record["family"]) == ("isofield-evaluation", 2, family)
        assert record["protocol"] == family_named(family).protocols[0]
        assert record["run"] == str(runs[family].resolve()) and record["split"] == str(split)
        assert len(record["shapes"]) == 1 and all("shape" in row for row in record["shapes"])
        column = record["columns"][0]["key"]
        assert record["summary"][column]["count"] == 1
        assert record["summary"][column]["mean"] == pytest.approx(record["shapes"][0][column])
        text = format_results(record)
        assert text.splitlines()[0].startswith(f"{record['title']}, 1 shape")
        page = (tmp_path / family / "report.html").read_text()
        for path, _ in record["figures"]:
            assert (tmp_path / family / path).is_file() and path in page


@pytest.mark.parametrize("family", ["deepsdf", "occupancy"])
def test_evaluation_reports_show_meshes_coloured_by_their_error(runs, chairs, spheres, tmp_path, family):
    split = spheres / "test.json" if family == "occupancy" else chairs.parent / "test.json"
    result = evaluate(runs[family], split, out_dir=tmp_path, resolution=16,
                      **({"steps": 3, "no_emd": True, "onet_points": 4000} if family == "deepsdf" else {}))
    errors = [path for path, caption in result.record["figures"] if path.startswith("errors/")]
    if not errors:  # a 4-step model may mesh nothing: then there is nothing to colour
        assert all(row.get("error") or row.get("iou") == 0 for row in result.record["shapes"])
        pytest.skip("the tiny model has no surface")
    picture = np.asarray(Image.open(tmp_path / errors[0]).convert("RGB"))
    assert picture.std() > 10                                     # not blank
    assert "coloured by its distance" in (tmp_path / "report.html").read_text()


def test_a_missing_prediction_is_an_error_naming_its_path(spheres, tmp_path, capsys):
    """Before: a folder in another layout scored every shape IoU 0 as an "empty" mesh."""
    flat = tmp_path / "flat"
    flat.mkdir()
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=2 * TEST_RADIUS)
    sphere.apply_translation((1.0, 1.0, 1.0))   # the held-out sphere in its user frame
    sphere.export(flat / "held_out.ply")
    expected = flat / "spheres" / "balls" / "held_out.ply"
    code, out, err = run_cli(capsys, "evaluate-meshes", flat, "--data", spheres, "--split", spheres / "test.json")
    assert (code, out) == (2, "")
    assert err.startswith(f"isofield: error: {expected}: no mesh for this test shape") and err.count("\n") == 1
    assert not (tmp_path / "onet").exists()
    expected.parent.mkdir(parents=True)
    sphere.export(expected)
    result = evaluate_mesh_folder(flat, spheres, spheres / "test.json", tmp_path / "scores", progress=False)
    row = result.record["shapes"][0]
    assert row["iou"] > 0.9 and row["chamfer_l1"] < 0.01
    assert (tmp_path / "scores" / "report.html").is_file() and (tmp_path / "scores" / "scores.csv").is_file()


def test_one_formatter_prints_rows_the_summary_and_the_protocols_sections():
    from isofield.evaluation import column, results_record

    rows = [{"shape": "d/c/a", "id": "a", "cd": 2e-4}, {"shape": "d/c/b", "id": "b", "cd": None, "error": "no surface"}]
    record = results_record(family="deepsdf", protocol="complete", title="completion", run=None, data=None,
                            split=None, settings={"threshold": None, "threshold_choice": {"rule": "zero level"}},
                            columns=[column("cd", "CD x10^4", 1e4, ".2f")], shapes=rows, metrics=("cd",),
                            baseline={"name": "nearest training shape", "shapes": [{"cd": 3e-4}, {"cd": 1e-4}],
                                      "summary": {"cd": {"mean": 2e-4, "median": 2e-4, "count": 2}},
                                      "better_than_baseline": {"chamfer_l1": 1, "of": 2}})
    assert record["summary"] == {"cd": {"mean": pytest.approx(2e-4), "median": pytest.approx(2e-4), "count": 1}}
    assert format_results(record).splitlines() == [
        "completion, 2 shapes, 1 without a surface",
        "shape    CD x10^4  baseline CD x10^4",
        "a            2.00               3.00",
        "b               -               1.00",
        "",
        f"{'metric':<36}{'mean':>12}{'median':>12}{'baseline mean':>16}{'median':>12}",
        f"{'cd x10^4':<36}{2:>12.5g}{2:>12.5g}{2:>16.5g}{2:>12.5g}",
        "better than the nearest training shape (Chamfer-L1) on 1 of 2 shapes",
        "surface: (zero level)",
    ]


def test_train_starts_only_families_trained_from_a_config(capsys, tmp_path):
    (tmp_path / "fit.yaml").write_text("method: igr\n")
    code, out, err = run_cli(capsys, "train", "fit.yaml")
    assert (code, out) == (2, "")
    assert err == ("isofield: error: fit.yaml: the method of a single-shape fit; start it with "
                   "`isofield fit INPUT --config fit.yaml`\n")
    (tmp_path / "odd.yaml").write_text("method: nerf\n")
    code, _, err = run_cli(capsys, "train", "odd.yaml")
    assert code == 2 and err.startswith("isofield: error: odd.yaml: method: unknown method 'nerf' (known: igr,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.yaml", "odd.yaml"]


# --------------------------------------------------------------------------------------------
# resuming runs of the families trained from a config
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["deepsdf", "occupancy", "shapegf"])
def test_resuming_a_finished_run_says_so_and_writes_nothing(runs, capsys, family):
    from test_cli import snapshot

    before = snapshot(runs[family])
    code, out, err = run_cli(capsys, "train", "--resume", runs[family])
    assert (code, err) == (0, "")
    assert out == (f"{runs[family]} already finished at step {STEPS} (of {STEPS} steps); "
                   "give a larger --steps or --time-budget to train on\n")
    assert snapshot(runs[family]) == before


@pytest.mark.parametrize("family", ["deepsdf", "occupancy", "shapegf"])
def test_resuming_a_run_killed_while_writing_its_outputs_writes_them(runs, capsys, tmp_path, family):
    # Before: "already finished", and the run never got its report.
    run = tmp_path / family
    shutil.copytree(runs[family], run)
    (run / "report.html").unlink()
    code, out, err = run_cli(capsys, "train", "--resume", run, "-q")
    assert code == 0, err
    assert f"{run}: finished after {STEPS} steps" in out
    assert (run / "report.html").is_file()
    assert load_checkpoint(run / "checkpoints" / "latest.pt").step == STEPS


def test_a_resumed_run_takes_new_limits_and_device_and_refuses_another_folder(runs, capsys, tmp_path):
    run = tmp_path / "deepsdf"
    shutil.copytree(runs["deepsdf"], run)
    code, out, err = run_cli(capsys, "train", "--resume", run, "-o", tmp_path / "elsewhere")
    assert (code, out) == (2, "")
    assert err == (f"isofield: error: -o {tmp_path / 'elsewhere'}: a resumed run stays in {run} "
                   "(leave -o out)\n")
    assert not (tmp_path / "elsewhere").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["device"] == "auto"
    code, out, err = run_cli(capsys, "train", "--resume", run, "--steps", STEPS + 2, "--device", "cpu", "-q")
    assert code == 0, err
    assert out.startswith(f"{run}: finished after {STEPS + 2} steps")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["device"], config["train"]["steps"]) == ("cpu", STEPS + 2)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_new_run_on_a_missing_device_is_refused_before_anything_is_written(chairs, capsys, tmp_path):
    config = tmp_path / "space.yaml"
    config.write_text(yaml.safe_dump({"data": str(chairs), "preset": "cpu", "train": {"steps": 2}}))
    code, out, err = run_cli(capsys, "train", config, "--device", "cuda", "-o", tmp_path / "run")
    assert (code, out) == (2, "")
    assert err == "isofield: error: device 'cuda' asked for, but CUDA is not available here\n"
    assert not (tmp_path / "run").exists()

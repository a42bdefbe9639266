"""Procedural chairs and tables: meshes, exact SDF values, determinism, variety, family folders."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import isofield.data.procedural as procedural
from isofield.data.procedural import MANIFEST_NAME, mesh_file_name, read_manifest, write_family
from isofield.errors import InputError
from isofield.extract.api import shape_mesh
from isofield.geometry.furniture import (
    CHAIR_FRAME,
    TABLE_FRAME,
    ChairParameters,
    TableParameters,
    family_parameters,
    family_shape,
)
from isofield.geometry.io import describe_mesh, read_mesh
from isofield.geometry.shapes import padded_bounds

RESOLUTION = 128
SAMPLES = 200


def first_index(kind: str, wanted: Callable[[object], bool]) -> int:
    """The first index (seed 0) whose parameters satisfy ``wanted``."""
    return next(i for i in range(SAMPLES) if wanted(family_parameters(kind, i, 0)))


# One shape of each style, found by its parameters (seed 0).
STYLES = {
    "chair: round splayed legs, stretchers": ("chairs", lambda p: p.leg_style == "round" and p.stretchers),
    "chair: square legs, slats, arms": (
        "chairs", lambda p: p.leg_style == "square" and p.back_style == "slats" and p.arms),
    "chair: rails, strong recline": ("chairs", lambda p: p.back_style == "rails" and p.back_recline > 12),
    "chair: swivel": ("chairs", lambda p: p.base == "swivel"),
    "table: rectangle, apron": ("tables", lambda p: p.top_shape == "rectangle" and p.apron),
    "table: round, legs": ("tables", lambda p: p.top_shape == "round" and p.base == "legs"),
    "table: trestles": ("tables", lambda p: p.top_shape == "rectangle" and p.base == "pedestal"),
    "table: round pedestal": ("tables", lambda p: p.top_shape == "round" and p.base == "pedestal"),
}


@pytest.fixture(scope="module", params=sorted(STYLES))
def styled_mesh(request):
    kind, wanted = STYLES[request.param]
    index = first_index(kind, wanted)
    shape, parameters = family_shape(kind, index, 0)
    return kind, shape, parameters, shape_mesh(shape, RESOLUTION)


# ------------------------------------------------------------------------------------ meshes


def test_mesh_is_one_watertight_outward_component_standing_on_the_floor(styled_mesh) -> None:
    kind, shape, _, mesh = styled_mesh
    description = describe_mesh(mesh)
    assert description["watertight"] and description["consistently_oriented"]
    assert description["components"] == 1
    assert description["degenerate_faces"] == 0
    assert mesh.volume > 0  # outward normals
    frame = CHAIR_FRAME if kind == "chairs" else TABLE_FRAME
    lo, hi = np.array(description["bounds_min"]), np.array(description["bounds_max"])
    assert lo[1] == pytest.approx(frame.floor, abs=0.02)  # cut flat by the floor
    assert np.all(lo > -1.05) and np.all(hi < 1.05)
    assert lo[0] + hi[0] == pytest.approx(0.0, abs=1e-3)  # symmetric in x


def test_mesh_lies_on_the_analytic_surface_within_half_a_cell(styled_mesh) -> None:
    _, shape, _, mesh = styled_mesh
    lo, hi = padded_bounds(shape)
    cell = float(np.max(hi - lo)) / RESOLUTION
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    assert np.abs(shape.sdf(mesh.vertices)).max() < 0.5 * cell  # measured: up to 0.33 cell
    # Face centres cut across sharp edges (a round top's rim: 0.63 cell), but on average lie on it.
    centroid_error = np.abs(shape.sdf(centroids))
    assert centroid_error.max() < cell and centroid_error.mean() < 0.05 * cell


def test_mesh_volume_matches_monte_carlo_volume_of_the_sdf(styled_mesh) -> None:
    _, shape, _, mesh = styled_mesh
    lo, hi = shape.bounds
    points = np.random.default_rng(0).uniform(lo, hi, size=(200_000, 3))
    monte_carlo = float(np.mean(shape.sdf(points) < 0)) * float(np.prod(hi - lo))
    assert mesh.volume == pytest.approx(monte_carlo, rel=0.03)  # measured: 0.7-1.7% (MC cuts convex edges)


# ----------------------------------------------------------------------- exact hand values


def flat_chair(**changes: object) -> ChairParameters:
    """A plain chair: flat upright solid back, square legs, no arms (metres)."""
    values = dict(
        seat_width=0.5, seat_depth=0.45, seat_height=0.45, seat_thickness=0.05, seat_rounding=0.0,
        base="legs", leg_style="square", leg_thickness=0.04, leg_inset=0.02, leg_splay=0.0,
        stretchers=False, stretcher_height=0.15, back_style="solid", back_bars=3, back_height=0.4,
        back_width=1.0, back_thickness=0.03, back_bar_width=0.04, back_recline=0.0, back_curvature=0.0,
        back_corner=0.0, arms=False, arm_height=0.2, arm_width=0.05, arm_thickness=0.04,
    )
    return ChairParameters(**{**values, **changes})


def model(frame, x: float, y: float, z: float) -> np.ndarray:
    return np.array([frame.point(x, y, z)])


def test_chair_sdf_hand_values() -> None:
    chair = flat_chair()
    shape, scale = chair.shape(), CHAIR_FRAME.scale
    # 10 cm above the seat's middle (the back is 22.5 cm behind): 10 cm away.
    assert shape.sdf(model(CHAIR_FRAME, 0, 0.55, 0))[0] == pytest.approx(0.10 * scale, abs=1e-6)
    # The seat slab's centre: half its thickness inside.
    assert shape.sdf(model(CHAIR_FRAME, 0, 0.425, 0))[0] == pytest.approx(-0.025 * scale, abs=1e-6)
    # 10 cm behind the back (flat back on the seat's rear edge): 10 cm, up to the arc's sagitta.
    assert shape.sdf(model(CHAIR_FRAME, 0, 0.65, -0.325))[0] == pytest.approx(0.10 * scale, abs=1e-3 * scale)
    # The back's top edge: 0.85 m above the floor.
    assert shape.sdf(model(CHAIR_FRAME, 0, 0.95, -0.21))[0] == pytest.approx(0.10 * scale, abs=1e-3 * scale)
    # Inside a leg, 1 cm above the floor: 2 cm (half the leg) from its sides, 1 cm from the floor cut.
    corner_x, corner_z = 0.25 - 0.02 - 0.02, 0.225 - 0.02 - 0.02
    assert shape.sdf(model(CHAIR_FRAME, corner_x, 0.01, corner_z))[0] == pytest.approx(-0.01 * scale, abs=1e-6)


def test_reclined_back_top_is_set_back_by_height_times_tangent() -> None:
    chair = flat_chair(back_recline=15.0, back_curvature=0.0)
    shape = chair.shape()
    top_rear = -0.225 - 0.4 * np.tan(np.radians(15.0))  # rear face of the back at its top, on the chord
    probes = np.array([CHAIR_FRAME.point(0, 0.84, top_rear + dz) for dz in (-0.02, 0.0, 0.02)])
    outside, surface, inside = shape.sdf(probes)
    assert outside > 0 > inside
    assert abs(surface) < 0.01 * CHAIR_FRAME.scale


def test_table_sdf_hand_values() -> None:
    table = TableParameters(
        top_shape="round", top_length=1.0, top_width=1.0, top_height=0.75, top_thickness=0.04,
        top_rounding=0.0, base="pedestal", leg_style="round", leg_thickness=0.05, leg_inset=0.05,
        leg_splay=0.0, apron=False, apron_height=0.08, stretchers=False, stretcher_height=0.2, foot_spread=0.6,
    )
    shape, scale = table.shape(), TABLE_FRAME.scale
    assert shape.sdf(model(TABLE_FRAME, 0.2, 0.80, 0.1))[0] == pytest.approx(0.05 * scale, abs=1e-6)  # above the top
    assert shape.sdf(model(TABLE_FRAME, 0.55, 0.73, 0.0))[0] == pytest.approx(0.05 * scale, abs=1e-6)  # beside its rim
    assert shape.sdf(model(TABLE_FRAME, 0.0, 0.4, 0.0))[0] == pytest.approx(-0.05 * scale, abs=1e-6)  # column axis
    assert shape.sdf(model(TABLE_FRAME, 0.0, 0.4, 0.15))[0] == pytest.approx(0.10 * scale, abs=1e-6)  # beside it


# ---------------------------------------------------------------- determinism and variety


def test_same_seed_and_index_give_identical_shapes_and_others_differ() -> None:
    shape, parameters = family_shape("chairs", 7, seed=3)
    again, parameters_again = family_shape("chairs", 7, seed=3)
    assert parameters == parameters_again
    vertices = shape_mesh(shape, 48).vertices
    assert np.array_equal(vertices, shape_mesh(again, 48).vertices)
    other_index, other_seed = family_shape("chairs", 8, seed=3), family_shape("chairs", 7, seed=4)
    assert other_index[1] != parameters and other_seed[1] != parameters
    other_vertices = shape_mesh(other_index[0], 48).vertices
    assert other_vertices.shape != vertices.shape or not np.allclose(other_vertices, vertices)


@pytest.mark.parametrize("kind, cls", [("chairs", ChairParameters), ("tables", TableParameters)])
def test_parameters_round_trip_through_json(kind: str, cls: type) -> None:
    for index in range(20):
        parameters = family_parameters(kind, index, 0)
        assert cls(**json.loads(json.dumps(parameters.to_dict()))) == parameters


def test_chair_parameters_are_varied_within_their_ranges() -> None:
    chairs = [family_parameters("chairs", i, 0) for i in range(SAMPLES)]
    widths = np.array([c.seat_width for c in chairs])
    assert 0.40 <= widths.min() < 0.42 and 0.54 < widths.max() <= 0.56
    assert widths.std() == pytest.approx(0.16 / np.sqrt(12), rel=0.15)  # uniform on [0.40, 0.56]
    recline = np.array([c.back_recline for c in chairs])
    assert 0.0 <= recline.min() < 1.0 and 17.0 < recline.max() <= 18.0
    assert 0.2 <= np.mean([c.arms for c in chairs]) <= 0.4  # odds 0.3
    assert 0.08 <= np.mean([c.base == "swivel" for c in chairs]) <= 0.22  # odds 0.15
    for style, odds in (("solid", 0.45), ("slats", 0.35), ("rails", 0.20)):
        assert np.mean([c.back_style == style for c in chairs]) == pytest.approx(odds, abs=0.1)
    assert {c.back_bars for c in chairs if c.back_style != "solid"} >= {2, 3, 4}
    assert not any(c.stretchers for c in chairs if c.base == "swivel")
    assert len({tuple(c.to_dict().values()) for c in chairs}) == SAMPLES


def test_table_parameters_are_varied() -> None:
    tables = [family_parameters("tables", i, 0) for i in range(SAMPLES)]
    assert np.mean([t.top_shape == "round" for t in tables]) == pytest.approx(0.3, abs=0.1)
    assert 0.1 <= np.mean([t.base == "pedestal" for t in tables]) <= 0.4
    assert all(t.top_width == t.top_length for t in tables if t.top_shape == "round")
    ratios = [t.top_width / t.top_length for t in tables if t.top_shape == "rectangle"]
    assert min(ratios) < 0.55 and max(ratios) > 0.95


def test_no_part_is_thinner_than_two_and_a_half_percent_of_the_size() -> None:
    for index in range(SAMPLES):
        c = family_parameters("chairs", index, 0)
        size = max(c.seat_height + c.back_height, c.seat_width, c.seat_depth)
        parts = [c.seat_thickness, c.leg_thickness, c.back_thickness, c.back_bar_width, c.arm_width,
                 c.arm_thickness, max(0.6 * c.leg_thickness, 0.028)]
        assert min(parts) / size >= 0.025, index
        t = family_parameters("tables", index, 0)
        size = max(t.top_length, t.top_width, t.top_height)
        assert min(t.top_thickness, 0.75 * t.leg_thickness) / size >= 0.025, index


def test_slats_and_rails_leave_gaps_of_at_least_three_centimetres() -> None:
    for index in range(SAMPLES):
        c = family_parameters("chairs", index, 0)
        bar = c.back_bar_width
        if c.back_style == "slats":
            room = c.back_width * c.seat_width - 2 * bar
        elif c.back_style == "rails":
            room = c.back_height - 1.5 * bar
        else:
            continue
        assert (room - c.back_bars * bar) / (c.back_bars + 1) >= 0.03 - 1e-9, index


def test_extreme_chair_is_one_watertight_piece() -> None:
    """Extreme corners of the ranges (max recline and curvature, arms, narrow back) still join up."""
    chair = dataclasses.replace(
        flat_chair(), back_style="rails", back_bars=5, back_height=0.55, back_recline=18.0,
        back_curvature=1.2, back_width=0.85, arms=True, arm_height=0.26, base="swivel",
    )
    description = describe_mesh(shape_mesh(chair.shape(), 96))
    assert description["watertight"] and description["components"] == 1


@pytest.mark.parametrize(
    "kind, index, seed, message",
    [("sofas", 0, 0, "unknown furniture family 'sofas'"), ("chairs", -1, 0, "index must be a non-negative"),
     ("chairs", 0, 1.5, "seed must be a non-negative"), ("tables", True, 0, "index must be")],
)
def test_family_shape_rejects_bad_arguments(kind: str, index: object, seed: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        family_shape(kind, index, seed)


# ----------------------------------------------------------------------------- family folders


@pytest.fixture
def count_meshing(monkeypatch) -> list[int]:
    """Counts calls of ``shape_mesh`` made by ``write_family``."""
    calls: list[int] = []
    original = procedural.shape_mesh

    def counted(shape, resolution=128):
        calls.append(resolution)
        return original(shape, resolution)

    monkeypatch.setattr(procedural, "shape_mesh", counted)
    return calls


def test_write_family_writes_meshes_and_parameters(tmp_path: Path) -> None:
    paths = write_family("tables", 3, tmp_path / "out", seed=5, resolution=32)
    assert [p.name for p in paths] == ["table_0000.obj", "table_0001.obj", "table_0002.obj"]
    manifest = read_manifest(tmp_path / "out")
    assert {k: manifest[k] for k in ("family", "seed", "resolution", "count", "complete")} == {
        "family": "tables", "seed": 5, "resolution": 32, "count": 3, "complete": True}
    assert manifest["frame"] == {"scale": TABLE_FRAME.scale, "floor": TABLE_FRAME.floor}
    assert manifest["shapes"][2] == {"index": 2, "file": "table_0002.obj",
                                     "parameters": family_shape("tables", 2, 5)[1]}
    mesh = read_mesh(paths[1])
    expected = shape_mesh(family_shape("tables", 1, 5)[0], 32)
    assert len(mesh.faces) == len(expected.faces)
    assert np.allclose(mesh.vertices, expected.vertices, atol=1e-6)
    assert describe_mesh(mesh)["watertight"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MANIFEST_NAME] + [p.name for p in paths]


def test_write_family_resumes_and_extends_without_remaking_meshes(tmp_path: Path, count_meshing: list[int]) -> None:
    paths = write_family("chairs", 2, tmp_path, resolution=32)
    first = paths[0].read_bytes()
    paths[1].unlink()  # as if interrupted before the second mesh
    assert count_meshing == [32, 32]
    write_family("chairs", 3, tmp_path, resolution=32)
    assert count_meshing == [32, 32, 32, 32]  # only chair 1 (again) and the new chair 2
    assert paths[0].read_bytes() == first and paths[1].exists()
    assert read_manifest(tmp_path)["count"] == 3


def test_write_family_is_independent_of_the_count(tmp_path: Path) -> None:
    small = write_family("chairs", 1, tmp_path / "one", seed=2, resolution=32)
    large = write_family("chairs", 2, tmp_path / "two", seed=2, resolution=32)
    assert small[0].read_bytes() == large[0].read_bytes()


def test_write_family_refuses_other_settings_unless_overwriting(tmp_path: Path, count_meshing: list[int]) -> None:
    paths = write_family("chairs", 1, tmp_path, seed=0, resolution=32)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(InputError, match=rf"{MANIFEST_NAME}: exists, made with family 'chairs', seed 0, resolution 32"):
        write_family("chairs", 1, tmp_path, seed=1, resolution=32)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    write_family("chairs", 1, tmp_path, seed=1, resolution=32, overwrite=True)
    assert read_manifest(tmp_path)["seed"] == 1
    assert paths[0].read_bytes() != before[paths[0]]
    assert len(count_meshing) == 2


def test_write_family_refuses_meshes_it_has_no_record_of(tmp_path: Path) -> None:
    stray = tmp_path / mesh_file_name("chairs", 0)
    stray.write_text("not ours")
    with pytest.raises(InputError, match=r"chair_0000\.obj: exists, and .*parameters\.json does not say"):
        write_family("chairs", 2, tmp_path, resolution=32)
    assert stray.read_text() == "not ours" and sorted(tmp_path.iterdir()) == [stray]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(kind="sofas"), "unknown shape family 'sofas'; known families: chairs, tables"),
        (dict(count=0), "count must be a positive integer"),
        (dict(count=2.5), "count must be a positive integer"),
        (dict(count=True), "count must be a positive integer"),
        (dict(count=10_001), "count must be at most 10000"),
        (dict(resolution=16), "resolution must be at least 32"),
        (dict(resolution="128"), "resolution must be a positive integer"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_write_family_rejects_bad_arguments_before_writing(tmp_path: Path, arguments: dict, message: str) -> None:
    out_dir = tmp_path / "out"
    call = {"kind": "chairs", "count": 2, "out_dir": out_dir, "resolution": 32, **arguments}
    with pytest.raises(InputError, match=message) as error:
        write_family(**call)
    assert "\n" not in str(error.value)
    assert not out_dir.exists()


def test_write_family_rejects_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(InputError, match="file.txt: exists and is not a folder"):
        write_family("chairs", 1, target, resolution=32)


def test_unreadable_parameters_file_is_named(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(InputError, match=rf"{MANIFEST_NAME}: not a readable JSON file"):
        write_family("chairs", 1, tmp_path, resolution=32)


# ----------------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize("kind, count", [("chairs", 200), ("tables", 100)])
def test_every_shape_of_a_large_family_meshes_into_one_watertight_piece(kind: str, count: int) -> None:
    for index in range(count):
        description = describe_mesh(shape_mesh(family_shape(kind, index, 0)[0], RESOLUTION))
        assert description["watertight"] and description["components"] == 1, index

"""Pictures and the HTML report: renders, slices, loss curves, report page."""

from __future__ import annotations

import math
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from skimage.measure import find_contours

from isofield.errors import InputError
from isofield.geometry.raster import Camera, bounding_sphere, rasterize
from isofield.viz.curves import loss_curves_figure, plot_loss_curves, read_history_csv
from isofield.viz.render import light_views, paint_views, render_comparison, render_mesh, render_views
from isofield.viz.report import Report, format_duration, format_value, write_report
from isofield.viz import slices
from isofield.viz.slices import plot_field_2d, plot_sdf_slice, plot_sdf_slices, sample_slice


def sphere_sdf(center=(0.0, 0.0, 0.0), radius=0.5):
    center = np.asarray(center, dtype=np.float32)
    return lambda p: (np.linalg.norm(p - center, axis=1) - radius).astype(np.float32)


def contour_points(grid, level=0.0):
    """All points (K, 2) in plane coordinates of the ``level`` contours of a SliceGrid."""
    pieces = find_contours(grid.values, level)
    rows_cols = np.concatenate(pieces)
    u = np.interp(rows_cols[:, 1], np.arange(len(grid.u)), grid.u)
    v = np.interp(rows_cols[:, 0], np.arange(len(grid.v)), grid.v)
    return np.stack([u, v], axis=1)


def png_size(path):
    with Image.open(path) as image:
        return image.size


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


# --- render --------------------------------------------------------------------------------


def test_orthographic_sphere_fills_disc_of_area_pi_r2():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    image = render_mesh(sphere, resolution=(240, 200), projection="orthographic", background="black")
    center, radius = bounding_sphere(sphere.vertices)
    camera = Camera.looking_at(center, radius, (240, 200), projection="orthographic")
    (c, edge), _ = camera.project(np.stack([center, center + radius * camera.right]))
    radius_px = np.linalg.norm(edge - c)
    assert radius_px == pytest.approx(100 / 1.05, rel=1e-6)  # shorter side 200 px, 5 % margin
    covered = np.any(image > 0, axis=2)
    assert covered.sum() == pytest.approx(math.pi * radius_px**2, rel=0.02)
    rows, cols = np.mgrid[0:200, 0:240]
    inner = np.hypot(cols + 0.5 - 120, rows + 0.5 - 100) < radius_px - 2
    assert covered[inner].all()  # no cracks between triangles
    rows, cols = np.nonzero(covered)
    assert cols.mean() == pytest.approx(120, abs=0.5) and rows.mean() == pytest.approx(100, abs=0.5)
    assert (image[0, 0] == 0).all() and (image[-1, -1] == 0).all() and (image[100, 5] == 0).all()


def test_perspective_sphere_disc_matches_projected_angle():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=2.0)
    image = render_mesh(sphere, resolution=(200, 200), projection="perspective", background="black")
    # the camera sits at distance r * 1.05 / sin(15 deg); the sphere subtends asin(r / d)
    half_angle = math.asin(math.sin(math.radians(15.0)) / 1.05)
    radius_px = 100 * math.tan(half_angle) / math.tan(math.radians(15.0))
    assert np.any(image > 0, axis=2).sum() == pytest.approx(math.pi * radius_px**2, rel=0.02)


def test_background_stays_background_colour():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    image = render_mesh(box, resolution=(64, 48), background=(0.2, 0.4, 0.6), view=(0, 0))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert (image[0, 0] == [51, 102, 153]).all() and (image[47, 63] == [51, 102, 153]).all()
    assert not (image[24, 32] == [51, 102, 153]).all()


def test_closer_sphere_occludes_farther_one():
    near = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    far = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    far.apply_translation((0.0, 0.0, -3.0))
    both = trimesh.util.concatenate([far, near])  # far faces first: order must not matter
    colors = np.zeros((len(both.faces), 3))
    colors[: len(far.faces)] = (0.0, 1.0, 0.0)
    colors[len(far.faces):] = (1.0, 0.0, 0.0)
    # camera on +z looking down -z (azimuth 0, elevation 0, y up): the near sphere is in front
    center, radius = bounding_sphere(both.vertices)
    camera = Camera.looking_at(center, radius, (128, 128), view=(0, 0), projection="orthographic")
    raster = rasterize(np.asarray(both.vertices), np.asarray(both.faces), camera)
    assert raster.face[64, 64] >= len(far.faces)
    eye_z = camera.eye[2]
    assert raster.depth[64, 64] == pytest.approx(eye_z - 0.5, abs=5e-3)
    image = render_mesh(both, resolution=(128, 128), view=(0, 0), color=colors, projection="orthographic")
    center_pixel = image[64, 64].astype(int)
    assert center_pixel[0] > 100 and center_pixel[1] < 60  # red: the near sphere
    (ring_px,), _ = camera.project(np.array([[0.75, 0.0, -3.0]]))  # on the far sphere only
    ring_pixel = image[int(ring_px[1]), int(ring_px[0])].astype(int)
    assert ring_pixel[1] > 100 and ring_pixel[0] < 60  # green: the far sphere


def test_flipped_faces_render_lit_like_proper_ones():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    flipped = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    proper_image = render_mesh(sphere, resolution=(96, 96))
    flipped_image = render_mesh(flipped, resolution=(96, 96))
    assert np.abs(proper_image.astype(int) - flipped_image.astype(int)).max() <= 1
    # a square whose normal points away from the camera is lit like one facing it
    square = trimesh.Trimesh([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    back = trimesh.Trimesh(square.vertices, square.faces[:, ::-1], process=False)
    front_pixel = render_mesh(square, resolution=(64, 64), view=(0, 0), color="white")[32, 32]
    back_pixel = render_mesh(back, resolution=(64, 64), view=(0, 0), color="white")[32, 32]
    assert (front_pixel == back_pixel).all()
    assert front_pixel.min() > 0.8 * 255


def test_vertex_colours_are_interpolated_across_faces():
    square = trimesh.Trimesh([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    options = {"resolution": (64, 64), "view": (0, 0), "projection": "orthographic"}
    # red on the left edge (x = -1), blue on the right (x = 1): lighting is uniform on a flat square
    # seen orthographically, so red falls and blue rises linearly along a row, and they meet halfway
    image = render_mesh(square, vertex_color=[[1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0], [1.0, 0, 0]], **options)
    row = image[32].astype(int)
    covered = np.flatnonzero(row[:, 1] < 200)                       # green stays 0 on the square
    red, blue = row[covered, 0], row[covered, 2]
    assert len(covered) > 40 and np.all(np.diff(red) <= 0) and np.all(np.diff(blue) >= 0)
    assert red[0] > 150 > 20 > blue[0] and blue[-1] > 150 > 20 > red[-1]
    assert np.ptp(red + blue) <= 2                                    # (1 - t) + t: the same sum everywhere
    middle = covered[len(covered) // 2]
    assert abs(row[middle, 0] - row[middle, 2]) <= 8
    # one colour at every vertex (uint8 here) renders like that colour given for the whole mesh
    uniform = render_mesh(square, vertex_color=np.tile([[51, 153, 102]], (4, 1)).astype(np.uint8), **options)
    plain = render_mesh(square, color=(0.2, 0.6, 0.4), **options)
    assert np.abs(uniform.astype(int) - plain.astype(int)).max() <= 1
    with pytest.raises(InputError, match=r"vertex_color: per-vertex colours must have shape \(4, 3\)"):
        render_mesh(square, vertex_color=np.zeros((3, 3)), **options)


def test_one_lit_view_painted_twice_is_two_renders():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    views, colours = ((30.0, 20.0), (210.0, 20.0)), np.abs(sphere.vertices)
    lit = light_views(sphere, views, (64, 48), supersample=2)
    assert [view.view for view in lit] == list(views) and lit[0].raster.face.shape == (96, 128)
    for paint_options in ({}, {"color": "red", "background": "black"}, {"vertex_color": colours}):
        once = paint_views(lit, **paint_options)
        again = render_views(sphere, None, views, (64, 48), supersample=2, **paint_options)
        np.testing.assert_array_equal(once, again)
    plain, coloured = paint_views(lit), paint_views(lit, vertex_color=colours)
    assert np.abs(plain.astype(int) - coloured.astype(int)).max() > 50   # the colours differ


def test_render_views_and_comparison_write_tiled_pngs(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=2)
    image = render_views(sphere, tmp_path / "views.png", resolution=(80, 60), supersample=1)
    label_height = (image.shape[0] - 2 * 60) // 2
    assert image.shape[1] == 160 and label_height > 0 and image.shape[0] == 2 * (60 + label_height)
    assert png_size(tmp_path / "views.png") == (image.shape[1], image.shape[0])
    small = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    both = render_comparison({"reference": sphere, "prediction": small}, tmp_path / "cmp.png", resolution=(80, 80))
    assert both.shape[1] == 160
    tiles = both[-80:]
    covered = np.any(tiles < 250, axis=2)
    # one shared camera: the half-size sphere covers about a quarter of the big one's pixels
    assert covered[:, 80:].sum() / covered[:, :80].sum() == pytest.approx(0.25, rel=0.1)
    assert no_temp_files(tmp_path)


def test_render_bad_input_raises_and_writes_nothing(tmp_path):
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int), process=False)
    with pytest.raises(InputError, match="no triangles"):
        render_mesh(empty, tmp_path / "empty.png")
    sphere = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(InputError, match="up must be"):
        render_mesh(sphere, tmp_path / "up.png", up="w")
    with pytest.raises(InputError, match="resolution"):
        render_mesh(sphere, tmp_path / "res.png", resolution=(0, 10))
    with pytest.raises(InputError, match="per-face colours"):
        render_mesh(sphere, tmp_path / "color.png", color=np.ones((3, 3)))
    assert list(tmp_path.iterdir()) == []


def test_render_real_meshes_fast(cgal_data, tmp_path):
    for name in ("armadillo", "ChineseDragon-10kv"):
        mesh = trimesh.load(cgal_data / "meshes" / f"{name}.off", process=False)
        start = time.perf_counter()
        image = render_mesh(mesh, tmp_path / f"{name}.png", resolution=(512, 512))
        elapsed = time.perf_counter() - start
        assert elapsed < 2.5, f"{name}: {elapsed:.2f} s"
        coverage = np.any(image < 255, axis=2).mean()
        assert 0.1 < coverage < 0.6
        assert png_size(tmp_path / f"{name}.png") == (512, 512)


# --- slices --------------------------------------------------------------------------------


def test_slice_zero_contour_lies_at_sphere_radius(tmp_path):
    grid = plot_sdf_slice(sphere_sdf(radius=0.5), tmp_path / "slice.png", bounds=1.0, axis="z", offset=0.2)
    points = contour_points(grid)
    expected = math.sqrt(0.5**2 - 0.2**2)
    assert np.abs(np.linalg.norm(points, axis=1) - expected).max() < 2e-3
    assert len(points) > 100
    assert (grid.u_name, grid.v_name) == ("x", "y")
    assert grid.values.shape == (256, 256)
    assert png_size(tmp_path / "slice.png") == (639, 550)  # figure size (5.81 x 5.0 in) at 110 dpi


def laid_out(figure):
    """True when everything drawn lies on the canvas, no axes' labels reach into another axes'
    box, and the figure's title and legend keep off every axes and its labels (the figures
    are laid out in fixed inches, not by matplotlib's layout engine)."""
    renderer = figure.canvas.get_renderer()
    width, height = figure.get_size_inches() * figure.dpi
    box = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        return False
    for ax in figure.axes:
        labels = ax.get_tightbbox(renderer)
        others = [other.get_window_extent(renderer) for other in figure.axes if other is not ax]
        if any(labels.overlaps(other) for other in others):
            return False
        if any(labels.overlaps(item.get_window_extent(renderer)) for item in [*figure.texts, *figure.legends]):
            return False
    return True


def saved_figures(monkeypatch, module):
    """The figures ``module`` saves, kept in a list (and still written)."""
    figures, save = [], module.save_figure
    monkeypatch.setattr(module, "save_figure", lambda figure, *a, **k: (figures.append(figure), save(figure, *a, **k)))
    return figures


@pytest.mark.parametrize("bounds, scale", [(1.0, 0.5), ([[-1000, -2500, -5], [12000, 2500, 5]], 3000.0),
                                           (0.001, 0.0003), ([[-1e6] * 3, [1e6] * 3], 4e5)])
def test_laid_out_slices_keep_every_label_on_the_canvas(tmp_path, monkeypatch, bounds, scale):
    # tick labels of any magnitude, the titles, the colour bar's label and the legend must fit
    figures = saved_figures(monkeypatch, slices)
    points = np.random.default_rng(0).normal(scale=scale, size=(500, 3))
    plot_sdf_slices(sphere_sdf(radius=scale), tmp_path / "three.png", bounds, resolution=48,
                    reference=sphere_sdf(radius=0.9 * scale), points=points, slab=scale,
                    title="Learned SDF, canonical frame (black: zero level; dashed: reference surface)")
    plot_sdf_slice(sphere_sdf(radius=scale), tmp_path / "one.png", bounds, resolution=48)
    assert len(figures) == 2 and all(laid_out(figure) for figure in figures)


def test_slice_planes_use_the_right_coordinates():
    center = (0.1, -0.2, 0.3)
    field = sphere_sdf(center, radius=0.6)
    for axis, (i, j), offset_index in (("z", (0, 1), 2), ("y", (0, 2), 1), ("x", (1, 2), 0)):
        grid = sample_slice(field, [[-1, -1, -1], [1, 1, 1]], axis=axis, offset=0.0, resolution=128)
        assert (grid.u_name, grid.v_name) == ("xyz"[i], "xyz"[j])
        points = contour_points(grid)
        expected = math.sqrt(0.6**2 - center[offset_index] ** 2)
        distances = np.linalg.norm(points - np.array([center[i], center[j]]), axis=1)
        assert np.abs(distances - expected).max() < 3e-3


def test_slice_non_square_bounds_keep_square_cells():
    grid = sample_slice(sphere_sdf(), [[-1, -0.5, -1], [1, 0.5, 1]], axis="z", resolution=200)
    assert grid.values.shape == (100, 200)
    assert grid.u[1] - grid.u[0] == pytest.approx(grid.v[1] - grid.v[0], rel=0.02)


def test_three_slices_and_colours_blue_inside(tmp_path):
    grids = plot_sdf_slices(
        sphere_sdf(radius=0.5), tmp_path / "three.png", 1.0, resolution=96, reference=sphere_sdf(radius=0.45)
    )
    assert [g.title for g in grids] == ["z = 0", "y = 0", "x = 0"]
    width, height = png_size(tmp_path / "three.png")
    assert width > 2.5 * height

    def blue_pixels(field):
        plot_sdf_slice(field, tmp_path / "c.png", 1.0, resolution=64)
        rgb = np.asarray(Image.open(tmp_path / "c.png").convert("RGB")).astype(int)
        return int(np.sum(rgb[..., 2] > rgb[..., 0] + 60))

    inside_everywhere = blue_pixels(lambda p: -1.0 - p[:, 0] ** 2)
    outside_everywhere = blue_pixels(lambda p: 1.0 + p[:, 0] ** 2)
    assert inside_everywhere > 5 * outside_everywhere  # negative (inside) is drawn blue


def test_field_2d_samples_the_field_exactly(tmp_path):
    circle = lambda p: np.linalg.norm(p, axis=1) - 0.5  # noqa: E731
    points = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    grid = plot_field_2d(circle, tmp_path / "circle.png", bounds=[[-1, -1], [1, 1]], resolution=64, points=points)
    assert grid.values[10, 20] == pytest.approx(math.hypot(grid.u[20], grid.v[10]) - 0.5, abs=1e-6)
    assert np.abs(np.linalg.norm(contour_points(grid), axis=1) - 0.5).max() < 5e-3
    assert (tmp_path / "circle.png").stat().st_size > 1000


def test_occupancy_slice_contours_at_one_half(tmp_path):
    occupancy = lambda p: 1.0 / (1.0 + np.exp(10.0 * (np.linalg.norm(p, axis=1) - 0.5)))  # noqa: E731
    grid = plot_sdf_slice(occupancy, tmp_path / "occ.png", 1.0, kind="occupancy")
    assert np.abs(np.linalg.norm(contour_points(grid, 0.5), axis=1) - 0.5).max() < 2e-3


def test_slice_shows_nan_values_grey(tmp_path):
    def half_nan(p):
        values = np.linalg.norm(p, axis=1) - 0.5
        values[p[:, 0] > 0.5] = np.nan
        return values

    grid = plot_sdf_slice(half_nan, tmp_path / "nan.png", 1.0, resolution=64)
    assert np.isnan(grid.values).mean() == pytest.approx(0.25, abs=0.02)
    rgb = np.asarray(Image.open(tmp_path / "nan.png").convert("RGB")).astype(int)
    grey = np.all(np.abs(rgb - 153) <= 1, axis=2)  # matplotlib "0.6"
    assert grey.sum() > 5000


def test_slice_bad_input_raises_and_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="bounds"):
        plot_sdf_slice(sphere_sdf(), tmp_path / "a.png", [[1, 1, 1], [0, 0, 0]])
    with pytest.raises(InputError, match="axis"):
        plot_sdf_slice(sphere_sdf(), tmp_path / "b.png", 1.0, axis="w")
    with pytest.raises(InputError, match="kind"):
        plot_sdf_slice(sphere_sdf(), tmp_path / "c.png", 1.0, kind="density")
    with pytest.raises(InputError, match="field returned shape"):
        plot_sdf_slice(lambda p: np.zeros((len(p), 3)), tmp_path / "d.png", 1.0)
    with pytest.raises(InputError, match="points"):
        plot_field_2d(lambda p: p[:, 0], tmp_path / "e.png", 1.0, points=np.zeros((4, 3)))
    assert list(tmp_path.iterdir()) == []


# --- loss curves ---------------------------------------------------------------------------


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_loss_curves_from_csv_with_learning_rate(tmp_path):
    csv = write_csv(
        tmp_path / "losses.csv",
        "step,sdf,eikonal,lr\n0,1.0,0.5,0.001\n10,0.5,,0.001\n20,0.25,0.1,0.0005\n",
    )
    history = read_history_csv(csv)
    assert history["sdf"][1].tolist() == [1.0, 0.5, 0.25]
    assert history["eikonal"][0].tolist() == [0.0, 20.0]  # the empty cell is skipped
    assert history["lr"][1].tolist() == [0.001, 0.001, 0.0005]
    plot_loss_curves(csv, tmp_path / "with_lr.png", title="fit")
    plot_loss_curves({"sdf": list(zip(*history["sdf"]))}, tmp_path / "without_lr.png")
    # the learning-rate panel makes the figure 6.0 in tall instead of 4.5 in (7.5 in wide)
    assert png_size(tmp_path / "with_lr.png") == (825, 660)
    assert png_size(tmp_path / "without_lr.png") == (825, 495)
    assert no_temp_files(tmp_path)


def test_loss_curves_per_group_learning_rates_and_cut_last_line(tmp_path):
    csv = write_csv(
        tmp_path / "losses.csv",
        "step,total,lr_decoder,lr_latent\n0,1.0,0.001,0.01\n1,0.5,0.001,0.005\n2,0.2",  # killed mid-line
    )
    history = read_history_csv(csv)
    assert history["total"][1].tolist() == [1.0, 0.5]
    plot_loss_curves(csv, tmp_path / "groups.png")
    assert png_size(tmp_path / "groups.png") == (825, 660)  # the learning-rate panel is there


def test_rollbacks_are_vertical_lines_where_the_count_grew_not_a_loss_curve(tmp_path):
    csv = write_csv(tmp_path / "losses.csv",
                    "step,total,rollbacks,lr\n0,9,0,1\n10,8,0,1\n20,7,1,1\n30,6,1,1\n40,5,3,1\n")
    loss_ax = loss_curves_figure(csv).axes[0]
    assert [line.get_label() for line in loss_ax.get_lines() if not line.get_label().startswith("_")] == [
        "total", "loss-spike rollback (3)"]
    verticals = [line.get_xdata()[0] for line in loss_ax.get_lines() if line.get_linestyle() == ":"]
    assert verticals == [20, 40]


def test_loss_curves_survive_non_positive_values(tmp_path):
    steps = np.arange(500)
    noisy = np.exp(-steps / 100.0) * np.where(steps % 7 == 0, -1.0, 1.0)
    history = {
        "total": [(0, 1.0), (1, 0.0), (2, -0.5), (3, 0.2)],
        "all_zero": [(0, 0.0), (1, 0.0)],
        "noisy": list(zip(steps, noisy)),
        "empty": [],
    }
    plot_loss_curves(history, tmp_path / "curves.png")
    assert png_size(tmp_path / "curves.png") == (825, 495)
    assert laid_out(loss_curves_figure(history))


def test_loss_curves_keep_long_tick_labels_on_the_canvas():
    # less than a decade on both log axes: matplotlib labels the minor ticks ("3x10^-1")
    history = {"total": [(0, 0.35), (5000, 0.21)], "lr": [(0, 3e-3), (5000, 2e-3)]}
    assert laid_out(loss_curves_figure(history, title="a long title: the loss terms of a fit"))


def test_loss_curves_bad_input_raises_and_writes_nothing(tmp_path):
    no_step = write_csv(tmp_path / "no_step.csv", "iteration,sdf\n0,1\n")
    with pytest.raises(InputError, match="no_step.csv.*'step'"):
        plot_loss_curves(no_step, tmp_path / "a.png")
    bad_cell = write_csv(tmp_path / "bad.csv", "step,sdf\n0,1\n1,abc\n")
    with pytest.raises(InputError, match=r"bad.csv:3: column 'sdf' is not a number"):
        plot_loss_curves(bad_cell, tmp_path / "b.png")
    with pytest.raises(InputError, match="missing.csv"):
        plot_loss_curves(tmp_path / "missing.csv", tmp_path / "c.png")
    with pytest.raises(InputError, match="unknown loss terms"):
        plot_loss_curves({"sdf": [(0, 1.0)]}, tmp_path / "d.png", terms=["eikonal"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "no_step.csv"]


# --- report --------------------------------------------------------------------------------


class ImageSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_has_metrics_figures_config_and_escapes_text(tmp_path):
    (tmp_path / "figures").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "figures" / "loss.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "render.png")
    path = (
        Report("run <script>alert('x')</script>")
        .add_metrics("Evaluation", {"chamfer_l1": 0.0042137, "iou": np.float32(0.5), "points": 100000})
        .add_figure("figures/loss.png", "losses & <co>")
        .add_figure(tmp_path / "render.png", "render")
        .add_table("Shapes", [{"shape": "bunny", "f_score": 0.75}, {"shape": "cow"}])
        .add_timings({"training": 125.0})
        .add_config({"method": "igr", "lr": np.float64(0.001), "layers": (512, 512)})
        .add_text("note <b>one</b>\n\nnote two")
        .write(tmp_path)
    )
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<b>" not in page and "losses &amp; &lt;co&gt;" in page
    for text in ("0.004214", "0.5", "100,000", "0.75", "2 min 05 s", "method: igr", "lr: 0.001", "layers: [512, 512]"):
        assert text in page
    parser = ImageSources()
    parser.feed(page)
    assert parser.sources == ["figures/loss.png", "render.png"]
    assert all((tmp_path / src).is_file() and not Path(src).is_absolute() for src in parser.sources)
    assert no_temp_files(tmp_path)


def test_write_report_convenience(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "slice.png")
    path = write_report(
        tmp_path, "fit", metrics={"hausdorff": 2.5e-6}, figures=[("slice.png", "slice")], config="a: 1\n"
    )
    page = path.read_text(encoding="utf-8")
    assert "2.500e-06" in page and 'src="slice.png"' in page and "<pre>a: 1\n</pre>" in page


def test_report_figure_problems_raise_and_write_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(InputError, match="does not exist"):
        Report("r").add_figure("missing.png").write(run)
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    with pytest.raises(InputError, match="outside the report folder"):
        Report("r").add_figure(tmp_path / "outside.png").write(run)
    assert list(run.iterdir()) == []


def test_report_figures_of_a_run_named_relatively_are_found(tmp_path, monkeypatch):
    # `isofield train cfg -o runs/base`: the run's figure paths are runs/base/loss.png, relative
    # to the working directory, not to the report's folder runs/base
    monkeypatch.chdir(tmp_path)
    run = Path("runs") / "base"
    run.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(run / "loss.png")
    page = Report("r").add_figure(run / "loss.png").add_figure("loss.png").write(run).read_text()
    assert page.count('src="loss.png"') == 2


def test_report_links_are_relative_and_must_lie_in_the_folder(tmp_path):
    run = tmp_path / "run"
    (run / "view").mkdir(parents=True)
    (run / "view" / "mesh.html").write_text("<html></html>")
    page = Report("r").add_links("3-D", [("view/mesh.html", "open <the> view")]).write(run).read_text()
    assert '<h2>3-D</h2>\n<ul><li><a href="view/mesh.html">open &lt;the&gt; view</a></li></ul>' in page
    (tmp_path / "outside.html").write_text("")
    with pytest.raises(InputError, match="report link .* is outside the report folder"):
        Report("r").add_links("3-D", [(tmp_path / "outside.html", "x")]).write(run / "other.html")
    with pytest.raises(InputError, match="report link .* does not exist"):
        Report("r").add_links("3-D", [("view/missing.html", "x")]).write(run / "other.html")
    assert not (run / "other.html").exists()


def test_number_and_duration_formatting():
    assert [format_value(v) for v in (0.0, 1234567, 0.123456, 12345.6, 1.5e-7, 3e7, True, float("nan"))] == [
        "0", "1,234,567", "0.1235", "12,346", "1.500e-07", "3.000e+07", "yes", "nan",
    ]
    durations = [format_duration(s) for s in (0.421, 12.34, 245.0, 7380.0)]
    assert durations == ["0.42 s", "12.3 s", "4 min 05 s", "2 h 03 min"]

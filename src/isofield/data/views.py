"""Rendered views of a shape for image-conditioned models (Occupancy Networks' single-view
reconstruction): shaded grey pictures on white, with the camera of each picture.

Viewpoints (:func:`view_angles`): ``count`` azimuths spread evenly around the up axis (+y), each
jittered within its ``360 / count`` degree sector, and elevations drawn uniformly in
:data:`ELEVATION_RANGE_DEG`, all from one seed (per shape in preprocessing). Every camera looks at
the origin (perspective, 30 degree field of view, :meth:`~isofield.geometry.raster.Camera.looking_at`)
from the distance (3.51) at which the unit cube ``[-0.5, 0.5]^3`` (the canonical frame of ONet's
layout) fits the picture from any direction, so the shape's size and position on screen are
comparable across views and shapes; the origin projects to the picture's centre.

Cameras, in the *canonical* frame (OpenCV conventions: camera x right, y down, z forward):

- ``world_to_camera`` (V, 3, 4) float64 ``[R | t]``: ``x_camera = R @ x + t``;
- ``intrinsics`` (V, 3, 3) float64 ``K`` in pixels: ``(u, v, 1) ~ K @ x_camera`` gives the
  column ``u`` and row ``v``, pixel ``(i, j)`` covering ``[i, i + 1) x [j, j + 1)`` (its centre
  is at ``i + 0.5``), row 0 at the top; exactly :meth:`~isofield.geometry.raster.Camera.project`;
- ``azimuth_deg``, ``elevation_deg`` (V,) float64: the viewpoints.

On disk (:func:`write_views`): ``000.png``, ``001.png``, ... and ``cameras.npz`` holding the
arrays above. :func:`read_views` also reads Occupancy Networks' ``img_choy2016`` folders
(``000.jpg`` ... and ``cameras.npz`` with per-view ``world_mat_<i>`` (3, 4), ``camera_mat_<i>``
(3, 3)): per-view arrays ``<name>_<i>`` come back stacked as ``<name>`` (V, ...), in ONet's own
conventions (their ``world_mat`` acts on the ShapeNet frame, not the canonical one).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, UnidentifiedImageError

from isofield.data.formats import _read_npz, _write_npz
from isofield.errors import InputError
from isofield.geometry.raster import Camera
from isofield.geometry.sampling import _positive_count
from isofield.viz.render import render_mesh, write_png

ELEVATION_RANGE_DEG = (10.0, 40.0)
"""Elevations are uniform in this range (degrees above the horizontal plane): seats and table
tops are seen from above, and no view looks straight down."""

VIEW_COLOR = (0.72, 0.72, 0.72)
"""Base grey of the shaded surface; the background is white."""

VIEW_RESOLUTION = 128
"""Default picture size, pixels per side."""

VIEW_SUPERSAMPLE = 2
"""Each pixel averages 2 x 2 samples: anti-aliased outlines, for 1.7x (62k faces) to 3x (5k
faces) the time of one sample per pixel."""

CUBE_RADIUS = math.sqrt(3.0) / 2.0
"""Radius of the sphere around the canonical unit cube, framed by every camera."""

CAMERAS_NAME = "cameras.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""file suffixes read as pictures"""
_PER_VIEW = re.compile(r"(.+)_(\d+)")


def view_angles(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths (V,) and elevations (V,) in degrees for ``count`` views (see the module notes).

    Azimuth ``i`` lies in ``[i, i + 1) * 360 / count``; the same seed gives the same angles.
    """
    count = _positive_count(count, "number of views")
    rng = np.random.default_rng(seed)
    azimuth = (np.arange(count) + rng.uniform(0.0, 1.0, count)) * (360.0 / count)
    elevation = rng.uniform(*ELEVATION_RANGE_DEG, count)
    return azimuth, elevation


def render_views(
    mesh: trimesh.Trimesh,
    count: int,
    resolution: int = VIEW_RESOLUTION,
    seed: int = 0,
    supersample: int = VIEW_SUPERSAMPLE,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``count`` views of ``mesh``, given in the canonical frame (inside the unit cube).

    Args:
        mesh: the shape in the canonical frame of ONet's layout (bounding box in
            ``[-0.5, 0.5]^3``); parts outside the cube's bounding sphere may leave the picture.
        count: number of views V.
        resolution: pixels per side.
        seed: seeds the viewpoints (:func:`view_angles`).
        supersample: samples per pixel side (1: aliased outlines).

    Returns:
        images (V, resolution, resolution, 3) uint8 and the cameras (module notes).
    """
    azimuths, elevations = view_angles(count, seed)
    size = (resolution, resolution)
    images, extrinsics, intrinsics = [], [], []
    for view in zip(azimuths, elevations):
        camera = Camera.looking_at(np.zeros(3), CUBE_RADIUS, size, view, up="y")
        image = render_mesh(mesh, camera=camera, color=VIEW_COLOR, supersample=supersample)
        images.append(image)
        extrinsics.append(_world_to_camera(camera))
        intrinsics.append(_intrinsics(camera))
    cameras = {
        "world_to_camera": np.stack(extrinsics),
        "intrinsics": np.stack(intrinsics),
        "azimuth_deg": azimuths,
        "elevation_deg": elevations,
    }
    return np.stack(images), cameras


def _world_to_camera(camera: Camera) -> np.ndarray:
    """(3, 4) ``[R | t]`` of a perspective camera, OpenCV axes (x right, y down, z forward)."""
    rotation = np.stack([camera.right, -camera.up, -camera.backward])
    return np.column_stack([rotation, -rotation @ camera.eye])


def _intrinsics(camera: Camera) -> np.ndarray:
    """(3, 3) pixel intrinsics reproducing :meth:`Camera.project` of a perspective camera."""
    focal = 0.5 * min(camera.width, camera.height) * camera.scale
    return np.array(
        [[focal, 0.0, 0.5 * camera.width], [0.0, focal, 0.5 * camera.height], [0.0, 0.0, 1.0]]
    )


def view_file_names(count: int) -> list[str]:
    """Names of the pictures of ``count`` views: ``000.png``, ``001.png``, ..."""
    return [f"{index:03d}.png" for index in range(count)]


def write_views(
    folder: str | os.PathLike, images: np.ndarray, cameras: dict[str, np.ndarray]
) -> None:
    """Write images (V, H, W, 3) uint8 as ``folder/000.png ...`` and ``cameras`` (arrays of V
    rows each) as ``folder/cameras.npz``, every file atomically, the cameras last.

    Other numbered pictures (left from an earlier write with more views) are removed, so the
    folder holds exactly these V pictures.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(
            f"{folder}: views must be (V, H, W, 3) uint8, got {images.shape} {images.dtype}"
        )
    count = len(images)
    for key, value in cameras.items():
        if np.shape(value)[:1] != (count,):
            raise InputError(
                f"{folder}: camera array '{key}' has shape {np.shape(value)} for {count} views"
            )
    folder = Path(folder)
    names = view_file_names(count)
    for name, image in zip(names, images):
        write_png(image, folder / name)
    for stale in _numbered_images(folder):
        if stale.name not in names:
            stale.unlink()
    _write_npz(folder / CAMERAS_NAME, dict(cameras))


def read_views(folder: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pictures (V, H, W, 3) uint8 and cameras of a views folder (ours or ONet's, module notes).

    Raises:
        InputError naming the folder or file: no pictures, no ``cameras.npz``, pictures of
        different sizes, an unreadable picture, or camera arrays whose count is not V.
    """
    folder = Path(folder)
    paths = _numbered_images(folder)
    if not paths:
        raise InputError(f"{folder}: no rendered views (000.png, ...) found")
    pictures = [read_image(path) for path in paths]
    for path, picture in zip(paths, pictures):
        if picture.shape != pictures[0].shape:
            raise InputError(
                f"{path}: picture is {picture.shape[:2]} (H, W), "
                f"{paths[0].name} is {pictures[0].shape[:2]}"
            )
    images = np.stack(pictures)
    cameras = _stack_per_view(_read_npz(folder / CAMERAS_NAME), folder / CAMERAS_NAME)
    for key, value in cameras.items():
        if value.shape[:1] != (len(images),):
            raise InputError(
                f"{folder / CAMERAS_NAME}: '{key}' has shape {value.shape}, the folder "
                f"{len(images)} pictures"
            )
    return images, cameras


def _numbered_images(folder: Path) -> list[Path]:
    """``folder``'s pictures named by their view number (``000.png``, ``12.jpg``), by number."""
    if not folder.is_dir():
        return []
    found = [
        path for path in folder.iterdir()
        if path.stem.isdigit() and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    return sorted(found, key=lambda path: int(path.stem))


def read_image(path: Path) -> np.ndarray:
    """A picture as RGB (H, W, 3) uint8; InputError naming ``path`` if it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read picture ({exc})") from None


def _stack_per_view(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """ONet's per-view keys ``<name>_<i>`` stacked into ``<name>`` (V, ...); others kept."""
    grouped: dict[str, dict[int, np.ndarray]] = {}
    cameras = {}
    for key, value in arrays.items():
        match = _PER_VIEW.fullmatch(key)
        if match:
            grouped.setdefault(match.group(1), {})[int(match.group(2))] = value
        else:
            cameras[key] = value
    for name, views in grouped.items():
        shapes = {value.shape for value in views.values()}
        if len(shapes) > 1:
            raise InputError(f"{path}: the arrays '{name}_<i>' differ in shape: {sorted(shapes)}")
        cameras[name] = np.stack([views[index] for index in sorted(views)])
    return cameras

"""The deepsdf family's hooks (:mod:`isofield.registry`): a DeepSDF shape space reconstructs a
shape from its SDF samples, completes a partial scan, interpolates between training shapes and
is evaluated on held-out shapes (protocols ``reconstruct`` and ``complete``)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from isofield.errors import InputError
from isofield.evaluation import RESULTS_NAME
from isofield.geometry.io import count_of, read_points, write_mesh
from isofield.geometry.normals import estimate_normals
from isofield.geometry.scan import ScanCamera, free_space_along_rays
from isofield.registry import FamilyHooks, refuse_unused
from isofield.runs import Run
from isofield.deepsdf.config import PRESETS, ShapeSpaceConfig, resolve_config
from isofield.deepsdf.evaluate import EvaluationSettings, evaluate_split, write_interpolation
from isofield.deepsdf.inference import Inference, complete, load_samples, reconstruct, training_index
from isofield.deepsdf.space import load_shape_space
from isofield.deepsdf.train import resume_shape_space, train_shape_space

Guard = Callable[[Path], Path]
"""A command's output check: the path, if it may be written (else InputError)."""


def fit_lines(name: str, inference: Inference, mesh_path: Path) -> list[str]:
    """What a reconstruction or completion prints: the loss, the time and the mesh written."""
    fit = inference.fit
    vertices = count_of(len(inference.mesh.vertices), "vertex", "vertices")
    return [f"{name}: loss {fit.initial_loss:.4g} -> {fit.final_loss:.4g} in {len(fit.history)} steps "
            f"({fit.seconds:.1f} s, mesh {inference.mesh_seconds:.1f} s)",
            f"mesh: {mesh_path} ({vertices}, user coordinates)"]


def rotation_line(inference: Inference) -> str:
    """The rotation a completion chose, with the flags that fix it."""
    fit, pose = inference.fit, inference.pose
    tried = len(fit.initial_losses) // len(fit.initial_codes)
    how = f"best of {tried}" if tried > 1 else "not searched"
    up, front = (" ".join(f"{value:.3g}" for value in vector.round(3) + 0.0) for vector in (pose.up, pose.front))
    return (f"rotation: {pose.degrees:g} deg about the up axis ({how}); the space's up is {up} and its front "
            f"{front} in the points' coordinates (--up {up} --front {front} fixes it)")


def reconstruct_shape(run: Run, shape: str, output: Path | None, *, guard: Guard, steps: int,
                      resolution: int | None, seed: int) -> list[str]:
    """Fit a code to ``shape``'s SDF samples (a ``.npz`` or a shape of the run's data) and write
    its mesh to ``output`` (default ``RUN/reconstructions/<shape>.ply``)."""
    space = load_shape_space(run.root)
    samples, frame, name = load_samples(space, shape)
    path = guard(output or run.root / "reconstructions" / f"{name}.ply")
    inference = reconstruct(space, samples, frame, resolution=resolution, steps=steps, seed=seed)
    write_mesh(inference.mesh, path)
    return fit_lines(name, inference, path)


def complete_scan(run: Run, points: Path, output: Path, *, frame: str | None, resolution: int | None,
                  seed: int, steps: int | None = None, restarts: int | None = None,
                  rotations: int | None = None, free_space: int = 0,
                  camera_origin: Sequence[float] | None = None, free_space_margin: float | None = None,
                  up: Sequence[float] | None = None, front: Sequence[float] | None = None) -> list[str]:
    """Complete the partial points in ``points`` (user coordinates; normals estimated where
    the file has none) and write the mesh to ``output`` (see :func:`.inference.complete`)."""
    space = load_shape_space(run.root)
    scan = read_points(points)
    origin = None if camera_origin is None else np.array(camera_origin)
    normals = scan.normals if scan.normals is not None else estimate_normals(scan.points, toward=origin)
    shape_frame = None if frame is None else load_samples(space, frame)[1]
    samples = None
    if free_space:
        if origin is None:
            raise InputError("--free-space needs --camera-origin X Y Z (printed by isofield scan)")
        margin = (0.01 if free_space_margin is None else free_space_margin) * float(
            np.linalg.norm(np.ptp(scan.points, axis=0)))
        samples = free_space_along_rays(scan.points, origin, free_space, seed, margin)
    elif origin is not None and scan.normals is not None:
        raise InputError("--camera-origin is only used with --free-space N (or to orient estimated normals)")
    elif free_space_margin is not None:
        raise InputError("--free-space-margin is only used with --free-space N")
    options = {key: value for key, value in (("steps", steps), ("restarts", restarts),
                                             ("rotations", rotations)) if value is not None}
    inference = complete(space, scan.points, normals, frame=shape_frame, free_space=samples, up=up,
                         front=front, resolution=resolution, seed=seed, **options)
    write_mesh(inference.mesh, output)
    lines = fit_lines(points.name, inference, output)
    if scan.normals is None:
        lines.append("normals: estimated (the points have none), "
                     + ("facing the camera origin" if origin is not None else "oriented outward"))
    lines.append(rotation_line(inference))
    if shape_frame is None:
        lines.append("frame: estimated from the scan (pass --frame SHAPE when the complete shape's is known)")
    return lines


def interpolate_shapes(run: Run, a: str, b: str, *, count: int, output: Path | None, guard: Guard,
                       resolution: int | None) -> list[str]:
    """Meshes and a picture of the codes from training shape ``a`` to ``b`` (index, key or
    id), in ``output`` (default ``RUN/interpolations/<a>-<b>``)."""
    space = load_shape_space(run.root)
    first, last = training_index(space, a), training_index(space, b)
    folder = guard(output or run.root / "interpolations" / f"{first}-{last}")
    names = tuple(space.shapes[index].ref.shape_id for index in (first, last))
    paths = write_interpolation(space, first, last, count, folder, resolution=resolution, names=names)
    return [f"{folder}: {len(paths) - 1} meshes (canonical frame) from {names[0]} to {names[1]}; "
            f"picture {paths[-1]}"]


def evaluate_shapes(run: Run, *, protocol: str, split: str | Path | None, data: str | Path | None,
                    out_dir: Path, seed: int, progress: bool, guard: Guard, steps: int | None = None,
                    restarts: int | None = None, resolution: int | None = None,
                    camera: ScanCamera | None = None, noise: float = 0.0, free_space: int = 0,
                    no_emd: bool = False, **others: Any) -> dict[str, Any]:
    """Reconstruct (``protocol`` reconstruct) or complete (complete, from a depth scan by
    ``camera`` with ``noise`` and ``free_space`` samples) every test shape, or mesh every training
    shape from its code (codes), and measure it
    (:func:`.evaluate.evaluate_split`); ``others``: other fields of
    :class:`.evaluate.EvaluationSettings` (``onet_points``, ``pictures``, ...). Returns the
    results record."""
    settings = {field.name for field in fields(EvaluationSettings)} - {"mode", "seed", "emd"}
    refuse_unused(others, used=tuple(settings))
    options: dict[str, Any] = {key: value for key, value in (("steps", steps), ("restarts", restarts),
                                                             ("resolution", resolution)) if value is not None}
    options.update((key, value) for key, value in others.items() if value is not None)
    if protocol == "complete":
        options.update(free_space=free_space, scan_noise=noise)
        if camera is not None:
            options["camera"] = camera
    elif free_space or noise or camera is not None:
        raise InputError("--free-space, --noise and --camera only apply to --mode complete")
    if protocol == "codes" and (steps is not None or restarts is not None):
        raise InputError("--steps and --restarts do not apply to --mode codes (it meshes the trained codes)")
    guard(out_dir / RESULTS_NAME)
    return evaluate_split(run.root, data, split, protocol, out_dir=out_dir, progress=progress, seed=seed,
                          emd=not no_emd, **options).record


HOOKS = FamilyHooks(
    config_type=ShapeSpaceConfig,
    presets=PRESETS,
    resolve_config=resolve_config,
    train=train_shape_space,
    resume=resume_shape_space,
    load=load_shape_space,
    verbs={"reconstruct": reconstruct_shape, "complete": complete_scan,
           "interpolate": interpolate_shapes, "evaluate": evaluate_shapes},
)

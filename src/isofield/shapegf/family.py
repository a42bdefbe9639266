"""The shapegf family's hooks (:mod:`isofield.registry`): a ShapeGF run generates point clouds
from its latent model, upsamples a user's cloud (and meshes its field), and is evaluated by
auto-encoding and generation (protocol ``autoencode``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from isofield.errors import InputError
from isofield.evaluation import RESULTS_NAME
from isofield.geometry.io import PointCloud, read_points, write_mesh, write_points
from isofield.registry import FamilyHooks, refuse_unused
from isofield.runs import Run
from isofield.shapegf.config import PRESETS, ShapeGFConfig, resolve_config
from isofield.shapegf.evaluate import evaluate_gradient_field
from isofield.shapegf.model import load_gradient_field
from isofield.shapegf.outputs import render_clouds
from isofield.shapegf.train import resume_gradient_field, train_gradient_field

POINTS = 2048
"""points per generated or auto-encoded cloud unless given"""
GENERATED = 100
"""shapes generated for the generation metrics unless given"""


def generate_clouds(run: Run, output: Path, *, count: int, seed: int, points: int | None = None,
                    **unused: Any) -> list[str]:
    """``count`` point clouds of ``points`` points from the latent model (canonical frame) and
    their picture, in ``output``."""
    refuse_unused(unused)
    points = POINTS if points is None else points
    model = load_gradient_field(run.root)
    codes = model.generate_codes(count, seed=seed)
    clouds = model.sample(codes, points, seed=seed).points.cpu().numpy()
    for index, cloud in enumerate(clouds):
        write_points(PointCloud(cloud), output / f"sample_{index:03d}.ply")
    render_clouds(clouds, output / "generated.png")
    return [f"{output}: {count} point clouds of {points} points (canonical frame), "
            f"picture {output / 'generated.png'}"]


def upsample_cloud(run: Run, points: Path, output: Path, *, count: int, mesh: Path | None,
                   resolution: int | None, seed: int) -> list[str]:
    """Encode the cloud in ``points`` (user coordinates) and write ``count`` Langevin samples
    of its surface to ``output`` and, when ``mesh`` is given, the surface of its field there."""
    model = load_gradient_field(run.root)
    given = read_points(points).points
    code, frame = model.encode_user_points(given, seed=seed)
    samples = model.sample(code[None], count, seed=seed).points[0].cpu().numpy()
    write_points(PointCloud(frame.to_user(samples)), output)
    lines = [f"{output}: {count} points (user coordinates)"]
    if mesh is not None:
        write_mesh(model.surface_mesh(code, resolution, normalization=frame,
                                      points=frame.to_canonical(given)), mesh)
        lines.append(f"{mesh}: the surface of the field (user coordinates)")
    return lines


def evaluate_clouds(run: Run, *, protocol: str, split: str | Path | None, data: str | Path | None,
                    out_dir: Path, seed: int, progress: bool, guard: Callable[[Path], Path],
                    points: int | None = None,
                    generate: int | None = None, no_emd: bool = False, **unused: Any) -> dict[str, Any]:
    """Auto-encoding of the test shapes and ``generate`` generated shapes against them
    (:func:`.evaluate.evaluate_gradient_field`); returns the results record."""
    refuse_unused(unused)
    points = POINTS if points is None else points
    generate = GENERATED if generate is None else generate
    if points < 1 or generate < 0:
        raise InputError("--points must be positive and --generate at least 0")
    guard(out_dir / RESULTS_NAME)
    return evaluate_gradient_field(run.root, out_dir, split=split, data_dir=data, points=points,
                                   generated=generate, seed=seed, with_emd=not no_emd,
                                   progress=progress).record


HOOKS = FamilyHooks(
    config_type=ShapeGFConfig,
    presets=PRESETS,
    resolve_config=resolve_config,
    train=train_gradient_field,
    resume=resume_gradient_field,
    load=load_gradient_field,
    verbs={"generate": generate_clouds, "upsample": upsample_cloud, "evaluate": evaluate_clouds},
)

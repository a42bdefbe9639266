"""The occupancy family's hooks (:mod:`isofield.registry`): ONet, ConvONet and sald-vae encode a
point cloud (or a picture) in one pass and mesh it, a VAE generates new shapes, and a run is
evaluated under the Occupancy Networks protocol (``onet``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from isofield.data.datasets import find_shapes
from isofield.data.onet import OccupancyDataDir
from isofield.data.views import IMAGE_SUFFIXES, read_image
from isofield.errors import InputError
from isofield.evaluation import RESULTS_NAME
from isofield.geometry.io import count_of, read_points, write_mesh
from isofield.occupancy.config import PRESETS, OccupancyConfig, resolve_config
from isofield.occupancy.evaluate import evaluate_occupancy
from isofield.occupancy.model import load_occupancy_model
from isofield.occupancy.outputs import write_generated
from isofield.occupancy.train import resume_occupancy_network, train_occupancy_network
from isofield.registry import FamilyHooks, refuse_unused
from isofield.runs import Run


def complete_input(run: Run, points: Path, output: Path, *, frame: str | None, resolution: int | None,
                   seed: int, **unused: Any) -> list[str]:
    """Encode the cloud (or, for a single-image run, the picture) in ``points`` and write the
    mesh by MISE to ``output``: in user coordinates (the points' bounding box, or the frame of
    data shape ``frame``), a picture's in the canonical unit cube."""
    refuse_unused(unused)
    model = load_occupancy_model(run.root)
    if points.suffix.lower() in IMAGE_SUFFIXES:
        refuse_unused({"frame": frame})
        condition, placement = model.encode_image(read_image(points)), None
    else:
        placement = None
        if frame is not None:
            data = OccupancyDataDir(model.data_dir)
            placement = data.load_pointcloud(find_shapes(data.shapes(), [frame], str(data.root))[0])[1]
        condition, placement = model.encode_points(read_points(points).points, placement, seed=seed)
    mesh, stats = model.mesh(condition, resolution=resolution, normalization=placement)
    write_mesh(mesh, output)
    where = "canonical unit-cube frame" if placement is None else "user coordinates"
    return [f"mesh: {output} ({count_of(len(mesh.vertices), 'vertex', 'vertices')}, {where}; "
            f"{stats.points_evaluated} field evaluations, {stats.seconds:.1f} s)"]


def generate_shapes(run: Run, output: Path, *, count: int, seed: int, latent: str | None = None,
                    **unused: Any) -> list[str]:
    """Mesh ``count`` draws of a VAE's z (``latent``: "fitted", the Gaussian fitted to the
    training codes, the default where the run has one, or "prior") into ``output``."""
    refuse_unused(unused)
    if not run.config.get("latent_dim"):
        raise InputError(f"{run.root}: not a VAE (latent_dim: 0); `isofield generate` samples occupancy "
                         "VAEs (latent_dim > 0) and shapegf runs")
    model = load_occupancy_model(run.root)
    latents = latent or ("fitted" if model.latent_fit is not None else "prior")
    meshes = write_generated(model, output / "generated.png", count, seed=seed, latents=latents)
    for index, mesh in enumerate(meshes):
        if mesh is not None:
            write_mesh(mesh, output / f"sample_{index:03d}.ply")
    written = sum(mesh is not None for mesh in meshes)
    source = "the prior N(0, I)" if latents == "prior" else "the Gaussian fitted to the training codes"
    return [f"{output}: {written} of {count} samples meshed from z ~ {source} (canonical unit-cube "
            f"frame), picture {output / 'generated.png'}"]


def evaluate_shapes(run: Run, *, protocol: str, split: str | Path | None, data: str | Path | None,
                    out_dir: Path, seed: int, progress: bool, guard: Callable[[Path], Path],
                    validation: str | Path | None = None,
                    threshold: float | None = None, resolution: int | None = None,
                    **unused: Any) -> dict[str, Any]:
    """The ONet protocol on the shapes of ``split`` (required), the threshold chosen on
    ``validation`` shapes unless given (:func:`.evaluate.evaluate_occupancy`)."""
    refuse_unused(unused)
    if not split:
        raise InputError("--split: give the test shapes (a split JSON, a .lst file or a .lst name such as test)")
    guard(out_dir / RESULTS_NAME)
    return evaluate_occupancy(run.root, split, out_dir, validation=validation, data_dir=data,
                              threshold=threshold, resolution=resolution, seed=seed,
                              progress=progress).record


HOOKS = FamilyHooks(
    config_type=OccupancyConfig,
    presets=PRESETS,
    resolve_config=resolve_config,
    train=train_occupancy_network,
    resume=resume_occupancy_network,
    load=load_occupancy_model,
    verbs={"complete": complete_input, "generate": generate_shapes, "evaluate": evaluate_shapes},
)

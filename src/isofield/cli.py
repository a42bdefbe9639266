"""Command-line interface: parse, call the library, print, write files.

Every user-input problem surfaces as one line on stderr and exit code 2 (see
:class:`isofield.errors.InputError`); no traceback, no file written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from isofield.errors import InputError

if TYPE_CHECKING:
    from isofield.geometry.scan import ScanCamera

Handler = Callable[[argparse.Namespace], int]
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C / SIGTERM (128 + SIGINT, as a shell reports it), also when training
stopped cleanly at a checkpoint; ``--exit-after`` is a pause that was asked for, exit code 0."""
_HANDLERS: dict[str, Handler] = {}


def _command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def _check_output(output: str | Path, *inputs: str | Path | None) -> Path:
    """Refuse to write over one of the command's own inputs (even with --overwrite)."""
    out = Path(output).resolve()
    for item in inputs:
        if item is not None and Path(item).exists() and Path(item).resolve() == out:
            raise InputError(f"{output}: output path is the same as an input; choose another -o")
    return Path(output)


def _new_output(path: str | Path, overwrite: bool, *inputs: str | Path | None) -> Path:
    """The output guard of every command that writes: ``path`` (a file, or the folder of a
    command that writes several files), unless it is one of ``inputs``, or an existing file or
    non-empty folder and ``overwrite`` (--overwrite) was not given."""
    path = _check_output(path, *inputs)
    if overwrite or not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    what = "folder is not empty" if path.is_dir() else "already exists"
    raise InputError(f"{path}: {what}; choose another -o or pass --overwrite")


def _bounds(values: Sequence[float] | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if values is None:
        return None
    lo, hi = tuple(values[:3]), tuple(values[3:])
    if any(h <= l for l, h in zip(lo, hi)):
        raise InputError(f"--bounds: each max must exceed its min, got {list(values)}")
    return lo, hi


_CAMERA_KEYS = {
    "azimuth": float, "elevation": float, "distance": float, "fov": float, "resolution": int, "up": str,
}


def parse_camera(text: str) -> ScanCamera:
    """The ``--camera`` spec, e.g. ``"azimuth=30,elevation=20,resolution=256"``, as a
    :class:`~isofield.geometry.scan.ScanCamera`.

    Keys: ``azimuth``, ``elevation``, ``distance``, ``fov``, ``resolution``, ``up`` (see
    :class:`~isofield.geometry.scan.ScanCamera`); keys left out keep their defaults; an empty
    spec is the default camera. An unknown, repeated or malformed key, or a bad value, is an
    InputError naming it.
    """
    from isofield.geometry.scan import ScanCamera

    values: dict[str, object] = {}
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        key, equals, raw = (piece.strip() for piece in item.partition("="))
        if not equals:
            raise InputError(f"camera {text!r}: {item!r} is not key=value")
        if key not in _CAMERA_KEYS:
            known = ", ".join(sorted(_CAMERA_KEYS))
            raise InputError(f"camera {text!r}: unknown key {key!r} (known: {known})")
        if key in values:
            raise InputError(f"camera {text!r}: key {key!r} given twice")
        values[key] = _camera_value(key, raw)
    return ScanCamera(**values)


def _camera_value(key: str, raw: str) -> object:
    """The value of camera ``key`` read from its text, else InputError."""
    kind = _CAMERA_KEYS[key]
    try:
        return kind(raw)
    except ValueError:
        expected = {float: "a number", int: "an integer"}.get(kind, "a value")
        raise InputError(f"camera {key}: expected {expected}, got {raw!r}") from None


# ----------------------------------------------------------------------------- commands


@_command("info")
def _info(args: argparse.Namespace) -> int:
    from isofield.geometry.io import (PointCloud, count_of, describe_mesh, format_bounds,
                                      format_mesh_description, read_geometry)

    geometry = read_geometry(args.path)
    if isinstance(geometry, PointCloud):
        normals = "with normals" if geometry.normals is not None else "without normals"
        bounds = format_bounds(geometry.points.min(axis=0), geometry.points.max(axis=0))
        print(f"{args.path}: {count_of(len(geometry), 'point')} {normals}; {bounds}")
    else:
        print(f"{args.path}: {format_mesh_description(describe_mesh(geometry))}")
    return 0


@_command("sample")
def _sample(args: argparse.Namespace) -> int:
    from isofield.data.formats import write_samples
    from isofield.geometry.groundtruth import MeshDistance
    from isofield.geometry.io import read_mesh
    from isofield.geometry.samples import make_samples

    output = _new_output(args.output, args.overwrite, args.mesh)
    distance = MeshDistance(read_mesh(args.mesh))
    if args.kind != "surface":
        _warn_about_signs(distance, args.mesh)
    samples, normalization = make_samples(distance, kind=args.kind, n=args.n, seed=args.seed)
    write_samples(args.kind, samples, normalization, output)
    print(f"wrote {len(samples.points)} {args.kind} samples to {output}")
    return 0


def _field_source(args: argparse.Namespace, verb: str):
    """Field, its canonical bounds, normalisation and name from `--shape NAME`, a run directory
    whose family supports ``verb`` (its trained field) or a mesh file (its ground-truth SDF)."""
    from isofield.geometry.normalization import Normalization

    if args.shape:
        from isofield.geometry.shapes import get_shape, padded_bounds

        shape = get_shape(args.shape)
        return shape.sdf, padded_bounds(shape), Normalization.identity(), shape.name
    if not args.source:
        raise InputError("give a run directory, a mesh file or --shape NAME")
    if Path(args.source).is_dir():
        run = _open(args.source, verb)
        return run.hook(verb)(run)
    from isofield.geometry.groundtruth import MeshDistance
    from isofield.geometry.io import read_mesh

    mesh = read_mesh(args.source)
    normalization = Normalization.fit(mesh.vertices, "sphere")
    distance = MeshDistance(mesh)
    field = distance.signed_in(normalization)
    _warn_about_signs(distance, args.source)
    return field, ((-1.0,) * 3, (1.0,) * 3), normalization, Path(args.source).name


def _warn_about_signs(distance, path: str | Path) -> None:
    """Print the one-line warning of a mesh whose signs are often ambiguous (stderr)."""
    from isofield.geometry.groundtruth import sign_warning

    warning = sign_warning(str(path), distance.sign_method, distance.ambiguous_fraction)
    if warning:
        print(warning, file=sys.stderr)


@_command("mesh")
def _mesh(args: argparse.Namespace) -> int:
    from isofield.extract.api import extract_mesh
    from isofield.geometry.io import count_of, write_mesh

    output = _new_output(args.output, args.overwrite, args.source)
    field, bounds, normalization, name = _field_source(args, "mesh")
    mesh, stats = extract_mesh(
        field,
        bounds=_bounds(args.bounds) or bounds,
        resolution=args.resolution,
        method=args.method,
        normalization=normalization,
    )
    write_mesh(mesh, output)
    print(
        f"{name}: {count_of(len(mesh.vertices), 'vertex', 'vertices')}, {count_of(len(mesh.faces), 'face')} -> {output} "
        f"({stats.points_evaluated} field evaluations, {100 * stats.fraction:.1f}% of dense, {stats.seconds:.2f} s)"
    )
    return 0


@_command("slice")
def _slice(args: argparse.Namespace) -> int:
    from isofield.viz.slices import plot_sdf_slice

    output = _new_output(args.output, args.overwrite, args.source)
    field, bounds, normalization, name = _field_source(args, "slice")
    lower, upper = bounds = _bounds(args.bounds) or bounds
    axis = "xyz".index(args.axis)
    if not lower[axis] <= args.offset <= upper[axis]:
        raise InputError(f"--offset {args.offset:g}: outside the bounds along {args.axis}, "
                         f"{lower[axis]:g} to {upper[axis]:g} (canonical frame)")
    plot_sdf_slice(
        field,
        output,
        bounds=bounds,
        axis=args.axis,
        offset=args.offset,
        resolution=args.resolution,
        title=f"{name}: signed distance, {args.axis} = {args.offset:g} (canonical frame)",
    )
    print(f"wrote {output}")
    return 0


@_command("render")
def _render(args: argparse.Namespace) -> int:
    from isofield.geometry.io import PointCloud, read_geometry
    from isofield.geometry.raster import MAX_RESOLUTION
    from isofield.viz.points import cloud_picture, normal_colors
    from isofield.viz.render import render_mesh, write_png

    source = _run_mesh(Path(args.source)) if Path(args.source).is_dir() else Path(args.source)
    output = _new_output(args.output, args.overwrite, args.source, source)
    if not 1 <= args.size <= MAX_RESOLUTION:
        raise InputError(f"--size must be between 1 and {MAX_RESOLUTION} pixels, got {args.size}")
    if Path(output).suffix.lower() != ".png":
        raise InputError(f"{output}: renders are written as PNG; give a .png file name")
    geometry = read_geometry(source)
    resolution, view = (args.size, args.size), tuple(args.view)
    if isinstance(geometry, PointCloud):
        colors = None if geometry.normals is None else normal_colors(geometry.normals)
        write_png(cloud_picture(geometry.points, resolution, view, colors), output)
        shown = "coloured by normal" if colors is not None else "no normals: coloured by depth"
        print(f"wrote {output} ({len(geometry)} points, {shown})")
    else:
        render_mesh(geometry, output, resolution=resolution, view=view)
        print(f"wrote {output}")
    return 0


# What to render instead of a run of a family that holds a space of shapes, by family.
_SPACE_RUN_SHAPES = {
    "deepsdf": "`isofield reconstruct {run} SHAPE` writes {run}/reconstructions/SHAPE.ply",
    "occupancy": "`isofield complete {run} POINTS -o shape.ply` writes one",
    "shapegf": "`isofield generate {run}` writes point clouds to {run}/generated/",
}


def _run_mesh(path: Path) -> Path:
    """The mesh ``isofield render RUN`` draws: a fit's RUN/mesh.ply; for any other folder, an
    InputError saying what to render instead."""
    from isofield.runs import CONFIG_NAME, open_run

    if not (path / CONFIG_NAME).is_file():
        raise InputError(f"{path}: a folder that is not a run (no {CONFIG_NAME}); "
                         "give a mesh, a point cloud or a fit's run folder")
    run = open_run(path)
    if run.family.name != "fit":
        shapes = _SPACE_RUN_SHAPES[run.family.name].format(run=path)
        raise InputError(f"{path}: {run.family.title} holds a space of shapes, not one mesh; render "
                         f"one of its shapes: {shapes}")
    if not (path / "mesh.ply").is_file():
        raise InputError(f"{path}: the fit has no mesh.ply yet; finish it (`isofield fit --resume {path}`) "
                         f"or mesh its checkpoint (`isofield mesh {path} -o mesh.ply`) and render that")
    return path / "mesh.ply"


@_command("eval")
def _eval(args: argparse.Namespace) -> int:
    from isofield.geometry.io import PointCloud, read_geometry
    from isofield.metrics.surface import (
        evaluate_mesh_against_points, evaluate_meshes, evaluate_points, evaluate_points_against_mesh,
        format_metrics,
    )

    pred, ref = read_geometry(args.pred), read_geometry(args.ref)
    clouds = [Path(g.source).name for g in (pred, ref) if isinstance(g, PointCloud)]
    if args.surface and clouds:
        raise InputError(f"--surface measures distances to two meshes' triangles; {' and '.join(clouds)} "
                         f"{'is a point cloud' if len(clouds) == 1 else 'are point clouds'}")
    if isinstance(pred, PointCloud) and isinstance(ref, PointCloud):
        result = evaluate_points(pred.points, ref.points, pred.normals, ref.normals, tau=args.tau,
                                 tau_fraction=args.tau_fraction, emd=args.emd, seed=args.seed)
        result["protocol"].update(input="point clouds", sampling="both point clouds as given")
        without = [Path(c.source).name for c in (pred, ref) if c.normals is None]
        if without:
            result["skipped"]["normal_consistency"] = f"no normals in {' and '.join(without)}"
    elif isinstance(pred, PointCloud):
        result = evaluate_points_against_mesh(pred.points, ref, pred.normals, n_points=args.n,
                                              seed=args.seed, tau=args.tau,
                                              tau_fraction=args.tau_fraction)
        if pred.normals is None:
            result["skipped"]["normal_consistency"] = f"no normals in {Path(pred.source).name}"
    elif isinstance(ref, PointCloud):
        result = evaluate_mesh_against_points(pred, ref.points, ref.normals, n_points=args.n,
                                              seed=args.seed, tau=args.tau,
                                              tau_fraction=args.tau_fraction)
    else:
        result = evaluate_meshes(pred, ref, n_points=args.n, seed=args.seed, tau=args.tau,
                                 tau_fraction=args.tau_fraction, emd=args.emd, surface=args.surface)
    print(json.dumps(result, indent=2) if args.json else format_metrics(result))
    return 0


@_command("shapes")
def _shapes(args: argparse.Namespace) -> int:
    from isofield.data.procedural import write_family

    paths = write_family(args.kind, args.count, Path(args.output), seed=args.seed,
                         resolution=args.resolution, overwrite=args.overwrite,
                         progress=not args.quiet)
    print(f"{args.output}: {len(paths)} {args.kind} (parameters in {args.output}/parameters.json)")
    return 0


@_command("scan")
def _scan(args: argparse.Namespace) -> int:
    from isofield.geometry.io import read_mesh, write_points
    from isofield.geometry.scan import depth_scan

    output = _new_output(args.output, args.overwrite, args.mesh)
    scan = depth_scan(read_mesh(args.mesh), parse_camera(args.camera), noise=args.noise, seed=args.seed)
    write_points(scan.point_cloud(), output)
    print(f"{output}: {len(scan.points)} points with normals seen from {scan.view.describe()}")
    origin = " ".join(f"{value:.6g}" for value in scan.origin)
    print(f"camera origin (for free space: isofield complete RUN {output} --camera-origin {origin}): "
          f"{origin}")
    return 0


@_command("normals")
def _normals(args: argparse.Namespace) -> int:
    import time

    from isofield.geometry.io import POINT_WRITE_SUFFIXES, PointCloud, read_points, write_points
    from isofield.geometry.normals import estimate_normals

    output = _new_output(args.output, args.overwrite, args.cloud)
    if output.suffix.lower() not in POINT_WRITE_SUFFIXES:
        raise InputError(f"{output}: unknown point cloud format {output.suffix or '(no suffix)'!r}; "
                         f"supported: {', '.join(POINT_WRITE_SUFFIXES)}")
    cloud = read_points(args.cloud)
    start = time.perf_counter()
    try:
        normals = estimate_normals(cloud.points, args.neighbours, toward=args.toward)
    except InputError as exc:
        raise InputError(f"{args.cloud}: {exc}") from None
    seconds = time.perf_counter() - start
    write_points(PointCloud(cloud.points, normals, source=cloud.source), output)
    facing = "toward " + " ".join(f"{v:g}" for v in args.toward) if args.toward else "outward"
    print(f"{output}: {len(cloud)} points, normals from {min(args.neighbours, len(cloud) - 1)} "
          f"neighbours, oriented {facing}, {seconds:.1f} s")
    return 0


@_command("preprocess")
def _preprocess(args: argparse.Namespace) -> int:
    from isofield.data.preprocess import preprocess

    manifest = preprocess(args.dataset, Path(args.output), split=args.split, workers=args.workers,
                          samples=args.n, surface_points=args.surface_points, seed=args.seed,
                          protocol=args.protocol, views=args.views, progress=not args.quiet)
    print(manifest.summary())
    return 0


@_command("split")
def _split(args: argparse.Namespace) -> int:
    from isofield.data.datasets import (describe_shapes, discover, find_shapes, make_split, warn,
                                        write_split)
    from isofield.data.onet import open_data_dir

    root = Path(args.dataset)
    data = open_data_dir(root)
    refs = discover(root) if data is None else data.shapes()
    if not refs:
        raise InputError(f"{root}: no preprocessed shapes to split")
    held_out = find_shapes(refs, args.test_shapes or (), str(root))
    fraction = args.test_fraction if args.test_fraction is not None else 0.0 if held_out else 0.1
    train, test = make_split(refs, fraction, seed=args.seed, held_out=held_out)
    output = Path(args.output)
    paths = [_new_output(output / name, args.overwrite) for name in ("train.json", "test.json")]
    refused = {} if data is None else data.refused()
    if refused:  # after every check, so that an error stays the only line
        count = f"{len(refused)} shape{'s' if len(refused) != 1 else ''}"
        warn(f"{root}: leaving {count} out of the split: {describe_shapes(refused)}")
    for path, refs_of_split in zip(paths, (train, test)):
        write_split(path, refs_of_split)
    print(f"{paths[0]}: {len(train)} shapes; {paths[1]}: {len(test)} shapes")
    return 0


@_command("train")
def _train(args: argparse.Namespace) -> int:
    from isofield.train.distributed import is_main_process, shutdown

    finished = False
    try:
        result = _train_shape_space(args)
        if is_main_process():
            _print_training(result)
        finished = True
    finally:
        shutdown(finished)
    return _exit_code(result)


def _train_shape_space(args: argparse.Namespace):
    """Start (CONFIG) or resume (--resume RUN_DIR) a run of a family trained from a config
    file (:func:`isofield.runs.train_run` / :func:`~isofield.runs.resume_run`)."""
    from isofield.runs import resume_run, train_run

    if args.resume:
        if args.config:
            raise InputError("give either CONFIG or --resume RUN_DIR, not both")
        if args.output:
            raise InputError(f"-o {args.output}: a resumed run stays in {args.resume} (leave -o out)")
        return resume_run(args.resume, steps=args.steps, time_budget=args.time_budget, device=args.device,
                          exit_after=args.exit_after, progress=not args.quiet)
    if not args.config:
        raise InputError("give a CONFIG file (YAML), or --resume RUN_DIR")
    overrides: dict = {"device": args.device} if args.device else {}
    if args.steps is not None or args.time_budget is not None:
        overrides["train"] = {key: value for key, value in
                              (("steps", args.steps), ("time_budget", args.time_budget))
                              if value is not None}
    output = args.output or Path("runs") / Path(args.config).stem
    return train_run(args.config, output, overrides=overrides, exit_after=args.exit_after,
                     progress=not args.quiet)


def _print_training(result) -> None:
    from isofield.runs import ALREADY_FINISHED, describe_finished
    from isofield.train.loop import describe_stop

    if result.reason == ALREADY_FINISHED:
        print(describe_finished(result))
        return
    print(f"{result.run_dir}: {describe_stop(result.reason, result.step, result.elapsed, result.progress)}")
    if result.reason in ("exit-after", "interrupted"):
        _stopped_early("train", result)
    else:
        print(f"report: {result.run_dir / 'report.html'}")


def _exit_code(result) -> int:
    """A training command's exit code: :data:`EXIT_INTERRUPTED` for a run stopped by Ctrl-C or
    SIGTERM (after its checkpoint), else 0 (finished, or paused by --exit-after)."""
    return EXIT_INTERRUPTED if result.reason == "interrupted" else 0


def _stopped_early(command: str, result) -> int:
    """Print how to resume a run that stopped before its end; the command's exit code."""
    print(f"resume with: isofield {command} --resume {result.run_dir}")
    return _exit_code(result)


def _print(lines: Sequence[str]) -> int:
    """Print what a family's verb hook returned; exit code 0."""
    for line in lines:
        print(line)
    return 0


def _open(path: str | Path, verb: str):
    """The run in ``path`` if its family supports ``verb`` (:func:`isofield.runs.open_run`)."""
    from isofield.runs import open_run

    return open_run(path).require(verb)


@_command("reconstruct")
def _reconstruct(args: argparse.Namespace) -> int:
    run = _open(args.run, "reconstruct")
    return _print(run.hook("reconstruct")(
        run, args.shape, None if args.output is None else Path(args.output),
        guard=lambda path: _new_output(path, args.overwrite, args.shape),
        steps=args.steps, resolution=args.resolution, seed=args.seed))


@_command("complete")
def _complete(args: argparse.Namespace) -> int:
    output = _new_output(args.output or Path(args.run) / "completions" / f"{Path(args.points).stem}.ply",
                         args.overwrite, args.points)
    run = _open(args.run, "complete")
    return _print(run.hook("complete")(
        run, Path(args.points), output, frame=args.frame, resolution=args.resolution, seed=args.seed,
        steps=args.steps, restarts=args.restarts, rotations=args.rotations, free_space=args.free_space,
        camera_origin=args.camera_origin, free_space_margin=args.free_space_margin, up=args.up,
        front=args.front))


@_command("interpolate")
def _interpolate(args: argparse.Namespace) -> int:
    run = _open(args.run, "interpolate")
    return _print(run.hook("interpolate")(
        run, args.a, args.b, count=args.count, output=None if args.output is None else Path(args.output),
        guard=lambda path: _new_output(path, args.overwrite), resolution=args.resolution))


@_command("evaluate")
def _evaluate(args: argparse.Namespace) -> int:
    from isofield.evaluation import default_directory, evaluate, format_results, protocol_of

    run = _open(args.run, "evaluate")
    protocol = protocol_of(run, args.mode)
    output = Path(args.output) if args.output else default_directory(run, protocol)
    camera = None if args.camera is None else parse_camera(args.camera)
    result = evaluate(run, args.split, protocol, out_dir=output, data=args.data, seed=args.seed,
                      progress=not args.quiet, guard=lambda path: _new_output(path, args.overwrite),
                      steps=args.steps, restarts=args.restarts,
                      resolution=args.resolution, camera=camera, noise=args.noise,
                      free_space=args.free_space, no_emd=args.no_emd, points=args.points,
                      generate=args.generate, validation=args.validation, threshold=args.threshold)
    print(format_results(result.record))
    _print_evaluation_files(result.directory)
    return 0


def _print_evaluation_files(directory: Path) -> None:
    scores = directory / "scores.csv"
    print(f"results: {directory / 'results.json'}" + (f", per shape: {scores}" if scores.exists() else ""))
    print(f"report: {directory / 'report.html'}")


@_command("evaluate-meshes")
def _evaluate_meshes(args: argparse.Namespace) -> int:
    from isofield.evaluation import evaluate_mesh_folder, format_results

    output = Path(args.output or Path(args.meshes).parent / "onet")
    _new_output(output / "results.json", args.overwrite)
    result = evaluate_mesh_folder(args.meshes, args.data, args.split, output, seed=args.seed,
                                  progress=not args.quiet)
    print(format_results(result.record))
    _print_evaluation_files(result.directory)
    return 0


@_command("generate")
def _generate(args: argparse.Namespace) -> int:
    output = _new_output(args.output or Path(args.run) / "generated", args.overwrite)
    if args.count < 1:
        raise InputError(f"-n must be positive, got {args.count}")
    run = _open(args.run, "generate")
    return _print(run.hook("generate")(run, output, count=args.count, seed=args.seed,
                                       latent=args.latent, points=args.points))


@_command("upsample")
def _upsample(args: argparse.Namespace) -> int:
    output = _new_output(args.output or Path(args.points).with_name(f"{Path(args.points).stem}_{args.count}.ply"),
                         args.overwrite, args.points)
    mesh_path = None if args.mesh is None else _new_output(args.mesh, args.overwrite, args.points)
    run = _open(args.run, "upsample")
    return _print(run.hook("upsample")(run, Path(args.points), output, count=args.count, mesh=mesh_path,
                                       resolution=args.resolution, seed=args.seed))


@_command("fit")
def _fit(args: argparse.Namespace) -> int:
    from isofield.fitting import fit, resume
    from isofield.fitting.family import normals_option
    from isofield.runs import ALREADY_FINISHED, describe_finished

    if args.resume:
        if args.input:
            raise InputError("give either INPUT or --resume RUN_DIR, not both")
        for flag, value in (("--normals", args.normals), ("--config", args.config)):
            if value:
                raise InputError(f"{flag} is set when a fit starts, not on --resume "
                                 f"(the run keeps its config.yaml)")
        _open(args.resume, "fit")
        result = resume(args.resume, steps=args.steps, time_budget=args.time_budget, device=args.device,
                        method=args.method, preset=args.preset, reference=args.reference,
                        exit_after=args.exit_after, progress=not args.quiet)
        if result.reason == ALREADY_FINISHED:
            print(describe_finished(result))
            return 0
    else:
        if not args.input:
            raise InputError("give an INPUT file (mesh or points), or --resume RUN_DIR")
        overrides: dict = {"device": args.device} if args.device else {}
        if args.normals:
            overrides["options"] = normals_option(args.method, args.config, args.normals)
        result = fit(args.input, method=args.method, preset=args.preset, output=args.output,
                     config_file=args.config, overrides=overrides, steps=args.steps,
                     time_budget=args.time_budget, reference=args.reference,
                     exit_after=args.exit_after, progress=not args.quiet)
    print(f"{result.run_dir}: {_stop_line(result)}")
    if result.mesh_path is None:
        return _stopped_early("fit", result)
    print(f"mesh: {result.mesh_path}")
    if result.metrics:
        m = result.metrics
        print(f"chamfer_l1 {m['chamfer_l1']:.4g} ({m['chamfer_l1_percent_of_diagonal']:.3f}% of diagonal), "
              f"normal consistency {_consistency(m)}, F-score {m['f_score']:.4f}")
    print(f"report: {result.run_dir / 'report.html'}")
    return 0


def _stop_line(result) -> str:
    """Where a fit stopped: steps, time, steps/s and its schedule position."""
    from isofield.train.loop import describe_stop

    return describe_stop(result.reason, result.step, result.elapsed, result.progress, result.schedule)


def _consistency(metrics: dict) -> str:
    """Normal consistency for a summary line: the value, or n/a with the reason."""
    value = metrics["normal_consistency"]
    if value is None:
        return f"n/a ({metrics.get('skipped', {}).get('normal_consistency', 'not computed')})"
    return f"{value:.4f}"


@_command("demo")
def _demo(args: argparse.Namespace) -> int:
    from isofield.demo import exact_sdf_error, run_demo

    result = run_demo(Path(args.output), time_budget=args.time_budget, progress=not args.quiet)
    m = result.metrics
    print(f"demo: fitted the built-in CSG shape with igr (fast preset): {_stop_line(result)}")
    if result.mesh_path is None:  # Ctrl-C: checkpoint saved, nothing meshed
        return _stopped_early("fit", result)
    print(f"  against the exact surface: chamfer_l1 {m['chamfer_l1']:.4g} "
          f"({m['chamfer_l1_percent_of_diagonal']:.3f}% of diagonal), normal consistency "
          f"{_consistency(m)}, F-score {m['f_score']:.4f}")
    print(f"  mean |SDF error| within 0.1 of the surface: {exact_sdf_error(result):.4f}")
    print(f"  mesh:   {result.mesh_path}")
    print(f"  report: {result.run_dir / 'report.html'}")
    return 0


# ----------------------------------------------------------------------------- parser


def _add_field_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="a run directory (its trained field), or a mesh file (its ground-truth SDF)")
    p.add_argument("--shape", help="an analytic shape instead: sphere, torus, box, rounded_box, capsule, csg")
    p.add_argument("--bounds", type=float, nargs=6, metavar=("XMIN", "YMIN", "ZMIN", "XMAX", "YMAX", "ZMAX"),
                   help="bounds in the canonical frame (default the shape's own, or [-1,1]^3 for a mesh)")


def _add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same output")


def _add_inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resolution", type=int, help="extraction grid (default the run's)")
    _add_seed(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default as "(default X)" where its help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if any(default is value for value in (None, False, argparse.SUPPRESS)) or "default" in text:
            return text
        values = default if isinstance(default, (list, tuple)) else [default]
        shown = " ".join(f"{value:g}" if isinstance(value, float) else str(value) for value in values)
        return f"{text} (default {shown})"


def build_parser() -> argparse.ArgumentParser:
    from functools import partial
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="isofield", description="Neural implicit 3D shapes.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"isofield {version('isofield')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=partial(argparse.ArgumentParser, formatter_class=_HelpFormatter))

    p = sub.add_parser("fit", help="fit a neural SDF to a mesh or point cloud; writes a run directory",
                       description="Fit a neural SDF to a mesh, a point cloud or SDF samples; writes a run "
                       "directory. One of --steps and --time-budget is required (or train.steps / "
                       "train.time_budget in the --config file); --resume keeps the run's limits unless given.")
    p.add_argument("input", nargs="?", help="mesh (.ply .obj .off .stl .glb), points (.xyz .pwn .ply .npy .npz) or SDF samples (.npz)")
    p.add_argument("--method",
                   help="igr (oriented points), sdf (SDF samples), sal / sald / digs (raw points "
                        "without normals, triangle soups) (default the --config file's, else igr)")
    p.add_argument("--preset", help="fast (default) or paper; igr also has siren")
    p.add_argument("-o", "--output", help="run directory (default runs/<input>-<method>)")
    p.add_argument("--config", help="YAML file with config overrides")
    p.add_argument("--steps", type=int, help="training steps (this or --time-budget is required)")
    p.add_argument("--time-budget", type=float, help="seconds of training (this or --steps is required)")
    p.add_argument("--reference", help="mesh or points (with normals for normal consistency) to evaluate against "
                   "(default the input mesh or points)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--normals", choices=["file", "estimate"],
                   help="igr: the input's normals (file, default) or normals estimated from the "
                        "points, ignoring any in the file (estimate; as `isofield normals`)")
    p.add_argument("--exit-after", type=float, help="checkpoint and exit (code 0) after this many seconds; "
                   "resume later with --resume")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("mesh", help="extract a mesh from a trained run, an analytic shape or a mesh's SDF")
    _add_field_source(p)
    p.add_argument("-o", "--output", required=True, help="output mesh (.ply .obj .off .stl .glb)")
    p.add_argument("--resolution", type=int, default=256, help="grid cells per axis (default 256)")
    p.add_argument("--method", choices=["sparse", "mise", "dense"], default="sparse",
                   help="sparse (distance test, exact for SDFs), mise (sign test, as Occupancy Networks), dense")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = sub.add_parser("eval", help="compare a predicted mesh or point cloud with a reference mesh or point cloud")
    p.add_argument("pred", help="the predicted mesh (.ply .obj .off .stl .glb) or point cloud (.xyz .pwn .ply .npy .npz)")
    p.add_argument("ref", help="reference mesh, or points (with normals for normal consistency)")
    p.add_argument("--emd", action="store_true",
                   help="also the earth mover's distance (meshes or two point clouds; about 1 s)")
    p.add_argument("--surface", action="store_true",
                   help="also the Chamfer-L1 from each mesh's samples to the other's triangles, which has no "
                        "floor from the sampling (two meshes; about 1 s)")
    p.add_argument("-n", type=int, default=100_000,
                   help="surface samples per mesh; point clouds are used as they are (default 100000)")
    _add_seed(p)
    tau = p.add_mutually_exclusive_group()
    tau.add_argument("--tau", type=float, help="F-score threshold in reference units")
    tau.add_argument("--tau-fraction", type=float, default=0.01,
                     help="F-score threshold as a fraction of the reference bbox diagonal (default 0.01)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("render", help="picture of a mesh, a point cloud or a fit's mesh, no display needed")
    p.add_argument("source", help="mesh (.ply .obj .off .stl .glb), point cloud (.xyz .pwn .ply .npy .npz; "
                   "coloured by normal, else by depth) or a fit's run folder (its mesh.ply)")
    p.add_argument("-o", "--output", required=True, help="output .png")
    p.add_argument("--size", type=int, default=512, help="picture width and height in pixels")
    p.add_argument("--view", type=float, nargs=2, default=(30.0, 20.0), metavar=("AZIMUTH", "ELEVATION"),
                   help="camera direction in degrees")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = sub.add_parser("slice", help="picture of a field's cross-section")
    _add_field_source(p)
    p.add_argument("-o", "--output", required=True, help="output .png")
    p.add_argument("--axis", choices=["x", "y", "z"], default="z", help="the axis the cut is perpendicular to")
    p.add_argument("--offset", type=float, default=0.0,
                   help="where the cut crosses the axis, canonical frame (inside the bounds)")
    p.add_argument("--resolution", type=int, default=256, help="pixels per side")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = sub.add_parser("info", help="describe a mesh or point cloud file")
    p.add_argument("path", help="mesh (.ply .obj .off .stl .glb) or points (.xyz .pwn .ply .npy .npz)")

    p = sub.add_parser("sample", help="SDF / occupancy / surface samples from a mesh (DeepSDF protocol)")
    p.add_argument("mesh", help="mesh to sample (.ply .obj .off .stl .glb)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.add_argument("--kind", choices=["sdf", "occupancy", "surface"], default="sdf",
                   help="sdf: signed distances near the surface (DeepSDF); occupancy: inside/outside labels "
                        "(Occupancy Networks); surface: points with normals")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-n", type=int, default=500_000, help="number of samples (default 500000)")
    _add_seed(p)

    p = sub.add_parser("normals", help="estimate outward normals of a point cloud (normals in the file are ignored)")
    p.add_argument("cloud", help="points (.xyz .pwn .ply .npy .npz, or a mesh file's vertices)")
    p.add_argument("-o", "--output", required=True, help="output point cloud with normals (.ply .xyz .pwn .npy .npz)")
    p.add_argument("--neighbours", type=int, default=16, help="k nearest neighbours per point (default 16)")
    p.add_argument("--toward", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="orient toward this viewpoint (a depth scan's camera origin) instead of outward")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = sub.add_parser("shapes", help="write a procedural shape family (watertight meshes)")
    p.add_argument("kind", choices=["chairs", "tables"], help="the family: chairs or tables")
    p.add_argument("-n", "--count", type=int, default=200, help="number of shapes (default 200)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    _add_seed(p)
    p.add_argument("--resolution", type=int, default=128, help="marching-cubes cells per axis (default 128)")
    p.add_argument("--overwrite", action="store_true", help="replace meshes written with other settings")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("scan", help="virtual depth scan of a mesh: visible points with normals")
    p.add_argument("mesh", help="mesh to scan (.ply .obj .off .stl .glb)")
    p.add_argument("--camera", default="azimuth=30,elevation=20",
                   help="comma-separated key=value: azimuth, elevation (degrees), distance (bounding-"
                        "sphere radii), fov (degrees), resolution (pixels), up (y or z)")
    p.add_argument("--noise", type=float, default=0.0, help="depth noise std, fraction of the bbox diagonal")
    _add_seed(p)
    p.add_argument("-o", "--output", required=True, help="output point cloud (.ply .xyz .pwn .npy .npz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = sub.add_parser("preprocess", help="SDF and surface samples (DeepSDF layout) or occupancy samples, point clouds "
                       "and views (ONet layout) for every mesh of a dataset (resumable)")
    p.add_argument("dataset", help="ShapeNet-style folder (<synset>/<id>/models/model_normalized.obj) or a folder of meshes")
    p.add_argument("-o", "--output", required=True, help="data folder (DeepSDF layout + manifest.json)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--split", help="DeepSDF split JSON: only these shapes")
    p.add_argument("--protocol", choices=["deepsdf", "onet"], default="deepsdf",
                   help="deepsdf: SdfSamples/ + SurfaceSamples/ (unit sphere); onet: Occupancy Networks' layout "
                        "<class>/<id>/points.npz, points_iou.npz, pointcloud.npz (unit cube) (default deepsdf)")
    p.add_argument("-n", type=int, help="SDF (deepsdf, default 500000) or occupancy (onet, default 100000) samples per shape")
    p.add_argument("--surface-points", type=int, default=100_000, help="surface points per shape (default 100000)")
    p.add_argument("--views", type=int, default=0, help="onet: rendered views per shape for single-image input (default 0)")
    _add_seed(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("split", help="random train/test split of a dataset, class by class (DeepSDF's split JSON)")
    p.add_argument("dataset", help="a preprocessed folder (DeepSDF or ONet layout; shapes that preprocessing refused "
                   "are left out) or a folder of meshes (flat or ShapeNet-style)")
    p.add_argument("--test-fraction", type=float, help="share of each class held out at random (default 0.1, or 0 "
                   "with --test-shapes; given with --test-shapes, that share of the other shapes joins the named ones)")
    p.add_argument("--test-shapes", nargs="+", metavar="NAME", help="hold out these shapes (id, class/id or dataset/class/id)")
    _add_seed(p)
    p.add_argument("-o", "--output", required=True, help="folder for train.json and test.json")
    p.add_argument("--overwrite", action="store_true", help="replace existing split files")

    p = sub.add_parser("train", help="train a shape space (method: deepsdf, shapegf, onet, convonet or sald-vae) on a preprocessed dataset; "
                       "several processes or GPUs: torchrun --nproc_per_node N -m isofield.cli train ...")
    p.add_argument("config", nargs="?", help="YAML config (method: deepsdf | shapegf | onet | convonet | sald-vae, data: DATA_DIR, split, preset cpu|paper, ...)")
    p.add_argument("-o", "--output", help="run directory (default runs/<config name>)")
    p.add_argument("--steps", type=int, help="training steps (in the config's train.unit)")
    p.add_argument("--time-budget", type=float, help="seconds of training")
    p.add_argument("--exit-after", type=float, help="checkpoint and exit (code 0) after this many seconds; "
                   "resume later with --resume")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the config's device); with --resume, "
                   "the device to continue on")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("reconstruct", help="a shape's code from its SDF samples (decoder frozen), then its mesh")
    p.add_argument("run", help="a shape-space run (isofield train)")
    p.add_argument("shape", help="an SDF samples .npz, or a shape of the run's data directory (dataset/class/id or id)")
    p.add_argument("-o", "--output", help="mesh file (default RUN/reconstructions/<shape>.ply)")
    p.add_argument("--steps", type=int, default=800, help="optimisation steps (default 800, DeepSDF's)")
    _add_inference_options(p)

    p = sub.add_parser("complete", help="complete a partial oriented point cloud (e.g. a depth scan) in a shape space; "
                       "ONet / ConvONet / sald-vae runs encode a point cloud (or a picture) in one pass")
    p.add_argument("run", help="a shape-space run (isofield train)")
    p.add_argument("points", help="points in user coordinates (.ply .pwn .npz .xyz; DeepSDF: normals are estimated "
                   "where the file has none); a picture (.png .jpg) for a single-image run")
    p.add_argument("-o", "--output", help="mesh file (default RUN/completions/<points>.ply)")
    p.add_argument("--frame", metavar="SHAPE", help="use this shape's stored normalisation (an SDF samples .npz or a "
                   "shape of the run's data directory); default: estimated from the points")
    p.add_argument("--steps", type=int, help="optimisation steps (default 800)")
    p.add_argument("--restarts", type=int, help="random initial codes, the best is kept (default 4)")
    p.add_argument("--free-space", type=int, default=0, metavar="N",
                   help="N samples on the camera rays in front of the points, kept outside (needs --camera-origin)")
    p.add_argument("--camera-origin", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="the scanner's position (for --free-space, and estimated normals face it)")
    p.add_argument("--up", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="the shape's up direction in the points' coordinates (default y, the space's); "
                   "rotations are tried about it")
    p.add_argument("--front", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="the shape's front direction (with --up): fixes the rotation, nothing is searched")
    p.add_argument("--rotations", type=int, metavar="N",
                   help="angles about the up axis tried without --front (default 8, every 45 deg; 1: no search)")
    p.add_argument("--free-space-margin", type=float,
                   help="with --free-space: the samples stop this fraction of the points' bbox diagonal before "
                        "them (default 0.01)")
    _add_inference_options(p)

    p = sub.add_parser("interpolate", help="meshes and a picture of the codes between two training shapes")
    p.add_argument("run", help="a shape-space run (isofield train)")
    p.add_argument("a", help="training shape: code index, dataset/class/id or id")
    p.add_argument("b", help="training shape: code index, dataset/class/id or id")
    p.add_argument("-n", "--count", type=int, default=6, help="meshes, both ends included (default 6)")
    p.add_argument("-o", "--output", help="folder (default RUN/interpolations/<a>-<b>)")
    p.add_argument("--resolution", type=int, help="extraction grid (default the run's)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")

    p = sub.add_parser("evaluate", help="reconstruct or complete every test shape; Chamfer (DeepSDF and ONet protocols), NC, F-score, EMD; "
                       "ShapeGF runs: auto-encoding CD/EMD and generation MMD/COV/1-NNA")
    p.add_argument("run", help="a shape-space run (isofield train)")
    p.add_argument("--split", help="DeepSDF split JSON of the test shapes (default every shape of the data not trained on)")
    p.add_argument("--data", help="data directory of the test shapes (default the run's)")
    p.add_argument("--mode", choices=["reconstruct", "complete", "codes"],
                   help="DeepSDF: from SDF samples, or from one depth scan of each test mesh, or "
                   "codes: every training shape (of --split) meshed from its trained code (default reconstruct)")
    p.add_argument("--camera", help="the scan's camera (--mode complete), as in isofield scan "
                   "(default azimuth=30,elevation=20)")
    p.add_argument("--noise", type=float, default=0.0, help="scan depth noise, fraction of the bbox diagonal")
    p.add_argument("--free-space", type=int, default=0, metavar="N", help="free-space samples on the scan's rays")
    p.add_argument("--steps", type=int, help="optimisation steps (default 800)")
    p.add_argument("--restarts", type=int, help="completion restarts (default 4)")
    p.add_argument("--no-emd", action="store_true", help="skip the earth mover's distance (about 1 s a shape)")
    p.add_argument("--points", type=int, help="ShapeGF: points per cloud (default 2048)")
    p.add_argument("--generate", type=int, metavar="N",
                   help="ShapeGF: shapes generated for MMD / COV / 1-NNA against the test shapes (default 100; 0: skip)")
    p.add_argument("--validation", help="ONet / ConvONet: shapes to choose the probability threshold on (best mean IoU)")
    p.add_argument("--threshold", type=float, help="ONet / ConvONet: the surface's occupancy probability (default "
                   "chosen on --validation, else the run's extract.threshold)")
    p.add_argument("-o", "--output", help="folder (default RUN/evaluation/<mode>, ShapeGF: RUN/evaluation/autoencode, "
                   "ONet / ConvONet: RUN/evaluation/onet)")
    _add_inference_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("evaluate-meshes", help="score any method's meshes of test shapes under the Occupancy Networks "
                       "protocol (IoU, Chamfer-L1, NC, F-score) against an ONet-layout data directory")
    p.add_argument("meshes", help="folder of <dataset>/<class>/<id>.ply meshes in user coordinates (as isofield evaluate writes them)")
    p.add_argument("--data", required=True, help="ONet-layout data directory (isofield preprocess --protocol onet)")
    p.add_argument("--split", required=True, help="the test shapes: split JSON, .lst file or .lst name")
    p.add_argument("-o", "--output", help="folder (default MESHES/../onet)")
    _add_seed(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing results.json")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("generate", help="new shapes: a ShapeGF run's latent model (point clouds by Langevin sampling), "
                       "or an ONet VAE's prior (meshes)")
    p.add_argument("run", help="a ShapeGF run or an occupancy-network run with latent_dim > 0")
    p.add_argument("-n", "--count", type=int, default=16, help="shapes (default 16)")
    p.add_argument("--latent", choices=("prior", "fitted"),
                   help="occupancy VAEs: draw z from the Gaussian fitted to the training shapes' "
                        "posterior means (default where the run has one) or from the prior N(0, I)")
    p.add_argument("--points", type=int, help="ShapeGF: points per shape (default 2048)")
    _add_seed(p)
    p.add_argument("-o", "--output", help="folder (default RUN/generated)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")

    p = sub.add_parser("upsample", help="encode a point cloud with a ShapeGF run and sample any number of points on its surface")
    p.add_argument("run", help="a ShapeGF run (isofield train, method: shapegf)")
    p.add_argument("points", help="point cloud (.ply .xyz .npy .npz ...), user coordinates")
    p.add_argument("-n", "--count", type=int, default=10000, help="output points (default 10000)")
    p.add_argument("-o", "--output", help="output point cloud (default POINTS_<count>.ply beside the input)")
    p.add_argument("--mesh", help="also write the surface meshed from the gradient field here")
    p.add_argument("--resolution", type=int, help="mesh grid (default the run's surface.resolution)")
    _add_seed(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")

    p = sub.add_parser("demo", help="run the built-in demo and write a report")
    p.add_argument("-o", "--output", default="runs/demo", help="run directory (default runs/demo; never overwritten: -2, -3, ... are used)")
    p.add_argument("--time-budget", type=float, default=100.0, help="seconds of training (default 100)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _HANDLERS[args.command](args)
    except InputError as exc:
        print(f"isofield: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output folder, disk full, ...
        print(f"isofield: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("isofield: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def console_main() -> int:
    """The ``isofield`` command: :func:`main`, training on the cores other jobs leave free
    unless ``ISOFIELD_THREADS`` says otherwise (:mod:`isofield.train.threads`, whose sample of
    the busy cores starts here)."""
    from isofield.train.threads import ENV, start_busy_sample

    os.environ.setdefault(ENV, "auto")
    start_busy_sample()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())

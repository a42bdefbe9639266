"""Benchmark: does a DeepSDF space keep the thin parts of its chairs, in a time budget?

Procedural chairs with thin parts (a back of slats or rails, or legs joined by stretchers:
``--shapes`` of the first chairs of ``isofield shapes chairs`` that have one) are preprocessed
(DeepSDF protocol, ``--samples`` SDF samples each), ``--test`` of them held out, and for each
decoder a space is trained for ``--budget`` seconds of training (the ``cpu`` preset; its
schedule runs on the fraction of the budget, so every decoder goes through all of it):

- ``cpu preset``: the preset as it is (a 4x128 ReLU decoder reading 6 octaves of Fourier
  features of the point beside the point and the code);
- ``plain ReLU`` (the baseline, in the same run): the same decoder without the features, the
  ``cpu`` preset before it had them.

Then each training shape is meshed from its own code (``isofield evaluate RUN --mode codes``)
and each test shape reconstructed from its SDF samples (DeepSDF's protocol, 800 steps), and
scored against its source mesh: Chamfer-L1 in % of the diagonal (mean and worst), normal
consistency, pieces against the source's, the largest missing region (% of the area; a lost
slat or filled gap) and how many shapes kept every part (:mod:`isofield.metrics.parts`).
The last column is each row's mean Chamfer-L1 over the baseline's.

Everything is kept under ``--out`` (default a new temporary folder): the runs with their
``report.html`` and ``reconstructions.png``, and each evaluation's ``comparison.png`` and
``errors/``. Takes about ``2 * budget`` plus 10 minutes on 2 CPU cores.

Usage::

    python benchmarks/deepsdf_parts.py [--budget 1200] [--shapes 28] [--test 4] [--out DIR]
                                       [--decoders cpu plain]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fit import output_folder
from isofield.data.datasets import DeepSDFDataDir, write_split
from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.deepsdf import train_shape_space
from isofield.deepsdf.evaluate import evaluate_split
from isofield.errors import InputError

DECODERS = {"cpu": ("cpu preset", {}), "plain": ("plain ReLU", {"decoder": {"encoding": None}})}


def thin_chairs(out: Path, count: int, seed: int) -> list[str]:
    """Write procedural chairs to ``out/all`` until ``count`` have thin parts; copy those to
    ``out/meshes``. Returns their ids."""
    written = 0
    chosen: list[str] = []
    batch = 2 * count
    while len(chosen) < count:
        written += batch
        write_family("chairs", written, out / "all", seed=seed, progress=False)
        parameters = json.loads((out / "all" / "parameters.json").read_text())["shapes"]
        chosen = [shape["file"] for shape in parameters if _thin(shape["parameters"])][:count]
    (out / "meshes").mkdir(exist_ok=True)
    for name in chosen:
        os.link(out / "all" / name, out / "meshes" / name)
    return [Path(name).stem for name in chosen]


def _thin(parameters: dict) -> bool:
    return parameters["back_style"] in ("slats", "rails") or parameters["stretchers"]


def summary(record: dict) -> dict:
    rows = [row for row in record["shapes"] if "error" not in row]
    chamfer = np.array([row["chamfer_l1_percent_of_diagonal"] for row in rows])
    return {"shapes": len(record["shapes"]), "no surface": len(record["shapes"]) - len(rows),
            "CD mean": chamfer.mean(), "CD worst": chamfer.max(),
            "NC": np.mean([row["normal_consistency"] for row in rows]),
            "pieces extra": sum(row["components"] - row["components_reference"] for row in rows),
            "missing worst": 100 * max(row["largest_missing_share"] for row in rows),
            "kept": sum(bool(row["parts_kept"]) for row in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=1200.0, help="training seconds per decoder")
    parser.add_argument("--shapes", type=int, default=28, help="chairs with thin parts")
    parser.add_argument("--test", type=int, default=4, help="of them held out")
    parser.add_argument("--samples", type=int, default=200_000, help="SDF samples per chair")
    parser.add_argument("--decoders", nargs="+", choices=list(DECODERS), default=["cpu", "plain"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="a new or empty folder (default: temp)")
    args = parser.parse_args()
    try:
        out = output_folder(args.out, "deepsdf-parts-")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, load "
          f"{os.getloadavg()[0]:.1f}; files under {out}")

    ids = thin_chairs(out, args.shapes, args.seed)
    preprocess(out / "meshes", out / "data", samples=args.samples, workers=2, progress=False)
    refs = DeepSDFDataDir(out / "data").shapes()
    test = refs[:: max(1, len(refs) // args.test)][: args.test]
    write_split(out / "train.json", [ref for ref in refs if ref not in test])
    write_split(out / "test.json", test)
    print(f"{len(ids)} chairs with slats, rails or stretchers; test: "
          f"{', '.join(ref.shape_id for ref in test)}")

    table = []
    for key in args.decoders:
        name, overrides = DECODERS[key]
        run = out / f"run-{key}"
        config = {"method": "deepsdf", "preset": "cpu", "data": str(out / "data"),
                  "split": str(out / "train.json"), **overrides}
        started = time.perf_counter()
        result = train_shape_space(config, run, overrides={"train": {"time_budget": args.budget}},
                                   progress=False)
        wall = time.perf_counter() - started
        for mode, split in (("codes", None), ("reconstruct", out / "test.json")):
            record = evaluate_split(run, split=split, mode=mode, emd=False).record
            table.append({"decoder": name, "shapes": mode, "steps": result.step,
                          "train s": wall, **summary(record)})
    print_table(table)


def print_table(table: list[dict]) -> None:
    baseline = {row["shapes"]: row["CD mean"] for row in table if row["decoder"] == "plain ReLU"}
    header = (f"{'decoder':<12}{'shapes':<13}{'steps':>7}{'train s':>9}{'CD mean %':>11}"
              f"{'CD worst %':>12}{'NC':>7}{'extra pieces':>14}{'missing worst %':>17}"
              f"{'kept':>8}{'CD / plain':>12}")
    print(header)
    for row in table:
        ratio = row["CD mean"] / baseline[row["shapes"]] if row["shapes"] in baseline else float("nan")
        print(f"{row['decoder']:<12}{row['shapes']:<13}{row['steps']:>7}{row['train s']:>9.0f}"
              f"{row['CD mean']:>11.3f}{row['CD worst']:>12.3f}{row['NC']:>7.3f}"
              f"{row['pieces extra']:>14}{row['missing worst']:>17.2f}"
              f"{row['kept']:>4}/{row['shapes']:<3}{ratio:>12.2f}")


if __name__ == "__main__":
    main()

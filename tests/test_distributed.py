"""Multi-process training (DDP, gloo on CPU): N processes with B/N rows train as one with B.

The two-process runs are real torchrun launches of this very file (see ``__main__`` at the end),
done once per module by the ``two_process_runs`` fixture; the rest runs in the test process, with
a process group of one process where the DDP code path is needed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from isofield.errors import InputError
from isofield.train.checkpoint import load_checkpoint
from isofield.train.distributed import Shard, init_from_env, rank_step_seed, shutdown, world
from isofield.train.logging import read_loss_log
from isofield.train.loop import DistributedTask, ParamGroup, StopReason, Trainer

SHAPES, POOL, LATENT, CODE_BOUND = 6, 48, 4, 0.5
STEPS, INTERRUPT_STEP, RESUME_TO = 20, 5, 13


class ToyAutoDecoder:
    """A DeepSDF-like auto-decoder: ``SHAPES`` spheres (radii 0.3-0.8) with ``POOL`` SDF samples
    each, a decoder MLP(code (LATENT) + xyz -> sdf) and one code per shape (``nn.Embedding``
    whose rows are cut to norm ``CODE_BOUND`` when looked up, as DeepSDF's ``code_bound``).

    A step's global batch: ``shapes_per_step`` shapes drawn without replacement, and
    ``samples_per_shape`` samples of each; each rank takes its shard of the shapes. Loss: mean
    clamped L1 over the (shape, sample) pairs + 1e-2 * mean squared code norm over the shapes.
    Every rank looks up the codes of the whole global batch, so that the embedding's in-place
    renormalisation (``max_norm``) changes the same rows on every rank, then takes its shard.
    ``interrupt`` = (rank, step): that rank alone sends itself SIGTERM during that step;
    ``slow_rank``: that rank sleeps 10 ms per step.
    """

    def __init__(
        self,
        weights_seed: int = 5,
        shapes_per_step: int = 5,
        samples_per_shape: int = 8,
        dropout: float = 0.0,
        interrupt: tuple[int, int] | None = None,
        slow_rank: int | None = None,
        bare_decoder: bool = False,
    ) -> None:
        data = torch.Generator().manual_seed(1)
        radii = 0.3 + 0.5 * torch.rand(SHAPES, generator=data)
        self.points = torch.rand(SHAPES, POOL, 3, generator=data) * 2 - 1
        self.sdf = self.points.norm(dim=-1) - radii[:, None]
        self.decoder = nn.Sequential(
            nn.Linear(LATENT + 3, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1)
        )
        self.codes = nn.Embedding(SHAPES, LATENT, max_norm=CODE_BOUND)
        weights = torch.Generator().manual_seed(weights_seed)
        with torch.no_grad():
            for param in [*self.decoder.parameters(), self.codes.weight]:
                param.copy_(0.3 * torch.randn(param.shape, generator=weights))
        self.shapes_per_step, self.samples_per_shape = shapes_per_step, samples_per_shape
        self.interrupt, self.slow_rank, self.bare_decoder = interrupt, slow_rank, bare_decoder
        self.shard, self.nets = Shard(), self.modules()

    def modules(self) -> dict[str, nn.Module]:
        return {"decoder": self.decoder, "codes": self.codes}

    def param_groups(self) -> list[ParamGroup]:
        return [
            ParamGroup("decoder", list(self.decoder.parameters()), lr=1e-2),
            ParamGroup("codes", [self.codes.weight], lr=5e-2),
        ]

    def distribute(self, shard: Shard, modules: dict[str, nn.Module]) -> None:
        self.shard, self.nets = shard, dict(modules)

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self.interrupt == (self.shard.rank, step):
            os.kill(os.getpid(), signal.SIGTERM)
        if self.slow_rank == self.shard.rank:
            time.sleep(0.01)
        count, samples = self.shapes_per_step, self.samples_per_shape
        batch_shapes = torch.randperm(SHAPES, generator=generator)[:count]
        picks = self.shard.take(torch.randint(POOL, (count, samples), generator=generator))
        codes = self.shard.take(self.nets["codes"](batch_shapes))
        shapes = self.shard.take(batch_shapes)
        points, sdf = self.points[shapes[:, None], picks], self.sdf[shapes[:, None], picks]
        inputs = torch.cat([codes[:, None].expand(-1, samples, -1), points], dim=-1)
        decoder = self.decoder if self.bare_decoder else self.nets["decoder"]
        predicted = decoder(inputs).squeeze(-1)
        clamped_l1 = (predicted.clamp(-0.1, 0.1) - sdf.clamp(-0.1, 0.1)).abs()
        data = self.shard.mean(clamped_l1, count * samples)
        prior = self.shard.mean(codes.pow(2).sum(-1), count)
        return {"total": data + 1e-2 * prior, "sdf": data, "prior": prior}


def make_trainer(task, run_dir, **options) -> Trainer:
    defaults = dict(progress=False, checkpoint_every=5, checkpoint_every_seconds=None, seed=3)
    return Trainer(task, run_dir, **(defaults | options))


def module_states(task: ToyAutoDecoder) -> dict[str, dict[str, torch.Tensor]]:
    return {name: module.state_dict() for name, module in task.modules().items()}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[m][p] - b[m][p]).abs().max()) for m in a for p in a[m])


# --- two processes under torchrun -----------------------------------------------------------


def train_on_every_rank(out: Path) -> None:
    """The program torchrun runs on each rank (see ``__main__``)."""
    init_from_env("cpu")
    finished = False
    try:
        rank = world()[0]
        run_dir = out / "autodecoder"
        interrupted = ToyAutoDecoder(interrupt=(1, INTERRUPT_STEP))
        first = make_trainer(interrupted, run_dir, steps=STEPS).run()
        task = ToyAutoDecoder(weights_seed=99)  # other weights: they must come from latest.pt
        second = make_trainer(task, run_dir, steps=RESUME_TO).run()
        third = make_trainer(task, run_dir, steps=STEPS).run()  # the same modules, wrapped again

        straight = ToyAutoDecoder(dropout=0.3)
        make_trainer(straight, out / "dropout_straight", steps=12).run()
        make_trainer(ToyAutoDecoder(dropout=0.3), out / "dropout_resumed", steps=7).run()
        resumed = ToyAutoDecoder(dropout=0.3)
        make_trainer(resumed, out / "dropout_resumed", steps=12).run()

        dropout_difference = max_difference(module_states(straight), module_states(resumed))
        budget = make_trainer(ToyAutoDecoder(slow_rank=1), out / "budget", time_budget=0.2).run()
        torch.save(
            {
                "first": (first.step, first.reason.value),
                "second": (second.step, second.steps_run, second.reason.value),
                "third": (third.step, third.steps_run, third.reason.value),
                "losses": third.losses,
                "states": module_states(task),
                "dropout_difference": dropout_difference,
                "budget": (budget.step, budget.reason.value),
            },
            out / f"rank{rank}.pt",
        )
        finished = True
    finally:
        shutdown(finished)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory, torchrun) -> Path:
    """Output folder of one torchrun launch of :func:`train_on_every_rank` on two processes."""
    out = tmp_path_factory.mktemp("torchrun")
    torchrun([__file__, str(out)], 2, timeout=180)
    return out


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory) -> tuple[Path, ToyAutoDecoder]:
    """The same training as one process with the whole global batch, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("one_process")
    task = ToyAutoDecoder()
    make_trainer(task, run_dir, steps=STEPS).run()
    return run_dir, task


def test_two_processes_train_exactly_as_one_with_the_same_global_batch(
    two_process_runs, one_process_run
):
    one_dir, one_task = one_process_run
    ranks = [torch.load(two_process_runs / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    saved = load_checkpoint(two_process_runs / "autodecoder" / "checkpoints" / "latest.pt")
    assert saved.step == STEPS
    assert max_difference(saved.modules, module_states(one_task)) < 1e-6  # float rounding only
    assert max_difference(ranks[0]["states"], ranks[1]["states"]) == 0.0
    assert max_difference(ranks[0]["states"], saved.modules) == 0.0

    one_log, two_log = read_loss_log(one_dir / "losses.csv"), read_loss_log(
        two_process_runs / "autodecoder" / "losses.csv"
    )
    assert list(two_log) == ["step", "total", "sdf", "prior", "lr_decoder", "lr_codes", "progress"]
    assert two_log["step"].tolist() == list(range(STEPS))  # rank 1 wrote no rows
    for column in set(one_log) - {"progress"}:   # two_log's run was given limits RESUME_TO, STEPS
        torch.testing.assert_close(two_log[column], one_log[column], rtol=1e-5, atol=1e-7)
    assert ranks[0]["losses"] == ranks[1]["losses"]
    assert ranks[0]["losses"]["total"] == pytest.approx(one_log["total"][-1], rel=1e-5)


def test_a_signal_on_one_rank_stops_both_after_the_same_step_and_they_resume(two_process_runs):
    for rank in (0, 1):
        record = torch.load(two_process_runs / f"rank{rank}.pt", weights_only=True)
        assert record["first"] == (INTERRUPT_STEP + 1, StopReason.INTERRUPTED.value)
        assert record["second"] == (RESUME_TO, RESUME_TO - INTERRUPT_STEP - 1, "finished")
        assert record["third"] == (STEPS, STEPS - RESUME_TO, "finished")
    folder = two_process_runs / "autodecoder" / "checkpoints"
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["latest.pt", "step_000005.pt", "step_000010.pt", "step_000015.pt",
                     "step_000020.pt"]


def test_a_time_budget_stops_both_ranks_after_the_same_step(two_process_runs):
    records = [torch.load(two_process_runs / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    step, reason = records[0]["budget"]
    assert records[1]["budget"] == (step, reason) and reason == StopReason.TIME_BUDGET.value
    saved = load_checkpoint(two_process_runs / "budget" / "checkpoints" / "latest.pt")
    assert saved.step == step >= 1 and saved.elapsed >= 0.2


def test_two_process_dropout_run_resumes_bit_identically(two_process_runs):
    for rank in (0, 1):
        record = torch.load(two_process_runs / f"rank{rank}.pt", weights_only=True)
        assert record["dropout_difference"] == 0.0
    straight = load_checkpoint(two_process_runs / "dropout_straight" / "checkpoints" / "latest.pt")
    resumed = load_checkpoint(two_process_runs / "dropout_resumed" / "checkpoints" / "latest.pt")
    assert max_difference(straight.modules, resumed.modules) == 0.0
    straight_log = read_loss_log(two_process_runs / "dropout_straight" / "losses.csv")
    resumed_log = read_loss_log(two_process_runs / "dropout_resumed" / "losses.csv")
    for column in straight_log:      # the resumed run was first a 7-step run: its progress differs
        if column != "progress":
            np.testing.assert_array_equal(straight_log[column], resumed_log[column])
    np.testing.assert_array_equal(resumed_log["progress"], [k / 7 for k in range(7)] + [1.0] * 5)


# --- a process group of one process, in this process ----------------------------------------


@contextlib.contextmanager
def process_group_of_one():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.fixture
def group_of_one():
    with process_group_of_one():
        yield


def test_ddp_path_with_one_process_gives_the_single_process_numbers(tmp_path):
    alone = ToyAutoDecoder()
    make_trainer(alone, tmp_path / "alone", steps=6).run()
    assert alone.nets["decoder"] is alone.decoder
    with process_group_of_one():
        task = ToyAutoDecoder()
        trainer = make_trainer(task, tmp_path / "ddp", steps=6)
        assert task.shard == Shard(0, 1)
        assert isinstance(task.nets["decoder"], DistributedDataParallel)
        trainer.run()
    assert max_difference(module_states(task), module_states(alone)) == 0.0
    assert (tmp_path / "ddp" / "losses.csv").read_text() == (
        tmp_path / "alone" / "losses.csv"
    ).read_text()


def test_forward_pass_around_the_ddp_wrapper_is_refused(tmp_path, group_of_one):
    trainer = make_trainer(ToyAutoDecoder(bare_decoder=True), tmp_path, steps=3)
    with pytest.raises(ValueError, match=r"gave gradients to module 'decoder' without calling its"):
        trainer.run()


def test_task_that_cannot_be_distributed_is_refused_under_a_process_group(tmp_path, group_of_one):
    class SingleProcessOnly:
        def __init__(self) -> None:
            self.inner = ToyAutoDecoder()
            self.modules, self.param_groups = self.inner.modules, self.inner.param_groups
            self.loss = self.inner.loss

    assert not isinstance(SingleProcessOnly(), DistributedTask)
    with pytest.raises(InputError, match="SingleProcessOnly cannot train on several processes"):
        make_trainer(SingleProcessOnly(), tmp_path / "run", steps=3).run()
    assert not (tmp_path / "run").exists()


def test_parameter_outside_the_modules_is_refused_under_a_process_group(tmp_path, group_of_one):
    class LooseScale(ToyAutoDecoder):
        def param_groups(self) -> list[ParamGroup]:
            scale = nn.Parameter(torch.ones(1))
            return [*super().param_groups(), ParamGroup("scale", [scale], lr=1.0)]

    with pytest.raises(ValueError, match="belongs to none of task.modules"):
        make_trainer(LooseScale(), tmp_path, steps=3)


# --- shards, seeds and the environment ------------------------------------------------------


def test_shards_cover_the_batch_in_rank_order_and_their_means_average_to_the_global_mean():
    assert [Shard(r, 2).rows(5) for r in (0, 1)] == [slice(0, 3), slice(3, 5)]
    assert [Shard(r, 3).rows(7) for r in (0, 1, 2)] == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert [Shard(r, 2).rows(1) for r in (0, 1)] == [slice(0, 1), slice(1, 1)]
    assert Shard().take([4, 5, 6]) == [4, 5, 6]
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])  # global mean 4
    parts = [Shard(r, 2).mean(Shard(r, 2).take(values), 5) for r in (0, 1)]
    assert [float(p) for p in parts] == pytest.approx([2.4, 5.6])  # 6 * 2/5, 14 * 2/5
    assert float(sum(parts) / 2) == pytest.approx(4.0)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        Shard(2, 2)


def test_rank_step_seeds_are_reproducible_and_differ_by_rank_and_step():
    assert rank_step_seed(3, 1, 7) == rank_step_seed(3, 1, 7)
    seeds = {rank_step_seed(3, rank, step) for rank in range(4) for step in range(50)}
    assert len(seeds) == 200 and all(0 <= seed < 2**64 for seed in seeds)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR is not set although WORLD_SIZE is; start"),
        ({"WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"},
         "RANK is not set"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be an integer >= 1"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK='2' must be an integer >= 0 and below 2"),
        ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "localhost", "MASTER_PORT": "70000"},
         "MASTER_PORT='70000' must be an integer >= 1 and below 65536"),
    ],
)
def test_misconfigured_environment_raises_input_error(monkeypatch, env, message):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        init_from_env("cpu")
    assert not dist.is_initialized()


def test_cuda_processes_need_a_device_per_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "localhost"}
    for name, value in (env | {"MASTER_PORT": "29500"}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=r"LOCAL_RANK=1 but 1 CUDA device\(s\) are visible"):
        init_from_env("cuda")
    with pytest.raises(InputError, match=r"'cuda:0': under torchrun each process uses cuda:LOCAL"):
        init_from_env("cuda:0")
    assert not dist.is_initialized()


def test_without_torchrun_the_device_is_kept_and_no_group_is_made(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert init_from_env("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_from_env("cuda:3") == torch.device("cuda:3")
    assert not dist.is_initialized() and world() == (0, 1)
    shutdown()  # a no-op without a group


if __name__ == "__main__":
    train_on_every_rank(Path(sys.argv[1]))

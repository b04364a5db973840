"""Data-parallel training: shards, averaged gradients and chief-only outputs (two gloo processes), and the
whole `train trainer.workers=2` path on Ray Train with a worker failure in the middle."""

from __future__ import annotations

import json
from pathlib import Path

import faults
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from vc_tiny import VC_TINY

from denoise_vc.cli import main
from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.parallel import DataParallel
from denoise_vc.solvers.factory import build_solver

# One optimiser step per epoch: the global batch is the whole epoch. Demucs has no BatchNorm, whose batch
# statistics are per worker by design (as in DDP), so 1 and 2 workers can agree exactly.
ONE_STEP = [
    "model=demucs",
    "model.depth=2",
    "model.hidden=8",
    "loss=spectral",
    "data.segment_length=4096",
    "data.valid_items=4",
    "data.builtin.utterances.train=4",
    "data.builtin.utterances.valid=2",
    "data.builtin.utterances.test=1",
    "data.builtin.utterance_s=2.0",
    "data.builtin.noise_s=4.0",
    "data.noise_kinds=[white,pink]",
    "data.snr_db=[0,10]",
    "data.level_dbfs=[-30,-20]",
    "solver.epochs=1",
    "solver.progress=false",
    "solver.plot_every=0",
]


def _worker(rank: int, world: int, init: str, overrides: list[str], task: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        if task == "vc":
            from denoise_vc.solvers.vc import build_vc_solver

            cfg = compose_config(overrides, config_name="vc")
            if rank:
                cfg.logger = {"backends": []}
            solver = build_vc_solver(cfg)
        else:
            cfg = resolve_paths(compose_config(overrides))
            if rank:
                cfg.logger = {"backends": []}
            solver = build_solver(cfg)
        solver.parallel = DataParallel(rank, world)
        solver.fit()
        torch.save({"items": solver.items_seen, "state": solver.model.state_dict()}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_workers(tmp_path: Path, overrides: list[str], task: str = "denoise", world: int = 2) -> list[dict]:
    """Fit the same config on `world` gloo processes; each worker's drawn items and final weights."""
    out = tmp_path / f"workers_{task}"
    out.mkdir()
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), overrides, task, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


def single_process(run_dir: Path, overrides: list[str]) -> dict[str, torch.Tensor]:
    solver = build_solver(resolve_paths(compose_config([f"run_dir={run_dir}", *overrides])))
    solver.fit()
    return solver.model.state_dict()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tolerance: float = 2e-6) -> None:
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < tolerance, f"weights differ by up to {worst:.2e}"


# 1 and 2 workers sum the gradient in another order. Adam's first step, lr * g / (|g| + eps), is about lr * sign(g)
# whatever |g|, except where |g| is near eps: there that float noise moves a weight by up to a whole step (lr 1e-3).
# Measured on this kind of machine: 2 of 14,865 weights differ by more than 1e-5 (at most 1.7e-4). So: all but
# 0.1 % of the weights agree to 1e-5, and none by more than two steps. A worker that skipped the other's gradient
# would move most weights differently.
ACROSS_WORKER_COUNTS = 1e-5


def assert_nearly_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], lr: float = 1e-3) -> None:
    assert a.keys() == b.keys()
    diffs = torch.cat([(a[k].float() - b[k].float()).abs().reshape(-1) for k in a])
    off = int((diffs > ACROSS_WORKER_COUNTS).sum())
    assert off <= 1e-3 * len(diffs), f"{off} of {len(diffs)} weights differ by more than {ACROSS_WORKER_COUNTS}"
    assert float(diffs.max()) <= 2 * lr, f"weights differ by up to {float(diffs.max()):.2e}"


def test_each_worker_takes_its_share_of_every_global_batch():
    batches = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10], [11]]
    shards = [DataParallel(r, 2).shard_batches(batches) for r in range(2)]
    assert shards == [[[0, 2], [4, 6], [8, 10]], [[1, 3], [5, 7], [9]]]  # [11] cannot be split: skipped by both


@pytest.mark.parametrize("items, batch", [(4, 4), (5, 5)])
def test_two_workers_reach_the_weights_of_one_after_a_step(tmp_path, items, batch):
    """Same seed, same global batch: after one step the two workers hold identical weights, equal to a
    single process's; with an odd batch (3 + 2 items) the item-weighted average keeps them equal."""
    overrides = [*ONE_STEP, f"data.items_per_epoch={items}", f"data.batch_size={batch}"]
    workers = run_workers(tmp_path, [f"run_dir={tmp_path / 'parallel'}", *overrides])
    seen = [set(w["items"]) for w in workers]
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(items))
    alone = single_process(tmp_path / "single", overrides)
    assert_same_weights(workers[0]["state"], workers[1]["state"])
    assert_nearly_same_weights(workers[0]["state"], alone)
    before = build_solver(resolve_paths(compose_config([f"run_dir={tmp_path / 'x'}", *overrides]))).model
    assert max(float((before.state_dict()[k] - alone[k]).abs().max()) for k in alone) > 1e-4  # it did move
    # only the chief wrote: one history, the shard record says who drew what
    assert [row["epoch"] for row in json.loads((tmp_path / "parallel" / "history.json").read_text())] == [1]
    shards = json.loads((tmp_path / "parallel" / "workers.json").read_text())
    assert shards["world_size"] == 2 and [set(s) for s in shards["items"]] == seen


def test_batchnorm_statistics_are_averaged_so_workers_hold_one_model(tmp_path):
    """subband_crn has BatchNorm: each worker normalises its own items in training, and the running statistics
    are averaged after every epoch, so both workers end with identical weights and buffers."""
    data = [o for o in ONE_STEP if not o.startswith("model")]
    overrides = ["model=subband_crn", *data, "data.items_per_epoch=8", "data.batch_size=4", "solver.epochs=2"]
    workers = run_workers(tmp_path, [f"run_dir={tmp_path / 'bn'}", *overrides])
    assert any("running_var" in k for k in workers[0]["state"])
    assert_same_weights(workers[0]["state"], workers[1]["state"])


def test_the_vc_model_trains_on_two_workers(tmp_path, vc_prepared_dir):
    """The bucketed VC batches are split the same way; both workers end with the same weights."""
    overrides = [f"run_dir={tmp_path / 'vc_run'}", f"data.prepared_dir={vc_prepared_dir}", *VC_TINY]
    workers = run_workers(tmp_path, overrides, task="vc")
    seen = [set(w["items"]) for w in workers]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert_same_weights(workers[0]["state"], workers[1]["state"])
    history = json.loads((tmp_path / "vc_run" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in history)


@pytest.fixture(scope="module")
def vc_prepared_dir(tmp_path_factory):
    from denoise_vc.vc.prepare import prepare

    prepared = tmp_path_factory.mktemp("vc_parallel") / "prep"
    prepare(compose_config([f"data.prepared_dir={prepared}", *VC_TINY], config_name="vc"), progress=False)
    return prepared


def test_train_on_ray_with_two_workers_survives_a_worker_failure(tmp_path, monkeypatch, capsys):
    """`train trainer.workers=2` on Ray Train: a worker fails after epoch 1, the group restarts and goes on from
    last.pth; the weights after epoch 1 (one step) equal a single process's; the result denoises a file."""
    marker = tmp_path / "failed-once"
    overrides = [*ONE_STEP, "data.items_per_epoch=4", "data.batch_size=4"]
    run = tmp_path / "ray_run"
    code = main(
        [
            "train",
            f"run_dir={run}",
            *overrides,
            "solver.epochs=2",
            "trainer.workers=2",
            "trainer.max_failures=1",
            faults.arm(monkeypatch, 1, marker),
        ]
    )
    assert code == 0 and marker.exists()
    history = json.loads((run / "history.json").read_text())
    assert [(row["epoch"], row["step"]) for row in history] == [(1, 1), (2, 2)]  # resumed, not restarted
    after_one_step = torch.load(marker.with_suffix(".pth"), weights_only=True)["state_dict"]
    assert_same_weights(after_one_step, single_process(tmp_path / "single", overrides), ACROSS_WORKER_COUNTS)
    shards = json.loads((run / "workers.json").read_text())
    assert shards["epoch"] == 2 and sorted(shards["items"][0] + shards["items"][1]) == [0, 1, 2, 3]
    assert not set(shards["items"][0]) & set(shards["items"][1])
    noisy = tmp_path / "in.wav"
    sf.write(noisy, (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32), 16000)
    assert main(["denoise", str(noisy), "-o", str(tmp_path / "out"), "--checkpoint", str(run / "best.pth")]) == 0
    assert sf.info(tmp_path / "out" / "in.wav").frames == 16000


def test_parallel_settings_are_refused_before_any_worker_starts(tmp_path, capsys):
    code = main(["train", f"run_dir={tmp_path / 'r'}", *ONE_STEP, "data.batch_size=1", "trainer.workers=2"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "trainer.workers=2" in err
    assert not (tmp_path / "r" / "ray").exists()

"""`train trainer.workers=N`: the same Solver on N Ray Train workers, data-parallel.

Ray Train's TorchTrainer starts the workers (here, or on the cluster `trainer.address` joins) and their
process group (gloo on CPU, NCCL on GPU). Each worker builds the solver from the same config, trains on its
share of every global batch and averages gradients with the others (`denoise_vc.parallel`); rank 0 alone
validates and writes checkpoints, history, plots and logs into `run_dir`, so the result is the same
self-describing checkpoint a single process writes. A restarted worker group (`trainer.max_failures`) or a
re-run command resumes from `run_dir/last.pth` like any run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from denoise_vc.config import to_plain
from denoise_vc.errors import ConfigError, DenoiseVCError, TrainingError
from denoise_vc.tune import start_ray

EXPERIMENT = "train"


def check_parallel_settings(cfg: DictConfig) -> None:
    """What data-parallel training needs before any worker starts."""
    workers = int(cfg.trainer.workers)
    if int(cfg.data.batch_size) < workers:
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} is the global batch and must be >= trainer.workers={workers}"
        )
    if cfg.trainer.gpu and str(cfg.device) == "cpu":
        raise ConfigError("trainer.gpu=true asks for GPU workers, but device=cpu")


def _check_resources(cfg: DictConfig) -> None:
    import ray

    workers, cpus = int(cfg.trainer.workers), float(cfg.trainer.cpus_per_worker)
    available = ray.cluster_resources()
    where = "the Ray cluster" if cfg.trainer.address else "this machine"
    if workers * cpus > available.get("CPU", 0):
        raise ConfigError(
            f"trainer.workers={workers} x trainer.cpus_per_worker={cpus:g} CPUs, but {where} has "
            f"{available.get('CPU', 0):g}"
        )
    if cfg.trainer.gpu and workers > available.get("GPU", 0):
        raise ConfigError(f"trainer.workers={workers} GPU workers, but {where} has {available.get('GPU', 0):g} GPUs")


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: build the solver, take this worker's rank, fit."""
    import ray.train
    import ray.train.torch

    from denoise_vc.parallel import DataParallel

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    cfg = OmegaConf.create(config["cfg"])
    cfg.device = str(ray.train.torch.get_device())
    if not cfg.trainer.gpu:
        torch.set_num_threads(max(1, int(float(cfg.trainer.cpus_per_worker))))
    if rank != 0:  # only the chief logs: no second tracker run, no duplicate progress bars
        cfg.logger = {"backends": []}
        cfg.solver.progress = False
    solver = _build(cfg, config["task"])
    solver.parallel = DataParallel(rank, world)
    solver.fit()


def _build(cfg: DictConfig, task: str):
    if task == "vc":
        from denoise_vc.solvers.vc import build_vc_solver

        return build_vc_solver(cfg)
    from denoise_vc.solvers.factory import build_solver

    return build_solver(cfg)


def _worker_error(exc: BaseException) -> BaseException:
    """The first worker's own exception inside Ray's wrappers (a package error keeps its one-line message)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DenoiseVCError):
            return current
        failures = getattr(current, "worker_failures", None)
        if isinstance(failures, dict):
            pending += [failures[k] for k in sorted(failures)]
        pending += [e for e in (current.__cause__, current.__context__, getattr(current, "cause", None)) if e]
    return exc


def train_parallel(cfg: DictConfig, task: str = "denoise") -> dict[str, Any]:
    """Train `cfg` on `trainer.workers` Ray Train workers; returns the chief's summary from `run_dir`."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    check_parallel_settings(cfg)
    run_dir = Path(cfg.run_dir)  # absolute, like the data folders (the CLI resolves them)
    run_dir.mkdir(parents=True, exist_ok=True)
    start_ray(str(cfg.trainer.address or ""), "trainer.address")
    try:
        _check_resources(cfg)
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"cfg": to_plain(cfg), "task": task},
            scaling_config=ScalingConfig(
                num_workers=int(cfg.trainer.workers),
                use_gpu=bool(cfg.trainer.gpu),
                resources_per_worker={"CPU": float(cfg.trainer.cpus_per_worker)},
            ),
            run_config=RunConfig(
                name=EXPERIMENT,
                storage_path=str(run_dir / "ray"),
                failure_config=FailureConfig(max_failures=int(cfg.trainer.max_failures)),
            ),
        )
        try:
            trainer.fit()
        except Exception as exc:  # Ray wraps the worker's exception; show the worker's own
            cause = _worker_error(exc)
            if isinstance(cause, DenoiseVCError):
                raise cause from None
            first = (str(cause).strip().splitlines() or [""])[0]
            raise TrainingError(
                f"data-parallel training failed: {type(cause).__name__}: {first} (the run continues from "
                f"{run_dir / 'last.pth'} when started again)"
            ) from None
    finally:
        ray.shutdown()
    return summary_from_run(run_dir, int(cfg.solver.epochs))


def summary_from_run(run_dir: Path, epochs: int) -> dict[str, Any]:
    """What `Solver.fit` returns, rebuilt from the history the chief wrote."""
    history_file = run_dir / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else []
    best = next((r for r in reversed(history) if r.get("best")), history[-1] if history else {})
    done = history[-1]["epoch"] if history else 0
    return {"stop_reason": "finished" if done >= epochs else "stopped early", "best": best, "epochs": done}

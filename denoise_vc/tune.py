"""Hyper-parameter sweeps with Ray Tune: every trial runs the same Solver as `denoise-vc train`.

The search space is a mapping of dotted config keys to distributions written as text
(`loguniform(1e-4, 3e-3)`, `uniform(0, 2)`, `choice([2, 4, 6])`, `randint(1, 8)`, `grid([1, 2])`).
Trials report per-epoch metrics with a checkpoint through `ray.tune.report`; the experiment lives
under `<run_dir>/ray` (absolute), data paths are resolved before the sweep starts, Ray's usage stats and
dashboard are off, and Ray is shut down however the sweep ends.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from denoise_vc.config import save_yaml, to_plain
from denoise_vc.errors import ConfigError, DenoiseVCError

EXPERIMENT = "sweep"
DISTRIBUTION = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$", re.S)


def parse_distribution(key: str, text: Any):
    """'loguniform(1e-4, 3e-3)' -> tune.loguniform(1e-4, 3e-3); a plain value stays fixed."""
    from ray import tune

    if not isinstance(text, str):
        return text
    match = DISTRIBUTION.match(text)
    if not match:
        raise ConfigError(f"tune.space.{key}: cannot parse {text!r}; write e.g. uniform(0, 1) or choice([1, 2])")
    name, raw_args = match.groups()
    try:
        args = ast.literal_eval(f"[{raw_args}]")
    except (ValueError, SyntaxError):
        raise ConfigError(f"tune.space.{key}: arguments of {text!r} are not literals") from None
    makers = {
        "loguniform": tune.loguniform,
        "uniform": tune.uniform,
        "choice": tune.choice,
        "randint": tune.randint,
        "quniform": tune.quniform,
        "qloguniform": tune.qloguniform,
        "randn": tune.randn,
        "grid": tune.grid_search,
    }
    if name not in makers:
        raise ConfigError(f"tune.space.{key}: unknown distribution {name!r}; use one of {', '.join(makers)}")
    try:
        return makers[name](*args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tune.space.{key}: {text!r}: {exc}") from None


def search_space(cfg: DictConfig) -> dict[str, Any]:
    """The trial parameter space; every key must name an existing config value."""
    space = to_plain(cfg.tune.space) if cfg.tune.get("space") else {}
    if not space:
        raise ConfigError("tune.space is empty: choose a space with tune=<name> (see configs/tune/)")
    for key in space:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or leaf not in node:
            raise ConfigError(
                f"tune.space key {key!r} is not a config value of this run "
                f"(model={cfg.model.name}, loss={cfg.loss.name})"
            )
    return {key: parse_distribution(key, value) for key, value in space.items()}


def trial_config(base: dict, params: dict[str, Any], run_dir: str) -> DictConfig:
    cfg = OmegaConf.create(base)
    for key, value in params.items():
        OmegaConf.update(cfg, key, value, merge=False)
    cfg.run_dir = run_dir
    cfg.solver.progress = False
    return cfg


def run_trial(params: dict[str, Any], base: dict) -> None:
    """Ray Tune function trainable: build the solver for these parameters, report every epoch."""
    from ray import tune

    from denoise_vc.solvers.factory import build_solver

    started_at = time.time()
    context = tune.get_context()
    run_dir = Path(context.get_trial_dir()) / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None and not (run_dir / "last.pth").exists():
        with checkpoint.as_directory() as folder:  # resuming an errored trial: its last state
            for name in ("last.pth", "best.pth"):
                if (Path(folder) / name).exists():
                    shutil.copy2(Path(folder) / name, run_dir / name)
    cfg = trial_config(base, params, str(run_dir))
    solver = build_solver(cfg)

    def report(solver, row: dict[str, Any]) -> None:
        metrics = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        metrics["best_" + base["tune"]["metric"]] = solver.best_value
        metrics["started_at"] = started_at
        with tempfile.TemporaryDirectory() as folder:
            for name in ("last.pth", "best.pth"):
                _link_or_copy(solver.run_dir / name, Path(folder) / name)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    solver.epoch_callbacks.insert(0, report)  # before solver.callbacks: a callback that fails finds this epoch kept
    solver.fit()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def start_ray(address: str, setting: str, num_gpus: float | None = None) -> None:
    """Start Ray here (usage stats and dashboard off), or join the cluster at `address` (named `setting` in
    the one-line error when it cannot be reached); `num_gpus` caps a locally started Ray's GPUs."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address:
        kwargs["address"] = address
    elif num_gpus is not None:
        kwargs["num_gpus"] = float(num_gpus)
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"{setting}={address!r}: cannot join the Ray cluster ({exc})") from None


def check_resources(settings) -> dict[str, float]:
    """Per-trial resources, refused at once when the cluster cannot ever satisfy them."""
    import ray

    wanted = {k: float(v) for k, v in to_plain(settings.resources).items() if v}
    available = ray.cluster_resources()
    for key, ray_key in (("cpu", "CPU"), ("gpu", "GPU")):
        if wanted.get(key, 0) > available.get(ray_key, 0):
            where = "this machine" if not settings.address else "the Ray cluster"
            raise ConfigError(
                f"tune.resources.{key}={wanted[key]:g} per trial, but {where} has "
                f"{available.get(ray_key, 0):g} {ray_key}s (set tune.resources.{key}=0"
                + (" or run on a GPU machine)" if key == "gpu" else ")")
            )
    return {"cpu": wanted.get("cpu", 0.0), "gpu": wanted.get("gpu", 0.0)}


def _tune_config(cfg: DictConfig):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    settings = cfg.tune
    if settings.mode not in ("max", "min"):
        raise ConfigError(f"tune.mode must be max or min, not {settings.mode!r}")
    if settings.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=max(1, int(cfg.solver.epochs)),
            grace_period=int(settings.grace_period),
            reduction_factor=float(settings.reduction_factor),
        )
    elif settings.scheduler == "fifo":
        scheduler = FIFOScheduler()
    else:
        raise ConfigError(f"tune.scheduler must be asha or fifo, not {settings.scheduler!r}")
    search_alg = None
    if settings.search == "optuna":
        try:
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            raise ConfigError("tune.search=optuna needs the optuna package (pip install optuna)") from None
        search_alg = OptunaSearch()
    elif settings.search != "random":
        raise ConfigError(f"tune.search must be random or optuna, not {settings.search!r}")
    return tune.TuneConfig(
        metric=settings.metric,
        mode=settings.mode,
        num_samples=int(settings.num_samples),
        scheduler=scheduler,
        search_alg=search_alg,
        max_concurrent_trials=int(settings.max_concurrent) or None,
    )


def _preflight(cfg: DictConfig) -> None:
    """Check the model, loss and callbacks here, so a config mistake is one error line, not one failed
    trial each."""
    from denoise_vc.solvers.base import load_callbacks
    from denoise_vc.solvers.factory import build_denoise_loss, build_denoiser, denoiser_options

    rate = int(cfg.data.sample_rate)
    build_denoiser(cfg.model, int(cfg.seed), rate, *denoiser_options(cfg.data))
    build_denoise_loss(cfg.loss, rate)
    load_callbacks(cfg.solver.get("callbacks"))


def run_sweep(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) the sweep described by `cfg.tune`; returns a summary with the best trial."""
    _preflight(cfg)
    import ray
    from ray import tune

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    space = search_space(cfg)
    base = to_plain(cfg)
    storage = (run_dir / "ray").resolve()
    experiment = storage / EXPERIMENT
    settings = cfg.tune
    start_ray(settings.address, "tune.address", settings.get("num_gpus"))
    try:
        resources = check_resources(settings)
        trainable = tune.with_resources(tune.with_parameters(run_trial, base=base), resources)
        if settings.resume:
            if not tune.Tuner.can_restore(str(experiment)):
                raise ConfigError(f"{experiment}: no sweep to resume (run without tune.resume=true first)")
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
        else:
            if experiment.exists():
                raise ConfigError(
                    f"{experiment}: a sweep already exists; resume it with tune.resume=true or choose another run_dir"
                )
            tuner = tune.Tuner(
                trainable,
                param_space=space,
                tune_config=_tune_config(cfg),
                run_config=tune.RunConfig(
                    name=EXPERIMENT,
                    storage_path=str(storage),
                    verbose=1,
                    failure_config=tune.FailureConfig(max_failures=int(settings.max_failures)),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                ),
            )
        results = tuner.fit()
        return summarise(results, cfg, run_dir)
    finally:
        ray.shutdown()


def summarise(results, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Trial table (printed and CSV), the best trial's config as YAML, its best checkpoint as best.pth."""
    metric, mode = cfg.tune.metric, cfg.tune.mode
    keys = list(to_plain(cfg.tune.space))
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        values = frame[metric].dropna() if frame is not None and metric in frame else []
        best = (max(values) if mode == "max" else min(values)) if len(values) else None
        rows.append(
            {
                "trial": (result.metrics or {}).get("trial_id", Path(result.path).name),
                **{k: (result.config or {}).get(k) for k in keys},
                "epochs": (result.metrics or {}).get("training_iteration", 0),
                f"best_{metric}": best,
                "status": "error" if result.error else "ok",
                "path": result.path,
            }
        )
    with open(run_dir / "trials.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    print(format_trials(rows, keys, metric))
    scored = [r for r in rows if r[f"best_{metric}"] is not None]
    if not scored:
        raise DenoiseVCError(f"no trial reported {metric}; see {run_dir / 'ray' / EXPERIMENT}")
    best = (max if mode == "max" else min)(scored, key=lambda r: r[f"best_{metric}"])
    best_result = next(r for r in results if r.path == best["path"])
    config = trial_config(to_plain(cfg), dict(best_result.config), str(run_dir / "best_trial"))
    config.tune.resume = False
    save_yaml(config, run_dir / "best_config.yaml")
    checkpoint = best_result.get_best_checkpoint(metric, mode) or best_result.checkpoint
    with checkpoint.as_directory() as folder:
        shutil.copy2(Path(folder) / "best.pth", run_dir / "best.pth")
    print(
        f"best trial {best['trial']}: {metric} {best[f'best_{metric}']:.3f}; "
        f"config {run_dir / 'best_config.yaml'}; checkpoint {run_dir / 'best.pth'}"
    )
    errored = sum(r["status"] == "error" for r in rows)
    if errored:
        print(f"{errored} of {len(rows)} trials failed; continue them with tune.resume=true run_dir={run_dir}")
    return {"rows": rows, "best": best, "errored": errored}


def format_trials(rows: list[dict], keys: list[str], metric: str) -> str:
    columns = ["trial", *keys, "epochs", f"best_{metric}", "status"]

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    widths = [max(len(c), *(len(cell(r[c])) for r in rows)) if rows else len(c) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)

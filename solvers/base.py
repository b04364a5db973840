"""The generic training loop: epochs of train/validate, checkpoints, resume, early stopping, history.

Subclasses say what one training batch and one validation pass are (`train_loss`, `validate`); this
class owns everything else. Every epoch reseeds its random generators from (seed, epoch), so a run
resumed from `last.pth` reproduces the uninterrupted run exactly on a deterministic device.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import resource
import time
import zlib
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from denoise_vc import __version__
from denoise_vc.checkpoint import load_checkpoint, load_state_dict_strict, save_checkpoint
from denoise_vc.config import save_yaml, to_plain
from denoise_vc.errors import ConfigError, TrainingError
from denoise_vc.parallel import DataParallel, RecordedBatches
from denoise_vc.solvers.ema import WeightAverage
from denoise_vc.tracking import ExperimentLogger


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} asked for, but no CUDA GPU is available")
    return torch.device(name)


def load_callbacks(names: Iterable[str] | None) -> list[Callable[..., None]]:
    """`solver.callbacks`: functions named 'package.module:function', each called as fn(solver, history_row)
    on the chief after every epoch's checkpoints are written (custom alerts, external trackers, tests)."""
    found = []
    for name in names or []:
        module_name, _, attribute = str(name).partition(":")
        try:
            found.append(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                f"solver.callbacks: cannot load {name!r} ({exc}); write package.module:function"
            ) from None
    return found


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict, safe to save while training goes on."""
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def epoch_seed(seed: int, epoch: int) -> int:
    return zlib.crc32(f"{seed}/{epoch}".encode()) & 0x7FFFFFFF


# Joins a validation metric to one of several levels it is also reported at (`si_sdr_at_snr-9`); the epoch line
# prints those together after the averages.
LEVEL_MARK = "_at_"

# What a resumed run may change: budgets, logging and where it runs; anything else would mix two runs' settings.
RESUMABLE_CHANGES = (
    "solver.epochs",
    "solver.max_minutes",
    "solver.patience",
    "solver.progress",
    "solver.plot_every",
    "solver.resume",
    "solver.callbacks",
    "logger",
    "device",
    "run_dir",
    "data.num_workers",
    "tune",
    "evaluate",
    "trainer",
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key: old -> new' for every setting that differs between a run's saved config and a new one, budgets
    and logging (RESUMABLE_CHANGES) excepted."""
    old_flat, new_flat = _flatten(saved), _flatten(new)
    changes = []
    for key in sorted(set(old_flat) | set(new_flat)):
        if any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE_CHANGES):
            continue
        if old_flat.get(key) != new_flat.get(key):  # a key added later with a null default changes nothing
            changes.append(f"{key}: {old_flat.get(key, '<absent>')} -> {new_flat.get(key, '<absent>')}")
    return changes


def training_seed(cfg: DictConfig) -> int:
    """`solver.seed` (initial weights, training mixtures, dropout), else the top-level `seed`; only the latter
    picks the data split, so repeats of a training with other solver seeds share their test material."""
    chosen = cfg.solver.get("seed")
    if chosen is None:
        return int(cfg.seed)
    if isinstance(chosen, bool) or not isinstance(chosen, int):
        raise ConfigError(f"solver.seed must be a whole number or null, not {chosen!r}")
    return chosen


class Solver:
    """Trains `model` on `train_set`, validating each epoch; all outputs go to `cfg.run_dir`."""

    kind = "model"  # checkpoint kind written and accepted
    scheduler_per_step = False  # step the LR scheduler after every optimiser step instead of every epoch
    higher_is_better = {"loss": False}
    default_ema_decay = 0.0  # solver.ema_decay: null takes this; > 0 validates and ships an EMA (solvers/ema.py)

    def __init__(self, cfg: DictConfig, model: nn.Module, train_set: Dataset, logger: ExperimentLogger) -> None:
        self.cfg = cfg
        self.scfg = cfg.solver
        self.run_dir = Path(cfg.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(cfg.device)
        self.model = model.to(self.device)
        self.train_set = train_set
        self.logger = logger
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.use_amp = bool(self.scfg.amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.epoch = 0  # next epoch to run
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.bad_epochs = 0
        self.skipped_steps = 0
        self.metric = str(self.scfg.valid_metric)
        # called as fn(solver, history_row) after each epoch's checkpoints are on disk (e.g. Ray Tune reporting)
        self.epoch_callbacks: list[Callable[[Solver, dict[str, Any]], None]] = load_callbacks(
            self.scfg.get("callbacks")
        )
        # set by denoise_vc.distributed on each Ray Train worker; None = a single process
        self.parallel: DataParallel | None = None
        self.items_seen: list[int] = []  # training items this worker drew in the last epoch
        decay = self._ema_decay(self.scfg.get("ema_decay"))
        self.average = WeightAverage(self.model, decay) if decay else None

    def _ema_decay(self, asked: float | None) -> float:
        """The EMA decay a run uses when `solver.ema_decay` says `asked` (null: this solver's default)."""
        return float(self.default_ema_decay if asked is None else asked)

    @property
    def is_chief(self) -> bool:
        """The process that validates, writes checkpoints, plots and logs (the only one unless data-parallel)."""
        return self.parallel is None or self.parallel.is_chief

    # -- what subclasses provide -------------------------------------------------------------
    def train_loss(self, batch) -> torch.Tensor:
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        raise NotImplementedError

    def global_batches(self) -> list[list[int]]:
        """The item indices of each of this epoch's batches over all workers (subclasses may bucket)."""
        size, count = int(self.cfg.data.batch_size), len(self.train_set)
        return [list(range(start, min(count, start + size))) for start in range(0, count, size)]

    collate_fn: Callable | None = None  # how a batch's items become tensors (None: torch's default)

    def train_loader(self) -> Iterable:
        """One epoch of training batches: this worker's shard of every global batch."""
        batches = self.global_batches()
        self._sampler = RecordedBatches(self.parallel.shard_batches(batches) if self.parallel else batches)
        return DataLoader(
            self.train_set,
            batch_sampler=self._sampler,
            collate_fn=self.collate_fn,
            num_workers=int(self.cfg.data.num_workers),
        )

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """Apply curricula etc.; returns values worth logging."""
        return {}

    def after_validation(self, epoch: int) -> None:
        """Plots, audio samples: anything a person looks at."""

    def after_step(self) -> None:
        """Called after each optimiser step (e.g. to update an EMA of the weights)."""

    def extra_train_state(self) -> dict[str, Any]:
        """Subclass state that `last.pth` must carry for an exact resume (tensors and plain Python only)."""
        return {}

    def load_extra_train_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_train_state` saved; called after the base state is restored."""

    # -- set-up ----------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        kind = str(self.scfg.optimizer).lower()
        if kind == "adam":
            return torch.optim.Adam(params, lr=self.scfg.lr, weight_decay=self.scfg.weight_decay)
        if kind == "adamw":
            return torch.optim.AdamW(params, lr=self.scfg.lr, weight_decay=self.scfg.weight_decay)
        raise ConfigError(f"solver.optimizer must be adam or adamw, not {kind!r}")

    def _make_scheduler(self):
        kind = str(self.scfg.scheduler).lower()
        if kind == "none":
            return None
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(1, int(self.scfg.epochs)))
        raise ConfigError(f"solver.scheduler must be none or cosine, not {kind!r}")

    # -- checkpoints -------------------------------------------------------------------------------
    def model_spec(self) -> dict[str, Any]:
        return {
            "name": getattr(self.model, "registry_name", type(self.model).__name__),
            "args": dict(getattr(self.model, "init_args", {})),
        }

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights to ship: the EMA when there is one (the raw ones travel in last.pth's train state)."""
        return cpu_copy(self.average.state if self.average else self.model.state_dict())

    def shipped_weights(self):
        """A context in which the model holds the weights that are validated and shipped."""
        return self.average.swapped_in() if self.average else nullcontext()

    def _payload(self, metrics: dict[str, float], with_train_state: bool) -> dict[str, Any]:
        payload = {
            "kind": self.kind,
            "model": self.model_spec(),
            "state_dict": self.weights(),
            "config": to_plain(self.cfg),
            "meta": {
                "epoch": self.epoch,
                "step": self.step,
                "metrics": dict(metrics),
                "sample_rate": int(self.cfg.data.sample_rate),
                "versions": {"denoise_vc": __version__, "torch": torch.__version__.split("+")[0]},
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        }
        if with_train_state:
            payload["train_state"] = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "scaler": self.scaler.state_dict(),
                "history": self.history,
                "best_value": self.best_value,
                "bad_epochs": self.bad_epochs,
                "skipped_steps": self.skipped_steps,
                "torch_rng": torch.get_rng_state(),
                "extra": self.extra_train_state(),
            }
            if self.average:
                payload["train_state"]["raw_weights"] = cpu_copy(self.model.state_dict())
        return payload

    def _resume(self) -> bool:
        last = self.run_dir / "last.pth"
        if not (self.scfg.resume and last.exists()):
            return False
        ckpt = load_checkpoint(last, kind=self.kind)
        state = ckpt.get("train_state")
        if state is None:
            return False
        raw = state.get("raw_weights") or (state.get("extra") or {}).get("raw_weights")  # saved with an average
        saved = dict(ckpt.get("config") or {})
        if isinstance(saved.get("solver"), dict):  # compare the average kept, not how it was asked for
            asked = saved["solver"].get("ema_decay")
            saved["solver"] = {**saved["solver"], "ema_decay": self._ema_decay(asked) if raw else 0.0}
        new = to_plain(self.cfg)
        new["solver"]["ema_decay"] = self.average.decay if self.average else 0.0
        changed = config_changes(saved, new)
        if changed and str(self.scfg.resume) != "force":
            shown = "; ".join(changed[:4]) + ("; ..." if len(changed) > 4 else "")
            raise ConfigError(
                f"{self.run_dir}: this run was trained with other settings ({shown}); use another run_dir, or "
                "solver.resume=force to continue with the new ones"
            )
        load_state_dict_strict(self.model, ckpt["state_dict"], last)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.best_value = state["best_value"]
        self.bad_epochs = int(state["bad_epochs"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        torch.set_rng_state(state["torch_rng"])
        self.load_extra_train_state(state.get("extra") or {})
        if self.average:  # the checkpoint's state_dict is the average; a run saved without one restarts it
            if raw is None:
                self.average.reset()
            else:
                self.average.restore(raw)
        self.epoch = int(ckpt["meta"]["epoch"])
        self.step = int(ckpt["meta"]["step"])
        return True

    def _init_from(self) -> None:
        source = self.scfg.get("init_from")
        if not source:
            return
        ckpt = load_checkpoint(source, kind=self.kind)
        if ckpt["model"]["name"] != self.model_spec()["name"]:
            raise ConfigError(
                f"{source}: holds a {ckpt['model']['name']!r} model, this run trains {self.model_spec()['name']!r}"
            )
        fresh = tuple(getattr(self.model, "init_from_fresh", ()))
        load_state_dict_strict(self.model, ckpt["state_dict"], source, fresh)
        if self.average:
            self.average.reset()

    # -- the loop --------------------------------------------------------------------------------
    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        higher = self.higher_is_better.get(self.metric, True)
        return value > self.best_value if higher else value < self.best_value

    def _handle_nonfinite(self, what: str) -> None:
        if self.scfg.nonfinite == "skip":
            self.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return
        raise TrainingError(
            f"epoch {self.epoch + 1} step {self.step}: {what} is not finite; stopped "
            f"(last good checkpoint: {self.run_dir / 'last.pth'}; set solver.nonfinite=skip to skip such steps)"
        )

    def _train_epoch(self) -> float:
        from tqdm import tqdm

        self.model.train()
        loader = self.train_loader()
        total, count = 0.0, 0
        bar = tqdm(
            loader,
            desc=f"epoch {self.epoch + 1}/{self.scfg.epochs}",
            leave=False,
            disable=None if self.scfg.progress else True,  # None: only on a terminal
            dynamic_ncols=True,
        )
        for index, batch in enumerate(bar):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.train_loss(batch)
            finite = bool(torch.isfinite(loss))
            if self.parallel:  # every worker skips or stops together, or the next all-reduce would hang
                finite = self.parallel.all_true(finite, self.device)
            if not finite:
                self._handle_nonfinite("loss")
                continue
            self.scaler.scale(loss).backward()
            if self.parallel:
                self.parallel.average_gradients(self.model.parameters(), len(self._sampler.batches[index]))
            self.scaler.unscale_(self.optimizer)
            clip = float(self.scfg.grad_clip) if self.scfg.grad_clip else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            if not torch.isfinite(grad_norm) and not self.use_amp:
                self._handle_nonfinite("gradient norm")
                continue
            scale = self.scaler.get_scale() if self.use_amp else None
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.use_amp and self.scaler.get_scale() < scale:  # the scaler skipped this step (inf/NaN grads)
                self.skipped_steps += 1
                continue
            if self.average:
                self.average.update(self.step)
            self.after_step()
            self.step += 1
            if self.scheduler and self.scheduler_per_step:
                self.scheduler.step()
            total += float(loss.detach())
            count += 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        if count == 0:
            raise TrainingError(f"epoch {self.epoch + 1}: no training step succeeded (every loss was NaN/Inf)")
        self.items_seen = list(self._sampler.drawn)
        return self.parallel.mean(total / count, self.device) if self.parallel else total / count

    def _write_history(self) -> None:
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        keys = sorted({k for row in self.history for k in row}, key=lambda k: (k != "epoch", k))
        with open(self.run_dir / "history.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)

    def fit(self) -> dict[str, Any]:
        """Train to `solver.epochs` (or early stop / time budget); returns the best validation metrics."""
        try:
            return self._fit()
        finally:
            self.logger.close()

    def _fit(self) -> dict[str, Any]:
        resumed = self._resume()  # refuses a config that differs from the run's before anything is written
        if self.is_chief:
            save_yaml(self.cfg, self.run_dir / "config.yaml")
            if resumed:
                print(f"resuming {self.run_dir} at epoch {self.epoch + 1}")
        if not resumed:
            self._init_from()
        seed = training_seed(self.cfg)
        budget = float(self.scfg.max_minutes or 0) * 60.0
        started = time.monotonic()
        stop_reason = "finished" if self.epoch < int(self.scfg.epochs) else "already finished"
        while self.epoch < int(self.scfg.epochs):
            if self.scfg.patience and self.bad_epochs >= int(self.scfg.patience):
                stop_reason = "early stopping"
                break
            epoch_started = time.monotonic()
            torch.manual_seed(epoch_seed(seed, self.epoch))
            scheduled = self.on_epoch_start(self.epoch)
            train_loss = self._train_epoch()
            scheduled["train_items_per_s"] = len(self.items_seen) / max(time.monotonic() - epoch_started, 1e-9)
            if self.scheduler and not self.scheduler_per_step:
                self.scheduler.step()
            self.epoch += 1
            if self.parallel:
                self.parallel.average_buffers(self.model)
                self._record_workers(scheduled)
            if self.is_chief:
                self._end_epoch(train_loss, scheduled, epoch_started)
            over_budget = bool(budget) and time.monotonic() - started > budget
            if self.parallel:  # the chief's clock and validation decide for every worker
                self.bad_epochs, over_budget = self.parallel.broadcast((self.bad_epochs, over_budget))
            if over_budget:
                stop_reason = "time budget"
                break
        if self.is_chief:
            self.logger.log_file("best_checkpoint", self.run_dir / "best.pth")
        best = next((r for r in reversed(self.history) if r["best"]), self.history[-1] if self.history else {})
        return {"stop_reason": stop_reason, "best": best, "epochs": self.epoch}

    def _record_workers(self, scheduled: dict[str, float]) -> None:
        """workers.json: the items each worker drew this epoch and its peak memory; the global item rate."""
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB
        if self.device.type == "cuda":
            peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        seen = self.parallel.gather((self.items_seen, peak_mb))
        scheduled["train_items_per_s"] = self.parallel.mean(scheduled["train_items_per_s"], self.device) * len(seen)
        if self.is_chief:
            record = {
                "epoch": self.epoch,
                "world_size": self.parallel.world_size,
                "items": [items for items, _ in seen],
                "peak_memory_mb": [round(mb, 1) for _, mb in seen],
                "memory": "GPU allocated" if self.device.type == "cuda" else "process RSS",
            }
            (self.run_dir / "workers.json").write_text(json.dumps(record))

    def _end_epoch(self, train_loss: float, scheduled: dict[str, float], epoch_started: float) -> None:
        """Validate, keep the best, write checkpoints, history, logs and plots, call the callbacks."""
        with self.shipped_weights():
            metrics = self.validate()
        value = float(metrics[self.metric])
        improved = self._improved(value)
        if improved:
            self.best_value, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": train_loss,
            **scheduled,
            **{f"valid_{k}": v for k, v in metrics.items()},
            "best": improved,
            "seconds": round(time.monotonic() - epoch_started, 2),
        }
        self.history.append(row)
        if improved:
            save_checkpoint(self._payload(metrics, with_train_state=False), self.run_dir / "best.pth")
        save_checkpoint(self._payload(metrics, with_train_state=True), self.run_dir / "last.pth")
        self._write_history()
        scalars = {
            k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool) and k != "step"
        }
        self.logger.log_scalars(scalars, self.step)
        if self.scfg.plot_every and self.epoch % int(self.scfg.plot_every) == 0:
            with self.shipped_weights():
                self.after_validation(self.epoch)
        self._print_epoch(row)
        for callback in self.epoch_callbacks:
            callback(self, row)

    def _print_epoch(self, row: dict[str, Any]) -> None:
        parts = [f"epoch {row['epoch']}/{self.scfg.epochs}", f"train_loss {row['train_loss']:.4f}"]
        valid = {k: v for k, v in row.items() if k.startswith("valid_") and isinstance(v, float)}
        parts += [f"{k} {v:.3f}" for k, v in valid.items() if LEVEL_MARK not in k]
        per_level = {tuple(k.split(LEVEL_MARK, 1)): v for k, v in valid.items() if LEVEL_MARK in k}
        for metric in dict.fromkeys(name for name, _ in per_level):  # one compact part per metric
            levels = " ".join(f"{level}:{v:.2f}" for (name, level), v in per_level.items() if name == metric)
            parts.append(f"{metric} by level [{levels}]")
        parts += [f"{k} {row[k]:.3g}" for k in ("gain", "peak_weight") if k in row]
        parts.append(f"{row['seconds']:.1f}s" + (" *best*" if row["best"] else ""))
        print("  ".join(parts), flush=True)

"""The voice-conversion task: wGMM model + VCLoss on cached parallel pairs, Noam LR, free-running validation.

The best checkpoint is the one whose free-running conversions of the validation sources (no teacher forcing)
lie closest to their targets after DTW: MCD in dB for `vocoder=world`, log-mel distance for Griffin-Lim
(`solver.valid_metric`: mcd | mel_dtw; mel_l1 keeps the teacher-forced mel L1).

Pretrain -> finetune is two runs: the second sets `solver.init_from=<first run>/best.pth`, which copies the
weights but starts a fresh optimiser and a fresh warm-up (the optimiser reset). Checkpoints carry the
normalisation statistics in `meta["stats"]`, so `convert` needs nothing but the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from omegaconf import DictConfig

from denoise_vc.config import model_args, to_plain
from denoise_vc.errors import ConfigError
from denoise_vc.settings import check_settings
from denoise_vc.solvers.base import Solver
from denoise_vc.tracking import ExperimentLogger, build_logger
from denoise_vc.vc.dataset import BucketSampler, PairSet, collate, denormalise_frames
from denoise_vc.vc.features import FeatureSettings
from denoise_vc.vc.front_end import front_end_settings, is_denoised_copy
from denoise_vc.vc.metrics import WorldFeatures, score_features, world_features
from denoise_vc.vc.prepare import prepare
from denoise_vc.vc.vocoders import build_vocoder, frame_dims, free_running_distance


def noam_factor(step: int, warmup_steps: int) -> float:
    """LR multiplier for the optimiser step that follows `step` completed steps: linear warm-up reaching 1 at
    step `warmup_steps`, then inverse-square-root decay (Vaswani et al., with an explicit peak LR)."""
    n = step + 1
    warmup = max(1, int(warmup_steps))
    return min(n / warmup, (warmup / n) ** 0.5)


def mel_l1(out: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(sum of |mel after PostNet - target| over valid frames and bins, number of those values)."""
    mask = out["mel_mask"].unsqueeze(-1).to(out["mel_after"].dtype)
    diff = (out["mel_after"].float() - out["mel_target"]).abs() * mask
    return float(diff.sum()), float(mask.sum()) * out["mel_after"].shape[-1]


class VCSolver(Solver):
    kind = "vc"
    higher_is_better = {"loss": False, "mel_l1": False, "mcd": False, "mel_dtw": False, "mcd_sptk": False}
    # scored on converted (not teacher-forced) validation sources; mcd_sptk after the vocoder, see free_running
    free_running_metrics = ("mcd", "mel_dtw", "mcd_sptk")

    def __init__(
        self,
        cfg: DictConfig,
        model: nn.Module,
        loss: nn.Module,
        train_set: PairSet,
        valid_set: PairSet,
        stats: dict[str, Any],
        logger: ExperimentLogger,
    ) -> None:
        super().__init__(cfg, model, train_set, logger)
        self.loss_fn = loss
        self.valid_set = valid_set
        self.stats = stats
        self._vocoder = None  # built on the first `mcd_sptk` validation, with the targets it analyses once
        self._vocoded_targets: dict[int, WorldFeatures] = {}
        self.sampler = BucketSampler(
            train_set.lengths(), int(cfg.data.batch_size), int(cfg.data.group_size), int(cfg.seed)
        )

    def _make_scheduler(self):
        if str(self.scfg.scheduler).lower() == "noam":  # counted in optimiser steps; cosine stays per epoch
            self.scheduler_per_step = True
            warmup = int(self.scfg.warmup_steps)
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: noam_factor(step, warmup))
        return super()._make_scheduler()

    collate_fn = staticmethod(collate)

    def global_batches(self) -> list[list[int]]:
        """Length-bucketed batches, reshuffled per (seed, epoch)."""
        self.sampler.epoch = self.epoch
        return list(self.sampler)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def train_loss(self, batch) -> torch.Tensor:
        batch = self._to_device(batch)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            out = self.model(batch)
        return self.loss_fn(out, batch)[0]

    def _infer(self, item: dict[str, torch.Tensor]) -> np.ndarray:
        """Free-running converted frames (normalised, unpadded) of one collated item."""
        mel, length = self.model.infer(
            *(item[k].to(self.device) for k in ("src_mel", "src_pitch", "src_energy", "src_len")),
            item["src_segment"].to(self.device),
            item["n_segments"].to(self.device),
        )
        return mel[0, : int(length[0])].float().cpu().numpy()

    def free_running(self) -> dict[str, float]:
        """Median distance of converted validation utterances from their targets. `mcd`/`mel_dtw`: DTW on the
        predicted frames, in the vocoder's units. `mcd_sptk`: both sides through the vocoder, then the SPTK
        MCD of `vc-evaluate` and benchmarks/vc_real.py on the waveforms (against the target's vocoded frames):
        it also sees what frames alone hide (F0, voicing and aperiodicity errors reshape the synthesised
        spectrum; NOTE.md, session 17: on builtin it avoided one bad pick of `mcd`'s, not every time). Behind a
        front-end (`data.front_end`) also each form's median (`<metric>_clean`, `<metric>_denoised`), and the
        selection metric weighs them by `solver.valid_denoised_weight` when it is set."""
        fs, target_stats = FeatureSettings.from_config(self.cfg.data), self.stats["target"]
        distances = []
        for index in range(len(self.valid_set)):
            item = collate([self.valid_set[index]])
            converted = denormalise_frames(self._infer(item), target_stats)
            target = denormalise_frames(item["tgt_mel"][0].numpy(), target_stats)
            if self.metric == "mcd_sptk":
                distances.append(self._vocoded_mcd(index, converted, target, fs))
            else:
                distances.append(free_running_distance(converted, target, fs))
        distances = np.asarray(distances)
        metrics = {self.metric: float(np.median(distances))}
        denoised = np.array([is_denoised_copy(name) for name in self.valid_set.names])
        if denoised.any() and not denoised.all():
            clean, noisy = float(np.median(distances[~denoised])), float(np.median(distances[denoised]))
            metrics |= {f"{self.metric}_clean": clean, f"{self.metric}_denoised": noisy}
            weight = self.scfg.get("valid_denoised_weight")
            if weight is not None:
                metrics[self.metric] = (1.0 - float(weight)) * clean + float(weight) * noisy
        return metrics

    def _vocoded_mcd(self, index: int, converted: np.ndarray, target: np.ndarray, fs: FeatureSettings) -> float:
        """SPTK MCD of the vocoded conversion against the vocoded target (synthesised and analysed once per run)."""
        if self._vocoder is None:
            self._vocoder = build_vocoder(fs)
        if index not in self._vocoded_targets:
            self._vocoded_targets[index] = world_features(self._vocoder(target), fs.sample_rate)
        converted_features = world_features(self._vocoder(converted), fs.sample_rate)
        return score_features(converted_features, self._vocoded_targets[index])["mcd_sptk"]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Teacher-forced loss and mel L1 (after PostNet, normalised units) on the validation pairs, and the
        free-running distance when `solver.valid_metric` asks for it."""
        self.model.eval()
        size = int(self.cfg.data.batch_size)
        losses, l1_sum, l1_count = [], 0.0, 0.0
        for start in range(0, len(self.valid_set), size):
            items = [self.valid_set[i] for i in range(start, min(len(self.valid_set), start + size))]
            batch = self._to_device(collate(items))
            out = self.model(batch)
            losses.append(float(self.loss_fn(out, batch)[0]) * len(items))
            total, count = mel_l1(out)
            l1_sum, l1_count = l1_sum + total, l1_count + count
        metrics = {"loss": sum(losses) / max(1, len(self.valid_set)), "mel_l1": l1_sum / max(1.0, l1_count)}
        if self.metric in self.free_running_metrics:
            metrics |= self.free_running()
        self.model.train()
        return metrics

    def after_validation(self, epoch: int) -> None:
        """Target vs converted (free-running) mel of the first validation pair."""
        from denoise_vc.vc.plots import plot_mels

        item = collate([self.valid_set[0]])
        self.model.eval()
        with torch.no_grad():
            converted = self._infer(item)
        self.model.train()
        mels = {"source": item["src_mel"][0].numpy(), "target": item["tgt_mel"][0].numpy(), "converted": converted}
        png = plot_mels(mels, self.run_dir / "plots" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}")
        self.logger.log_file(f"plots/epoch_{epoch:03d}", png)

    def _payload(self, metrics: dict[str, float], with_train_state: bool) -> dict[str, Any]:
        payload = super()._payload(metrics, with_train_state)
        payload["meta"]["stats"] = self.stats
        return payload


def build_vc_solver(cfg: DictConfig) -> Solver:
    """A ready-to-fit VC solver: model and loss first (a bad setting is refused before anything is written),
    then the features of `cfg.data`, prepared or reused."""
    if str(cfg.model.get("name")) == "stargan_vc":  # non-parallel many-to-many GAN (issue 16, part 1)
        from denoise_vc.solvers.stargan import build_stargan_solver

        return build_stargan_solver(cfg)
    check_settings(cfg)
    from denoise_vc.models import build_model
    from denoise_vc.models.vc import VCLoss

    r = int(cfg.data.reduction_factor)
    name, args = model_args(cfg.model)
    if int(args.get("reduction", r)) != r:
        raise ConfigError("model.reduction must equal data.reduction_factor")
    if str(cfg.solver.valid_metric) not in VCSolver.higher_is_better:
        choices = ", ".join(VCSolver.higher_is_better)
        raise ConfigError(f"solver.valid_metric must be one of {choices}, got {cfg.solver.valid_metric!r}")
    weighs = cfg.solver.get("valid_denoised_weight") is not None
    if weighs and front_end_settings(cfg.data) is None:
        raise ConfigError("solver.valid_denoised_weight needs data.front_end.denoiser (no denoised sources to weigh)")
    if weighs and str(cfg.solver.valid_metric) not in VCSolver.free_running_metrics:
        raise ConfigError("solver.valid_denoised_weight needs a free-running solver.valid_metric (mcd or mel_dtw)")
    args["n_mels"] = frame_dims(FeatureSettings.from_config(cfg.data))  # the vocoder's frame size
    with torch.random.fork_rng():
        torch.manual_seed(int(cfg.seed))
        try:
            model = build_model(name, **args)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if getattr(model, "task", None) != "vc":
        raise ConfigError(f"model {name!r} is not a voice-conversion model")
    try:
        loss = VCLoss(**to_plain(cfg.loss))
    except TypeError as exc:
        raise ConfigError(f"loss: {exc}") from None
    manifest = prepare(cfg, progress=bool(cfg.solver.progress))
    stats, prepared, splits = manifest["stats"], Path(str(cfg.data.prepared_dir)), manifest["splits"]
    if not splits["valid"]:
        raise ConfigError("no validation pairs: give the corpus more utterances or a larger data.split.valid")
    train_set = PairSet(prepared, splits["train"], stats, r)
    valid_set = PairSet(prepared, splits["valid"], stats, r)
    return VCSolver(cfg, model, loss, train_set, valid_set, stats, build_logger(cfg.logger, cfg.run_dir))

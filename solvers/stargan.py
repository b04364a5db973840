"""Training `model=stargan_vc` on non-parallel speaker folders: the base Solver's loop with two optimisers.

How it fits the base loop: the base `optimizer` is the generator's Adam and `train_loss` returns the
generator's loss, so the base class keeps doing what it does for every model (backward, clipping, the NaN/Inf
guard, the optimiser step, step counting, checkpoints with optimiser state, resume). Inside `train_loss`, the
discriminator takes its own step first (its own Adam, clipping and NaN/Inf guard), and the generator's loss
is built with the discriminator's weights frozen, so the base class's backward gives them no gradient. The
discriminator's optimiser state rides in `last.pth`'s `train_state.extra`; both networks' weights are in
the one state dict, so `best.pth`/`last.pth` keep their meaning and their atomic writes.

Losses (StarGAN-VC/VC2): least-squares adversarial on a PatchGAN map (StarGAN-VC2's choice, steadier than
the cross-entropy GAN on small batches), speaker classification (D on real patches with their source labels;
G so that D reads the target), cycle L1 (weight 10) and identity L1 (weight 5 for the first
`loss.identity_steps` generator steps, then 0, as StarGAN-VC turns it off).

Validation on held-out utterances, each converted whole to one other speaker (cycling through them) and
back: `cycle_l1` (normalised units; content kept), `conversion_acc` (the share of conversions the
discriminator's classifier, which trains on real speech only, assigns to the target), `real_acc` (the same
classifier on the real held-out utterances: is it worth trusting?), and `score` = conversion_acc - cycle_l1,
which picks `best.pth` by default (`solver.gan_metric`): cycle L1 alone favours the untrained, identity-like
generator, the classifier alone can be fooled by a generator that no longer keeps the content.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from denoise_vc.config import model_args
from denoise_vc.errors import ConfigError
from denoise_vc.settings import check_settings
from denoise_vc.solvers.base import Solver
from denoise_vc.tracking import ExperimentLogger, build_logger
from denoise_vc.vc.features import FeatureSettings
from denoise_vc.vc.speakers import PatchSet, load_split, prepare_speakers
from denoise_vc.vc.vocoders import check_vocoder, spectral_columns

GAN_METRICS = {"score": True, "cycle_l1": False, "conversion_acc": True, "real_acc": True}


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss of a score map: mean (score - 1)^2 for real, mean score^2 for fake."""
    return ((scores - 1.0) ** 2).mean() if real else (scores**2).mean()


class StarGANSolver(Solver):
    kind = "vc"
    higher_is_better = {"loss": False, **GAN_METRICS}

    def __init__(
        self,
        cfg: DictConfig,
        model: nn.Module,
        train_set: PatchSet,
        valid_set: list[tuple[int, np.ndarray]],
        manifest: dict[str, Any],
        logger: ExperimentLogger,
    ) -> None:
        super().__init__(cfg, model, train_set, logger)
        if self.use_amp:
            raise ConfigError("solver.amp=true is not supported by model=stargan_vc (two optimisers); set false")
        self.d_optimizer = torch.optim.Adam(
            self.model.discriminator.parameters(), lr=float(self.scfg.d_lr), betas=self._betas()
        )
        self.valid_set = valid_set
        self.speakers: list[str] = list(manifest["speakers"])
        self.stats: dict[str, Any] = manifest["stats"]
        self.lcfg = cfg.loss
        train_set.size = int(cfg.data.patches_per_epoch)
        self.sums: dict[str, float] = defaultdict(float)  # this epoch's loss parts, summed over steps
        self.counts: dict[str, int] = defaultdict(int)

    # -- optimisers: G is the base class's, D is ours ---------------------------------------------------
    def _betas(self) -> tuple[float, float]:
        beta1, beta2 = (float(b) for b in self.scfg.betas)
        return beta1, beta2

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.generator.parameters(), lr=float(self.scfg.lr), betas=self._betas())

    def _make_scheduler(self):
        if str(self.scfg.scheduler).lower() != "none":
            raise ConfigError(f"model=stargan_vc supports solver.scheduler=none only, not {self.scfg.scheduler!r}")
        return None

    def extra_train_state(self) -> dict[str, Any]:
        return {"d_optimizer": self.d_optimizer.state_dict()}

    def load_extra_train_state(self, state: dict[str, Any]) -> None:
        if "d_optimizer" not in state:
            last = self.run_dir / "last.pth"
            raise ConfigError(f"{last}: holds no discriminator optimiser state; use another run_dir")
        self.d_optimizer.load_state_dict(state["d_optimizer"])

    # -- schedule and per-epoch loss parts (batches: the base class's indices; PatchSet draws the patches) --
    def identity_weight(self) -> float:
        return float(self.lcfg.identity_weight) if self.step < int(self.lcfg.identity_steps) else 0.0

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        self.train_set.epoch = epoch
        self.sums.clear()
        self.counts.clear()
        return {"identity_weight": self.identity_weight()}

    def _record(self, **parts: torch.Tensor) -> None:
        for name, value in parts.items():
            self.sums[name] += float(value.detach())
            self.counts[name] += 1

    # -- one step ------------------------------------------------------------------------------------
    def _discriminator_step(self, real: torch.Tensor, source: torch.Tensor, fake: torch.Tensor) -> None:
        """One D update on real patches (real, classified as their source) and the G output (fake)."""
        d = self.model.discriminator
        real_scores, real_logits = d(real)
        fake_scores, _ = d(fake.detach())
        adversarial = lsgan(real_scores, True) + lsgan(fake_scores, False)
        classification = F.cross_entropy(real_logits, source)
        loss = adversarial + float(self.lcfg.classification_weight) * classification
        self.d_optimizer.zero_grad(set_to_none=True)
        if not bool(torch.isfinite(loss)):
            self._handle_nonfinite("discriminator loss")  # raises, or (nonfinite=skip) counts a skipped step
            return
        loss.backward()
        clip = float(self.scfg.grad_clip) if self.scfg.grad_clip else math.inf
        norm = torch.nn.utils.clip_grad_norm_(d.parameters(), clip)
        if not bool(torch.isfinite(norm)):
            self.d_optimizer.zero_grad(set_to_none=True)
            self._handle_nonfinite("discriminator gradient norm")
            return
        self.d_optimizer.step()
        self.d_optimizer.zero_grad(set_to_none=True)
        self._record(d_loss=loss, d_adv=adversarial, d_cls=classification)

    def train_loss(self, batch) -> torch.Tensor:
        real = batch["frames"].to(self.device)
        source, target = batch["source"].to(self.device), batch["target"].to(self.device)
        g = self.model.generator
        fake = g(real, target)
        self._discriminator_step(real, source, fake)
        d = self.model.discriminator
        d.requires_grad_(False)  # the graph below gives D no gradients: the base backward trains G only
        try:
            fake_scores, fake_logits = d(fake)
        finally:
            d.requires_grad_(True)
        adversarial = lsgan(fake_scores, True)
        classification = F.cross_entropy(fake_logits, target)
        cycle = (g(fake, source) - real).abs().mean()
        w = self.lcfg
        loss = (
            float(w.adversarial_weight) * adversarial
            + float(w.classification_weight) * classification
            + float(w.cycle_weight) * cycle
        )
        parts = {"g_adv": adversarial, "g_cls": classification, "g_cyc": cycle}
        weight = self.identity_weight()
        if weight:
            identity = (g(real, source) - real).abs().mean()
            loss = loss + weight * identity
            parts["g_id"] = identity
        if bool(torch.isfinite(loss)):
            self._record(g_loss=loss, **parts)
        return loss

    # -- validation ----------------------------------------------------------------------------------
    def _pairs(self) -> list[tuple[int, int, np.ndarray]]:
        """(source, target, frames) for each held-out utterance; targets cycle through the other speakers."""
        n, out = len(self.speakers), []
        for i, (label, frames) in enumerate(self.valid_set):
            out.append((label, (label + 1 + i % (n - 1)) % n, frames))
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        cycle, hits, real_hits = [], 0, 0
        for source, target, frames in self._pairs():
            x = torch.from_numpy(frames)[None].to(self.device)
            s, t = torch.tensor([source], device=self.device), torch.tensor([target], device=self.device)
            fake = self.model.generator(x, t)
            cycle.append(float((self.model.generator(fake, s) - x).abs().mean()))
            hits += int(self.model.discriminator(fake)[1].argmax(-1).item() == target)
            real_hits += int(self.model.discriminator(x)[1].argmax(-1).item() == source)
        self.model.train()
        count = max(1, len(cycle))
        metrics = {"cycle_l1": float(np.mean(cycle)), "conversion_acc": hits / count, "real_acc": real_hits / count}
        return metrics | {"score": metrics["conversion_acc"] - metrics["cycle_l1"]}

    def after_validation(self, epoch: int) -> None:
        """Source, converted and cycled-back spectra of the first held-out utterance."""
        from denoise_vc.vc.plots import plot_mels

        source, target, frames = self._pairs()[0]
        x = torch.from_numpy(frames)[None].to(self.device)
        fake = self.model.infer(x, torch.tensor([target], device=self.device))
        back = self.model.infer(fake, torch.tensor([source], device=self.device))
        names = self.speakers
        mels = {
            f"source {names[source]}": frames,
            f"to {names[target]}": fake[0].cpu().numpy(),
            f"back to {names[source]}": back[0].cpu().numpy(),
        }
        png = plot_mels(mels, self.run_dir / "plots" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}")
        self.logger.log_file(f"plots/epoch_{epoch:03d}", png)

    # -- history and checkpoints ---------------------------------------------------------------------
    def _end_epoch(self, train_loss: float, scheduled: dict[str, float], epoch_started: float) -> None:
        """The epoch's mean G and D loss parts join the history row (train_loss is the G loss)."""
        scheduled.update({name: total / self.counts[name] for name, total in self.sums.items()})
        super()._end_epoch(train_loss, scheduled, epoch_started)

    def _print_epoch(self, row: dict[str, Any]) -> None:
        parts = [f"epoch {row['epoch']}/{self.scfg.epochs}", f"g_loss {row['train_loss']:.4f}"]
        parts += [f"d_loss {row['d_loss']:.4f}"] if "d_loss" in row else []
        parts += [f"{k} {v:.3f}" for k, v in row.items() if k.startswith("valid_") and isinstance(v, float)]
        parts.append(f"{row['seconds']:.1f}s" + (" *best*" if row["best"] else ""))
        print("  ".join(parts), flush=True)

    def _payload(self, metrics: dict[str, float], with_train_state: bool) -> dict[str, Any]:
        """Adds the speaker names (label order) and each speaker's statistics: convert needs nothing else."""
        payload = super()._payload(metrics, with_train_state)
        payload["meta"]["speakers"] = list(self.speakers)
        payload["meta"]["stats"] = {"speakers": self.stats}
        return payload


def build_stargan_solver(cfg: DictConfig) -> StarGANSolver:
    """A ready-to-fit StarGAN-VC solver: settings and model first (refused before anything is written), then
    the speakers' features, prepared or reused. Sets `data.speakers` to an absolute path and
    `solver.valid_metric` to `solver.gan_metric` unless it already names a GAN metric (the vocoder group sets
    it to the parallel wGMM model's metric, which needs parallel targets)."""
    check_settings(cfg)
    from denoise_vc.models import build_model

    for group, keys in (("loss", ("cycle_weight", "identity_steps")), ("solver", ("d_lr", "betas", "gan_metric"))):
        if any(key not in cfg[group] for key in keys):
            raise ConfigError(f"model=stargan_vc needs vc/{group}@{group}=stargan (its {group} settings are missing)")
    if OmegaConf.select(cfg, "data.front_end.denoiser", default=None) not in (None, ""):
        raise ConfigError("data.front_end applies to parallel models (wgmm); model=stargan_vc trains on clean speech")
    if int(cfg.trainer.workers) > 1 or bool(cfg.trainer.gpu):
        raise ConfigError("model=stargan_vc trains in one process: set trainer.workers=1 trainer.gpu=false")
    if str(cfg.solver.valid_metric) not in GAN_METRICS:
        cfg.solver.valid_metric = str(cfg.solver.gan_metric)
    if str(cfg.solver.valid_metric) not in GAN_METRICS:
        raise ConfigError(f"solver.gan_metric must be one of {', '.join(GAN_METRICS)}, got {cfg.solver.gan_metric!r}")
    for key in ("patch_s", "patches_per_epoch"):
        if not float(cfg.data[key]) > 0:
            raise ConfigError(f"data.{key} must be positive, got {cfg.data[key]!r}")
    if str(cfg.data.speakers) != "builtin":
        cfg.data.speakers = str(Path(str(cfg.data.speakers)).expanduser().resolve())
    fs = FeatureSettings.from_config(cfg.data)
    check_vocoder(fs)
    columns = spectral_columns(fs)
    name, args = model_args(cfg.model)
    args["dims"] = columns.stop - columns.start
    try:  # bad model settings are refused before the corpus is prepared
        build_model(name, **args, n_speakers=2)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    manifest = prepare_speakers(cfg, progress=bool(cfg.solver.progress))
    with torch.random.fork_rng():
        torch.manual_seed(int(cfg.seed))
        model = build_model(name, **args, n_speakers=len(manifest["speakers"]))
    prepared = Path(str(cfg.data.prepared_dir))
    train = load_split(prepared, manifest, "train", fs)
    valid = load_split(prepared, manifest, "valid", fs)
    if not valid:
        raise ConfigError("no held-out utterances: give each speaker at least 3 files or a larger data.split.valid")
    patch = round(float(cfg.data.patch_s) / fs.hop_s)
    train_set = PatchSet(train, len(manifest["speakers"]), patch, int(cfg.seed))
    return StarGANSolver(cfg, model, train_set, valid, manifest, build_logger(cfg.logger, cfg.run_dir))

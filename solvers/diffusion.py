"""Training the flow/bridge denoiser (models/diffusion.py): a loss on the clean estimate at a random step t,
and an exponential moving average (EMA) of the weights that validation and the shipped checkpoints use.

Everything else (data, curricula, validation metrics, checkpoints, resume) is DenoiseSolver's. `last.pth`
carries the raw weights and the EMA in its train state, so a resumed run continues both exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
from omegaconf import DictConfig

from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.errors import ConfigError
from denoise_vc.solvers.denoise import DenoiseSolver
from denoise_vc.tracking import ExperimentLogger


class DiffusionSolver(DenoiseSolver):
    """DenoiseSolver with the flow/bridge training step and an EMA of the weights (`solver.ema_decay`)."""

    def __init__(
        self,
        cfg: DictConfig,
        model: nn.Module,
        loss: nn.Module,
        train_set: TrainSet,
        valid_set: FixedSet,
        logger: ExperimentLogger,
    ) -> None:
        super().__init__(cfg, model, loss, train_set, valid_set, logger)
        if not hasattr(model, "predict_clean"):
            raise ConfigError(f"DiffusionSolver needs a model with predict_clean(), not {type(model).__name__}")
        self.ema_decay = float(self.scfg.ema_decay)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"solver.ema_decay must be in [0, 1), not {self.ema_decay}")
        self.ema = self._copy_weights()

    def _copy_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # -- training step --------------------------------------------------------------------------
    def train_loss(self, batch) -> torch.Tensor:
        """Loss on the clean estimate from x_t = (1 - t) x + t (y + sigma rms(y) eps), t ~ U(0, 1]."""
        noisy, clean = (t.to(self.device, non_blocking=True) for t in batch)
        t = 1.0 - torch.rand(noisy.shape[0], device=self.device)  # (0, 1]: t = 1 is the sampler's first step
        eps = torch.randn_like(noisy)
        tt = t[:, None, None]
        state = (1.0 - tt) * clean + tt * (noisy + self.model.noise_scale(noisy) * eps)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            estimate = self.model.predict_clean(state, noisy, t)
        return self.loss_fn(estimate.float(), clean)

    # -- EMA -----------------------------------------------------------------------------------
    def after_step(self) -> None:
        """ema <- d ema + (1 - d) w for weights and BatchNorm statistics alike (copying the raw statistics would
        pair averaged weights with another network's statistics); d warms up as (1 + step) / (10 + step) so
        short runs are not stale. Integer buffers (batch counters) are copied."""
        decay = min(self.ema_decay, (1.0 + self.step) / (10.0 + self.step))
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                if value.is_floating_point():
                    self.ema[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
                else:
                    self.ema[key].copy_(value)

    @contextmanager
    def ema_weights(self) -> Iterator[None]:
        """Swap the EMA weights in (for validation and plots) and the raw weights back afterwards."""
        raw = self._copy_weights()
        self.model.load_state_dict(self.ema)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)

    def validate(self) -> dict[str, float]:
        with self.ema_weights():
            return super().validate()

    def after_validation(self, epoch: int) -> None:
        with self.ema_weights():
            super().after_validation(epoch)

    def weights(self) -> dict[str, torch.Tensor]:
        """Checkpoints ship the EMA weights; the raw ones travel in last.pth's train state."""
        return {k: v.detach().cpu().clone() for k, v in self.ema.items()}

    def extra_train_state(self) -> dict:
        return {"raw_weights": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}

    def load_extra_train_state(self, state: dict) -> None:
        """The checkpoint's state_dict (already loaded into the model) is the EMA; put the raw weights back."""
        self.ema = self._copy_weights()
        self.model.load_state_dict(state["raw_weights"])

    def _init_from(self) -> None:
        super()._init_from()
        self.ema = self._copy_weights()

"""Training the flow/bridge denoiser (models/diffusion.py): a loss on the clean estimate at a random step t,
and an exponential moving average (EMA) of the weights that validation and the shipped checkpoints use.

Everything else (data, curricula, validation metrics, checkpoints, resume) is DenoiseSolver's; the EMA is the
base Solver's (solvers/ema.py): `last.pth` carries the raw weights and the EMA, so a resumed run continues both.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from omegaconf import DictConfig

from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.errors import ConfigError
from denoise_vc.solvers.denoise import DenoiseSolver
from denoise_vc.tracking import ExperimentLogger


class DiffusionSolver(DenoiseSolver):
    """DenoiseSolver with the flow/bridge training step and an EMA of the weights (`solver.ema_decay`)."""

    default_ema_decay = 0.999  # the sampler needs smooth weights

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
        return self.loss_fn(estimate.float(), self.training_target(clean))  # what validation scores against

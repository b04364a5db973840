"""An exponential moving average (EMA) of a model's weights: smoother than the last step's weights, so
validation, plots and shipped checkpoints use it (`solver.ema_decay`; 0 turns it off).

The diffusion denoiser needs it to sample well; the VC model uses it because its free-running validation MCD
jumps by 0.2-0.3 dB from one epoch to the next on 130 training pairs (NOTE.md, issue 15).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from denoise_vc.errors import ConfigError


def _copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class WeightAverage:
    """ema <- d ema + (1 - d) w after every optimiser step, for weights and BatchNorm statistics alike (copying
    the raw statistics would pair averaged weights with another network's statistics); d warms up as
    (1 + step) / (10 + step) so short runs are not stale. Integer buffers (batch counters) are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"solver.ema_decay must be in [0, 1) (0 = no EMA), not {decay}")
        self.model = model
        self.decay = decay
        self.state = _copy(model)

    def reset(self) -> None:
        """Start again from the model's current weights (after init_from)."""
        self.state = _copy(self.model)

    def update(self, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                if value.is_floating_point():
                    self.state[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
                else:
                    self.state[key].copy_(value)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the model for the block (validation, plots), the raw ones back afterwards."""
        raw = _copy(self.model)
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)

    def restore(self, raw_weights: dict[str, torch.Tensor]) -> None:
        """On resume the checkpoint's state_dict (already in the model) is the average; put the raw weights back."""
        self.state = _copy(self.model)
        self.model.load_state_dict(raw_weights)

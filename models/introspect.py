"""Facts about a model printed at the start of training: parameter count and receptive field."""

from __future__ import annotations

import torch
import torch.nn as nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def receptive_field(model: nn.Module, probe_length: int = 65536) -> int:
    """Samples of input that influence the centre output sample, found by back-propagating from it.

    Runs in eval mode (batch statistics would couple every sample); capped by `probe_length`. The probe is
    seeded noise, not silence: a masking model's output is mask x input, so at zero input only the local
    path would show and a recurrent model would look like a 32 ms filter. cuDNN is off for the probe: its RNN
    kernels refuse backward in eval mode (a GRU model could not start training on a GPU).
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        probe = torch.randn(1, 1, probe_length, generator=torch.Generator().manual_seed(0)) * 0.1
        x = probe.to(device).requires_grad_(True)
        with torch.backends.cudnn.flags(enabled=False):
            y = model(x)
            y[0, 0, probe_length // 2].backward()
        touched = torch.nonzero(x.grad[0, 0].abs() > 0).flatten()
        return int(touched[-1] - touched[0] + 1) if len(touched) else 0
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)

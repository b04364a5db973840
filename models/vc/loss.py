"""Training loss of the wGMM VC model: mel L1 (before and after PostNet), duration/pitch/energy MSE, and the
prosody MDN negative log-likelihood weighted by `beta`, all masked by the model's (repaired) lengths."""

from __future__ import annotations

import torch
import torch.nn as nn

from denoise_vc.models.vc.mdn import mdn_nll


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over positions where `mask` is True (mask broadcasts over trailing dims)."""
    while mask.dim() < values.dim():
        mask = mask[..., None]
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


class VCLoss(nn.Module):
    """`loss(out, batch) -> (total, {name: float})`; names: mel_before, mel_after, duration, pitch, energy,
    mdn_nll. The MDN NLL (segment vectors plus the global vector, per item) runs in float32 even under AMP.

    Targets and masks are read from `out`, where the model put them after repairing the batch (lengths
    clamped, NaN/inf replaced, per-frame features fitted to the mel), so loss and model agree on every frame.
    """

    def __init__(
        self,
        beta: float = 0.02,
        mel_weight: float = 1.0,
        duration_weight: float = 1.0,
        pitch_weight: float = 1.0,
        energy_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.beta = beta
        self.weights = {
            "mel_before": mel_weight,
            "mel_after": mel_weight,
            "duration": duration_weight,
            "pitch": pitch_weight,
            "energy": energy_weight,
        }

    def forward(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.autocast(device_type=out["mel_after"].device.type, enabled=False):
            mel_mask, src_mask, tgt_mask = out["mel_mask"], out["src_mask"], out["tgt_mask"]
            parts = {
                "mel_before": masked_mean((out["mel_before"].float() - out["mel_target"]).abs(), mel_mask),
                "mel_after": masked_mean((out["mel_after"].float() - out["mel_target"]).abs(), mel_mask),
                "duration": masked_mean((out["log_duration"].float() - out["log_duration_target"]).square(), src_mask),
                "pitch": masked_mean((out["pitch"].float() - out["pitch_target"]).square(), tgt_mask),
                "energy": masked_mean((out["energy"].float() - out["energy_target"]).square(), tgt_mask),
            }
            segment_nll = mdn_nll(out["mdn_log_pi"], out["mdn_mu"], out["mdn_sigma"], out["prosody_target"])
            global_nll = mdn_nll(
                out["global_log_pi"], out["global_mu"], out["global_sigma"], out["global_prosody_target"]
            )
            parts["mdn_nll"] = masked_mean(segment_nll, out["segment_mask"]) + global_nll.mean()
            total = sum(self.weights[name] * parts[name] for name in self.weights) + self.beta * parts["mdn_nll"]
        return total, {name: float(value.detach()) for name, value in parts.items()}

"""Two denoisers of one signal, the second used only where the first finds much noise (`denoise-vc route`).

A finetune for the noisiest inputs (ECG: leads buried in muscle artefact) buys the noisy end with a little of the
clean end (NOTE.md, session 27). Routing each inference window by what the all-round model removes there keeps
both: its own output where it removes little, the noisy-end model's where it removes a lot, and a blend between.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from denoise_vc.models.registry import build_model, register


def band_power(x: torch.Tensor, band_cycles: tuple[float, float]) -> torch.Tensor:
    """Mean power of each item's content between two frequencies (cycles per sample), by its spectrum."""
    spectrum = torch.fft.rfft(x, dim=-1)
    freqs = torch.fft.rfftfreq(x.shape[-1], device=x.device)
    inside = (freqs >= band_cycles[0]) & (freqs <= band_cycles[1])
    return (spectrum.abs() ** 2 * inside).sum(dim=(-2, -1)) / x.shape[-1] ** 2


@register("level_routed")
class LevelRouted(nn.Module):
    """`clean` everywhere, `noisy` where `clean` removes much: per item, w = 0 while the removed band power is
    below 10^lo times the output's, 1 above 10^hi, linear in log ratio between; the output is the w-blend."""

    task = "routing"  # made by `denoise-vc route` from two trained checkpoints, never trained as it is

    def __init__(
        self,
        clean: dict[str, Any],
        noisy: dict[str, Any],
        band_cycles: list[float],
        log_ratio: list[float] = (-1.5, -0.5),
    ) -> None:
        super().__init__()
        low, high = (float(v) for v in band_cycles)
        if not 0.0 <= low < high <= 0.5:
            raise ValueError(f"band_cycles must be 0 <= low < high <= 0.5, got {list(band_cycles)}")
        lo, hi = (float(v) for v in log_ratio)
        if not lo < hi:
            raise ValueError(f"log_ratio must be [lo, hi] with lo < hi, got {list(log_ratio)}")
        self.clean = build_model(clean["name"], **dict(clean.get("args") or {}))
        self.noisy = build_model(noisy["name"], **dict(noisy.get("args") or {}))
        self.band_cycles = (low, high)
        self.log_ratio = (lo, hi)

    def weight(self, x: torch.Tensor, cleaned: torch.Tensor) -> torch.Tensor:
        """How much of the noisy-end model each item gets, (B, 1, 1) in [0, 1]."""
        removed = band_power(x - cleaned, self.band_cycles)
        kept = band_power(cleaned, self.band_cycles).clamp_min(1e-20)
        ratio = torch.log10(removed / kept + 1e-12)
        lo, hi = self.log_ratio
        return ((ratio - lo) / (hi - lo)).clamp(0.0, 1.0)[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cleaned = self.clean(x)
        w = self.weight(x, cleaned)
        if not bool((w > 0).any()):  # a clean batch: the second model is not run
            return cleaned
        return (1 - w) * cleaned + w * self.noisy(x)

    def valid_length(self, length: int) -> int:
        """The smallest length >= `length` that both models take."""
        steps = [getattr(m, "valid_length", lambda n: n) for m in (self.clean, self.noisy)]
        while True:
            fitted = steps[1](steps[0](length))
            if fitted == length:
                return length
            length = fitted


def routed_spec(
    clean: dict[str, Any],
    noisy: dict[str, Any],
    band_hz: tuple[float, float],
    rate: int,
    log_ratio: tuple[float, float],
) -> dict[str, Any]:
    """The checkpoint's model entry for a routed pair of model entries at `rate`."""
    low, high = band_hz
    if not 0 <= low < high < rate / 2:
        raise ValueError(f"band {low:g}-{high:g} Hz must rise from 0 Hz or above to below half of {rate} Hz")
    args = {"clean": clean, "noisy": noisy, "band_cycles": [low / rate, high / rate], "log_ratio": list(log_ratio)}
    return {"name": "level_routed", "args": args}

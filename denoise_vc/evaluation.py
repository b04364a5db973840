"""Scoring a denoiser on a fixed set of segments at one or several noise levels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from denoise_vc.data.datasets import FixedSet, level_name
from denoise_vc.metrics import mean_scores, score_pair, si_sdr


@torch.inference_mode()
def denoise_batches(model: nn.Module, noisy: np.ndarray, batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Run the model on (N, T) segments in batches; returns (N, T) float32."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(noisy), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(noisy[start : start + batch_size]))[:, None].to(device)
        out.append(model(x)[:, 0].float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros_like(noisy)


def noisy_at(dataset: FixedSet, gain: float | None, snr_db: float | None) -> np.ndarray:
    view = dataset.at(gain=gain, snr_db=snr_db)
    return np.stack([view[i][0][0].numpy() for i in range(len(view))])


def evaluate_levels(
    model: nn.Module,
    dataset: FixedSet,
    levels: list[tuple[float | None, float | None]],
    full: bool = True,
    peaks: bool = False,
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, dict[str, float | None]]:
    """Mean metrics per level `(gain, snr_db)`; `full=False` computes SI-SDR only (fast, for validation)."""
    results = {}
    for gain, snr_db in levels:
        noisy = noisy_at(dataset, gain, snr_db)
        denoised = denoise_batches(model, noisy, batch_size, device)
        rows = []
        for est, ref, nsy in zip(denoised, dataset.clean, noisy):
            if full:
                rows.append(score_pair(est, ref, nsy, dataset.sample_rate, peaks=peaks))
            else:
                rows.append({"si_sdr": si_sdr(est, ref), "si_sdr_noisy": si_sdr(nsy, ref)})
        results[level_name(gain, snr_db)] = mean_scores(rows)
    return results


COLUMNS = [
    ("si_sdr_noisy", "SI-SDR in"),
    ("si_sdr", "SI-SDR out"),
    ("si_sdr_i", "SI-SDRi"),
    ("pesq", "PESQ"),
    ("stoi", "STOI"),
    ("peak_f1", "peak F1"),
    ("r_amp_error", "R-amp err"),
]


def format_table(results: dict[str, dict[str, float | None]], sample_rate: int) -> str:
    """A plain-text table with one row per level; notes say why a metric is absent."""
    present = [(k, h) for k, h in COLUMNS if any(k in r for r in results.values())]
    header = f"{'level':>8} " + " ".join(f"{h:>10}" for _, h in present)
    lines = [header, "-" * len(header)]
    for level, row in results.items():
        cells = []
        for key, _ in present:
            value = row.get(key)
            cells.append(f"{'n/a':>10}" if value is None else f"{value:>10.3f}")
        lines.append(f"{level:>8} " + " ".join(cells))
    from denoise_vc.metrics import pesq_mode

    mode = pesq_mode(sample_rate)
    if mode:
        lines.append(f"SI-SDR in dB; PESQ {mode} (ITU-T P.862.2 if wb); STOI (not ESTOI); sample rate {sample_rate} Hz")
    else:
        lines.append(
            f"SI-SDR in dB; PESQ omitted: defined at 8 and 16 kHz only, data is {sample_rate} Hz"
            + ("; STOI omitted below 8 kHz" if sample_rate < 8000 else "")
        )
    return "\n".join(lines)

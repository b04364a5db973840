"""Waveform and spectrogram PNGs of clean / noisy / denoised, where a person would rather look than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_example(
    clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, sample_rate: int, path: str | Path, title: str = ""
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signals = {"clean": clean, "noisy": noisy, "denoised": denoised}
    fig, axes = plt.subplots(3, 2, figsize=(12, 7), squeeze=False)
    t = np.arange(len(clean)) / sample_rate
    limit = 1.05 * float(max(np.abs(s).max() for s in signals.values()) + 1e-6)
    nfft = 512 if sample_rate >= 8000 else 128
    for row, (name, x) in enumerate(signals.items()):
        axes[row, 0].plot(t, x, lw=0.5)
        axes[row, 0].set_ylim(-limit, limit)
        axes[row, 0].set_ylabel(name)
        with np.errstate(divide="ignore"):
            axes[row, 1].specgram(x, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

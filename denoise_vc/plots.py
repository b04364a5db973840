"""Waveform and spectrogram PNGs of clean / noisy / denoised, where a person would rather look than read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def figure_file(path: str | Path, rows: int, cols: int, figsize: tuple[float, float], title: str = "") -> Iterator:
    """Axes (rows x cols, always 2-D) of a headless figure that is titled, saved to `path` and closed on exit,
    so training and conversion runs never need a display or leak figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    try:
        yield axes
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)


def plot_example(
    clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, sample_rate: int, path: str | Path, title: str = ""
) -> Path:
    signals = {"clean": clean, "noisy": noisy, "denoised": denoised}
    t = np.arange(len(clean)) / sample_rate
    limit = 1.05 * float(max(np.abs(s).max() for s in signals.values()) + 1e-6)
    nfft = 512 if sample_rate >= 8000 else 128
    with figure_file(path, 3, 2, (12, 7), title) as axes:
        for row, (name, x) in enumerate(signals.items()):
            axes[row, 0].plot(t, x, lw=0.5)
            axes[row, 0].set_ylim(-limit, limit)
            axes[row, 0].set_ylabel(name)
            with np.errstate(divide="ignore"):
                axes[row, 1].specgram(x, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma")
        axes[-1, 0].set_xlabel("time (s)")
        axes[-1, 1].set_xlabel("time (s)")
    return Path(path)

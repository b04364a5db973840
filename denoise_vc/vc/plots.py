"""Mel-spectrogram PNGs (source / target / converted) for VC runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from denoise_vc.plots import figure_file


def plot_mels(mels: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """One row per (frames, n_mels) array, shared colour scale, time on the x axis in frames."""
    low = min(float(m.min()) for m in mels.values() if m.size)
    high = max(float(m.max()) for m in mels.values() if m.size)
    with figure_file(path, len(mels), 1, (10, 2.2 * len(mels)), title) as axes:
        for ax, (name, mel) in zip(axes[:, 0], mels.items()):
            ax.imshow(mel.T, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma")
            ax.set_ylabel(name)
        axes[-1, 0].set_xlabel("frame")
    return Path(path)

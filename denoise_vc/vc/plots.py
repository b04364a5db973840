"""Mel-spectrogram PNGs (source / target / converted) for VC runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_mels(mels: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """One row per (frames, n_mels) array, shared colour scale, time on the x axis in frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(mels), 1, figsize=(10, 2.2 * len(mels)), squeeze=False)
    low = min(float(m.min()) for m in mels.values() if m.size)
    high = max(float(m.max()) for m in mels.values() if m.size)
    for ax, (name, mel) in zip(axes[:, 0], mels.items()):
        ax.imshow(mel.T, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma")
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

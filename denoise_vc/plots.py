"""Waveform and spectrogram PNGs of clean / noisy / denoised, where a person would rather look than read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DYNAMIC_RANGE_DB = 80.0  # the spectrogram colour scale spans the loudest bin of the three signals down to this


@contextmanager
def figure_file(
    path: str | Path,
    rows: int,
    cols: int,
    figsize: tuple[float, float],
    title: str = "",
    layout: str = "tight",
) -> Iterator:
    """Axes (rows x cols, always 2-D) of a headless figure that is titled, saved to `path` and closed on exit,
    so training and conversion runs never need a display or leak figures. `layout="constrained"` leaves room for
    a colour bar shared by several axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    constrained = layout == "constrained"
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False, layout="constrained" if constrained else None)
    try:
        yield axes
        fig.suptitle(title)
        if not constrained:
            fig.tight_layout()
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)


def spectrograms_db(signals: dict[str, np.ndarray], sample_rate: int, nfft: int) -> dict[str, tuple]:
    """Name -> (power in dB, frequencies, times) of each signal, by matplotlib's own specgram (Hann window,
    75 % overlap): the values the panels show."""
    from matplotlib import mlab

    out = {}
    for name, x in signals.items():
        x = np.asarray(x, dtype=np.float64)
        if len(x) < nfft:
            x = np.pad(x, (0, nfft - len(x)))
        power, freqs, times = mlab.specgram(x, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4)
        out[name] = (10.0 * np.log10(np.maximum(power, 1e-20)), freqs, times)
    return out


def draw_example(axes, clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, sample_rate: int) -> list:
    """Waveforms (left column, one amplitude scale) and spectrograms (right column) of clean / noisy / denoised
    on (3, 2) axes. The spectrograms share one dB scale, from the loudest bin of the three down by
    DYNAMIC_RANGE_DB, with one colour bar, so what the model removed shows as what got darker. Returns the three
    spectrogram images."""
    signals = {"clean": clean, "noisy": noisy, "denoised": denoised}
    t = np.arange(len(clean)) / sample_rate
    limit = 1.05 * float(max(np.abs(s).max() for s in signals.values()) + 1e-6)
    nfft = 512 if sample_rate >= 8000 else 128
    specs = spectrograms_db(signals, sample_rate, nfft)
    vmax = max(float(db.max()) for db, _, _ in specs.values())
    vmin = vmax - DYNAMIC_RANGE_DB
    images = []
    for row, (name, x) in enumerate(signals.items()):
        axes[row, 0].plot(t, x, lw=0.5)
        axes[row, 0].set_ylim(-limit, limit)
        axes[row, 0].set_ylabel(name)
        db, freqs, times = specs[name]
        image = axes[row, 1].pcolormesh(times, freqs, db, shading="auto", cmap="magma", vmin=vmin, vmax=vmax)
        images.append(image)
        axes[row, 1].set_ylabel("Hz")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    axes[0, 1].figure.colorbar(images[0], ax=list(axes[:, 1]), label="power (dB, shared scale)")
    return images


def plot_example(
    clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, sample_rate: int, path: str | Path, title: str = ""
) -> Path:
    """`draw_example` saved as a PNG."""
    with figure_file(path, 3, 2, (12, 7), title, layout="constrained") as axes:
        draw_example(axes, clean, noisy, denoised, sample_rate)
    return Path(path)


def plot_beats(
    path: str | Path,
    clean: np.ndarray,
    noisy: np.ndarray,
    denoised: np.ndarray,
    sample_rate: int,
    beats: np.ndarray | None,
    title: str = "",
    seconds: float = 5.0,
) -> Path:
    """An ECG figure: the first `seconds` of clean / noisy / denoised on one amplitude scale (annotated R peaks
    marked), and each signal's average beat (+-0.4 s around the annotated or detected R peaks), the view a
    cardiologist checks for a kept QRS shape and amplitude."""
    from denoise_vc.ecg_metrics import detect_r_peaks

    signals = {"clean": clean, "noisy": noisy, "denoised": denoised}
    colours = {"clean": "black", "noisy": "tab:red", "denoised": "tab:blue"}
    n = min(len(clean), int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    beats = detect_r_peaks(clean, sample_rate) if beats is None else np.asarray(beats)
    half = int(0.4 * sample_rate)
    inner = beats[(beats >= half) & (beats < len(clean) - half)]
    with figure_file(path, 2, 1, (10, 6), title) as axes:
        top, bottom = axes[0, 0], axes[1, 0]
        for name, x in signals.items():
            top.plot(t, x[:n], color=colours[name], lw=0.8 if name != "noisy" else 0.5, label=name)
            if len(inner):
                mean_beat = np.mean([x[b - half : b + half] for b in inner], axis=0)
                bottom.plot(np.arange(-half, half) / sample_rate, mean_beat, color=colours[name], label=name)
        shown = beats[beats < n]
        top.plot(shown / sample_rate, clean[shown], "kv", ms=5, label="R peaks")
        top.set(xlabel="time (s)", ylabel="amplitude (input units)")
        bottom.set(xlabel=f"time from R peak (s), mean of {len(inner)} beats", ylabel="amplitude (input units)")
        top.legend(loc="upper right", fontsize=8)
        bottom.legend(loc="upper right", fontsize=8)
    return Path(path)

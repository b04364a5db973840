"""How small can the R-amplitude error be at all? Oracle floors on ecg_real.py's exact test mixtures.

    python benchmarks/ecg_r_amp_bound.py [--minutes 3] [--checkpoint NAME=PATH ...]

Every blind estimate of a beat's R height (a denoiser, a filter) must also infer the beat's shape. These
estimators are *given* it: each annotated beat's own clean waveform t over b +- w is the template, and only its
scale is estimated from the noisy lead x by least squares, g = <x, t> / <t, t>, on
- `band`: x and t band-passed to 5-30 Hz (where the QRS lives and muscle artefact is weakest);
- `whitened`: x and t through the prediction-error filter of an AR(24) model of the muscle artefact's
  *training* stretch (generalised least squares for stationary coloured noise);
- `local`: the same with an AR(24) model fitted on the true noise of the 4 s around each beat (the noise's
  statistics known per beat as well).
With the template exact, the R height above any baseline scales by g, so |g - 1| is the R-amplitude error each
would score in ecg_real.py. Reference rows, scored exactly as ecg_real.py scores them: the noisy lead, the
0.5-40 Hz band-pass and each `--checkpoint`; and `neighbour median`, the clean R heights replaced by the median
of their +-4 neighbours' (how far a prior "this beat is like the last few" is from each beat's own height).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402
from ecg_real import RATE, SEED, noise_stretch, test_mixes, test_records  # noqa: E402
from real_speech import ModelSystem  # noqa: E402

from denoise_vc.ecg_metrics import MIN_R_AMPLITUDE, band_filter, r_amplitude_error, r_amplitudes  # noqa: E402

LEVELS_DB = (-6.0, 0.0, 6.0)
HALF_WINDOW_S = 0.08
LOCAL_NOISE_S = 2.0


def whitener(noise: np.ndarray, order: int) -> np.ndarray:
    """Coefficients of the AR(order) prediction-error filter of `noise`."""
    return librosa.lpc(noise - noise.mean(), order=order)


def scale_errors(clean: np.ndarray, noisy: np.ndarray, beats: np.ndarray, method: str, ar: np.ndarray) -> list:
    """|g - 1| of each beat whose R wave is not flat, g the least-squares scale of its own clean shape in x."""
    w = int(HALF_WINDOW_S * RATE)
    if method == "band":
        t_all, x_all = band_filter(clean, RATE, (5.0, 30.0)), band_filter(noisy, RATE, (5.0, 30.0))
    elif method == "whitened":
        t_all, x_all = lfilter(ar, [1.0], clean - clean.mean()), lfilter(ar, [1.0], noisy - noisy.mean())
    heights = r_amplitudes(clean, beats, RATE)
    errors = []
    for b, height in zip(beats, heights):
        if abs(height) < MIN_R_AMPLITUDE or b - w < 0 or b + w + 1 > clean.size:
            continue
        if method == "local":  # whiten the 4 s around this beat with its own noise's AR model
            lo, hi = max(0, b - int(LOCAL_NOISE_S * RATE)), b + int(LOCAL_NOISE_S * RATE)
            c, n = clean[lo:hi], noisy[lo:hi]
            local_ar = whitener(n - c, 24)
            keep = slice(b - w - lo, b + w + 1 - lo)
            t, x = lfilter(local_ar, [1.0], c - c.mean())[keep], lfilter(local_ar, [1.0], n - n.mean())[keep]
        else:
            t, x = t_all[b - w : b + w + 1], x_all[b - w : b + w + 1]
        t, x = t - t.mean(), x - x.mean()
        errors.append(abs(float(x @ t) / float(t @ t) - 1.0))
    return errors


def neighbour_median_error(clean: np.ndarray, beats: np.ndarray, k: int = 4) -> float:
    heights = r_amplitudes(clean, beats, RATE)
    keep = np.abs(heights) >= MIN_R_AMPLITUDE
    prior = np.array([np.median(heights[max(0, i - k) : i + k + 1]) for i in range(heights.size)])
    return float(np.mean(np.abs(prior[keep] - heights[keep]) / np.abs(heights[keep])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of each test record")
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH: a model's row beside them")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = test_records(args.minutes)
    noise = noise_stretch("ma")
    ar = whitener(noise_stretch("ma", "train"), 24)
    models = {name: ModelSystem(path) for name, _, path in (c.partition("=") for c in args.checkpoint)}
    print(header("Oracle floors of the R-amplitude error under real muscle artefact", SEED))
    beats = sum(len(b) for _, b in records)
    print(f"# {len(records)} test records x {args.minutes:g} min, {beats} annotated beats; window +-{HALF_WINDOW_S}s")
    table: dict[str, list[str]] = {}
    for snr in LEVELS_DB:
        mixes = test_mixes(records, noise, "ma", snr)  # ecg_real.py's mixtures
        rows = {
            "noisy input": [r_amplitude_error(x, c, a, RATE) for (c, a), x in zip(records, mixes)],
            "band-pass 0.5-40 Hz": [
                r_amplitude_error(band_filter(x, RATE), c, a, RATE) for (c, a), x in zip(records, mixes)
            ],
        }
        for name, model in models.items():
            rows[name] = [
                r_amplitude_error(model(x.astype(np.float32), RATE), c, a, RATE) for (c, a), x in zip(records, mixes)
            ]
        for method in ("band", "whitened", "local"):
            rows[f"oracle shape, {method}"] = [
                float(np.mean(scale_errors(c, x, a, method, ar))) for (c, a), x in zip(records, mixes)
            ]
        rows["neighbour median (clean)"] = [neighbour_median_error(c, a) for c, a in records]
        for name, per_record in rows.items():  # the mean over records, as ecg_real.py reports
            table.setdefault(name, []).append(f"{100 * float(np.mean(per_record)):.1f}")
    print(f"{'R-amp error % (mean over records)':<36}" + "".join(f"{f'ma {s:+.0f} dB':>10}" for s in LEVELS_DB))
    for name, cells in table.items():
        print(f"{name:<36}" + "".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()

"""Voice-conversion metrics on waveforms, after DTW alignment: MCD (dB), F0 RMSE (cents), F0 correlation,
V/UV error.

Two mel-cepstra of the same WORLD analysis (dio + stonemask F0, CheapTrick spectral envelope), c0 (energy)
excluded, each with its own DTW path; MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2), averaged over the path:
- `mcd_sptk`: SPTK mel-cepstrum of order 24 (pysptk.sp2mc, all-pass constant alpha by rate: 0.41 at 16 kHz), as
  VC papers and the VCC baselines report it;
- `mcd`: WORLD's `code_spectral_envelope` to `MCEP_DIMS` coefficients (a DCT of the mel-warped log envelope),
  the figure earlier NOTE.md entries report; comparable between systems measured here only.
F0 RMSE is in cents over path frames voiced in both; the correlation is Pearson's r of F0 in Hz on the same
frames; V/UV error is the share of path frames whose voicing decisions disagree.

Every score averages over the path pairs whose *reference* frame is speech (frame RMS within `SPEECH_DB` of
the reference's loudest frame). Pauses are left out because their cepstra measure the noise floor, not the
voice: a digitally silent reference pause against any residual noise would otherwise dominate the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denoise_vc.vc.features import load_pyworld

MCEP_DIMS = 25
FRAME_PERIOD_MS = 5.0
MCD_CONSTANT = 10.0 / np.log(10.0) * np.sqrt(2.0)
SPEECH_DB = 40.0


SPTK_ORDER = 24


@dataclass(frozen=True)
class WorldFeatures:
    mcep: np.ndarray  # (frames, MCEP_DIMS - 1): c1.. (c0 dropped)
    sptk: np.ndarray  # (frames, SPTK_ORDER): SPTK mel-cepstrum c1..c24
    f0: np.ndarray  # (frames,) Hz, 0 = unvoiced
    speech: np.ndarray  # (frames,) bool: frame RMS within SPEECH_DB of the loudest frame


def world_features(wave: np.ndarray, sample_rate: int, f0_floor: float = 60.0, f0_ceil: float = 500.0):
    """WORLD-coded and SPTK mel-cepstra (c0 dropped) and F0 of a waveform, at 5 ms frames."""
    pyworld = load_pyworld()
    from denoise_vc.vc.world import mcep_alpha, spectrum_to_mcep

    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    if len(x) < int(0.05 * sample_rate):  # WORLD needs a few frames of signal
        x = np.pad(x, (0, int(0.05 * sample_rate) - len(x)))
    f0, times = pyworld.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, sample_rate)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate)
    sp = np.maximum(sp, 1e-16)
    mcep = pyworld.code_spectral_envelope(sp, sample_rate, MCEP_DIMS)
    sptk = spectrum_to_mcep(sp, SPTK_ORDER, mcep_alpha(sample_rate))
    speech = speech_frames(x, sample_rate, len(f0))
    return WorldFeatures(mcep=mcep[:, 1:], sptk=sptk[:, 1:], f0=f0, speech=speech)


def speech_frames(x: np.ndarray, sample_rate: int, frames: int) -> np.ndarray:
    """(frames,) bool on WORLD's 5 ms grid: RMS of the 10 ms around each frame within SPEECH_DB of the max."""
    hop = int(round(FRAME_PERIOD_MS * sample_rate / 1000))
    padded = np.pad(x, (hop, hop + frames * hop))
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * hop)[: frames * hop : hop]
    db = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-20)
    return db > db.max() - SPEECH_DB


def dtw_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(L, 2) DTW path between two (frames, dims) sequences, Euclidean distance, in time order."""
    import librosa

    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean", backtrack=True)
    return np.ascontiguousarray(path[::-1])


def speech_path(a: np.ndarray, b: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """DTW path of `a` against the reference `b`, kept where the reference frame is speech (all of it when
    no frame is)."""
    path = dtw_pairs(a, b)
    return path[speech[path[:, 1]]] if speech.any() else path


def mel_cepstral_distortion(a: np.ndarray, b: np.ndarray, path: np.ndarray) -> float:
    diff = a[path[:, 0]] - b[path[:, 1]]
    return float(np.mean(MCD_CONSTANT * np.sqrt(np.sum(diff**2, axis=1))))


def f0_scores(f0_a: np.ndarray, f0_b: np.ndarray, path: np.ndarray) -> dict[str, float]:
    fa, fb = f0_a[path[:, 0]], f0_b[path[:, 1]]
    va, vb = fa > 0, fb > 0
    both = va & vb
    scores = {"vuv_error": float(np.mean(va != vb)) if len(path) else float("nan")}
    if both.sum() >= 2:
        cents = 1200.0 * np.log2(fa[both] / fb[both])
        scores["f0_rmse_cents"] = float(np.sqrt(np.mean(cents**2)))
        corr = np.corrcoef(fa[both], fb[both])[0, 1]
        scores["f0_corr"] = float(corr) if np.isfinite(corr) else float("nan")
    else:
        scores["f0_rmse_cents"] = float("nan")
        scores["f0_corr"] = float("nan")
    return scores


def score_conversion(estimate: np.ndarray, reference: np.ndarray, sample_rate: int) -> dict[str, float]:
    """MCD (dB, WORLD-coded and SPTK), F0 RMSE (cents), F0 correlation and V/UV error of `estimate` against
    `reference`; the F0 scores follow the SPTK path."""
    return score_features(world_features(estimate, sample_rate), world_features(reference, sample_rate))


def score_features(a: WorldFeatures, b: WorldFeatures) -> dict[str, float]:
    """`score_conversion` on analysed waveforms (`world_features`): a reference scored many times, as in
    per-epoch validation, is analysed once."""

    path = speech_path(a.sptk, b.sptk, b.speech)
    return {
        "mcd": mel_cepstral_distortion(a.mcep, b.mcep, speech_path(a.mcep, b.mcep, b.speech)),
        "mcd_sptk": mel_cepstral_distortion(a.sptk, b.sptk, path),
        **f0_scores(a.f0, b.f0, path),
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Median of each metric over utterances (NaNs, e.g. F0 scores of unvoiced pairs, ignored)."""
    keys = sorted({k for row in rows for k in row})
    out = {}
    for key in keys:
        values = np.asarray([row[key] for row in rows if key in row], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[key] = float(np.median(values)) if len(values) else float("nan")
    return out

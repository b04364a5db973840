"""ECG metrics as clinicians and the ECG literature report them.

- R-peak detection against reference beats (cardiologists' annotations where a record has them, else the
  same detector run on the clean reference): sensitivity, positive predictivity and F1 at the standard 150 ms
  tolerance with one-to-one matching, by wfdb's `compare_annotations` (the WFDB `bxb` rule).
- One library detector for every system: neurokit2's `ecg_peaks` (method "neurokit").
- R-wave amplitude error: each beat's R amplitude above its own local isoelectric level (median of the
  surrounding 0.6 s), relative to the reference's.
- Band SNR: reference power over error power after a zero-phase band-pass to the heart's band (0.5-40 Hz), so
  a constant offset does not count and baseline wander below 0.5 Hz does not either.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.signal import butter, sosfiltfilt

TOLERANCE_S = 0.15
HEART_BAND_HZ = (0.5, 40.0)
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")  # WFDB beat annotation codes (rhythm and quality marks are not)
LOCAL_BASELINE_S = 0.3
MIN_R_AMPLITUDE = 0.05  # beats whose reference R wave is flatter than this (in the signal's units) are skipped


def detect_r_peaks(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """R-peak samples found by neurokit2's detector; empty where it finds none (a flat or too-short signal)."""
    import neurokit2 as nk

    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 * sample_rate or not np.ptp(x) > 0:
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, info = nk.ecg_peaks(x, sampling_rate=int(sample_rate), method="neurokit")
        except (ValueError, IndexError, ZeroDivisionError):
            return np.zeros(0, dtype=np.int64)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def beat_matching(reference: np.ndarray, detected: np.ndarray, sample_rate: int, tolerance_s: float = TOLERANCE_S):
    """(sensitivity, positive predictivity, F1) of `detected` against `reference` beats, matched one to one
    within `tolerance_s`; None for all three when there are no reference beats."""
    from wfdb.processing import compare_annotations

    reference = np.asarray(reference, dtype=np.int64)
    detected = np.asarray(detected, dtype=np.int64)
    if reference.size == 0:
        return None, None, None
    if detected.size == 0:
        return 0.0, 0.0, 0.0
    # wfdb matches pairs strictly closer than window_width samples: one more makes the tolerance inclusive
    comparison = compare_annotations(reference, detected, int(round(tolerance_s * sample_rate)) + 1)
    se, pp = float(comparison.sensitivity), float(comparison.positive_predictivity)
    return se, pp, 0.0 if se + pp == 0 else 2 * se * pp / (se + pp)


def r_peak_scores(estimate: np.ndarray, reference: np.ndarray, sample_rate: int, beats: np.ndarray | None = None):
    """(sensitivity, positive predictivity, F1) of the detector on `estimate` against `beats`, or against the
    detector on `reference` when no annotations are given; None for all three without reference beats."""
    if beats is None:
        beats = detect_r_peaks(reference, sample_rate)
    return beat_matching(beats, detect_r_peaks(estimate, sample_rate), sample_rate)


def r_amplitudes(x: np.ndarray, beats: np.ndarray, sample_rate: int) -> np.ndarray:
    """Each beat's R-wave value above the median of the 0.6 s around it (its local isoelectric level)."""
    x = np.asarray(x, dtype=np.float64)
    half = int(LOCAL_BASELINE_S * sample_rate)
    return np.array([x[b] - np.median(x[max(0, b - half) : b + half + 1]) for b in beats])


def r_amplitude_deviations(
    estimate: np.ndarray, reference: np.ndarray, beats: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Signed (A_est - A_ref) / |A_ref| of each reference beat whose R wave is not flat (R amplitudes read at
    the beat samples); the sign tells a shrunk R wave from an inflated one."""
    beats = np.asarray(beats, dtype=np.int64)
    beats = beats[(beats >= 0) & (beats < len(reference))]
    ref = r_amplitudes(reference, beats, sample_rate)
    keep = np.abs(ref) >= MIN_R_AMPLITUDE
    est = r_amplitudes(estimate, beats[keep], sample_rate)
    return (est - ref[keep]) / np.abs(ref[keep])


def r_amplitude_error(estimate: np.ndarray, reference: np.ndarray, beats: np.ndarray, sample_rate: int):
    """Mean |A_est - A_ref| / |A_ref| over the reference beats; None when every R wave is flat."""
    deviations = r_amplitude_deviations(estimate, reference, beats, sample_rate)
    return float(np.mean(np.abs(deviations))) if deviations.size else None


def band_filter(x: np.ndarray, sample_rate: int, band_hz=HEART_BAND_HZ) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass (high-pass only where the band reaches Nyquist)."""
    low, high = (float(f) for f in band_hz)
    nyquist = sample_rate / 2.0
    if high >= 0.95 * nyquist:
        sos = butter(4, low, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64))


def band_snr(estimate: np.ndarray, reference: np.ndarray, sample_rate: int, band_hz=HEART_BAND_HZ) -> float:
    """10 log10 of reference power over error power, both band-passed to `band_hz`."""
    ref = band_filter(reference, sample_rate, band_hz)
    error = np.asarray(estimate, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    err = band_filter(error, sample_rate, band_hz)
    return float(10 * np.log10((np.sum(ref**2) + 1e-20) / (np.sum(err**2) + 1e-20)))


def ecg_scores(
    estimate: np.ndarray,
    reference: np.ndarray,
    sample_rate: int,
    beats: np.ndarray | None = None,
    band_hz=HEART_BAND_HZ,
) -> dict[str, float | None]:
    """r_se, r_pp, r_f1 (`r_peak_scores`), r_amp_error and band_snr."""
    if beats is None:
        beats = detect_r_peaks(reference, sample_rate)
    se, pp, f1 = r_peak_scores(estimate, reference, sample_rate, beats)
    return {
        "r_se": se,
        "r_pp": pp,
        "r_f1": f1,
        "r_amp_error": r_amplitude_error(estimate, reference, beats, sample_rate),
        "band_snr": band_snr(estimate, reference, sample_rate, band_hz),
    }

"""Evaluation metrics on numpy waveforms: SI-SDR, PESQ (wb at 16 kHz, nb at 8 kHz), STOI and ESTOI, and for
ECG / heartbeat signals the clinical ones of `ecg_metrics` (R-peak Se/PP/F1, R-amplitude error, band SNR)."""

from __future__ import annotations

import warnings

import numpy as np

from denoise_vc.audio import resample


def si_sdr(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-10) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019)."""
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    reference = np.asarray(reference, dtype=np.float64).ravel()
    estimate = estimate - estimate.mean()
    reference = reference - reference.mean()
    scale = np.dot(estimate, reference) / (np.dot(reference, reference) + eps)
    target = scale * reference
    residual = estimate - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(residual, residual) + eps)))


def pesq_mode(sample_rate: int) -> str | None:
    """'wb' at 16 kHz, 'nb' at 8 kHz; PESQ is defined for no other rate."""
    return {16000: "wb", 8000: "nb"}.get(sample_rate)


def pesq_score(estimate: np.ndarray, reference: np.ndarray, sample_rate: int) -> float | None:
    """PESQ (ITU-T P.862) or None where it is undefined (other rates, or no speech detected)."""
    mode = pesq_mode(sample_rate)
    if mode is None:
        return None
    from pesq import NoUtterancesError, PesqError, pesq

    try:
        return float(pesq(sample_rate, reference.astype(np.float64), estimate.astype(np.float64), mode))
    except (NoUtterancesError, PesqError):
        return None


def stoi_score(estimate: np.ndarray, reference: np.ndarray, sample_rate: int, extended: bool = False) -> float | None:
    """STOI (or ESTOI); needs at least 8 kHz, below that it says nothing about intelligibility."""
    if sample_rate < 8000:
        return None
    from pystoi import stoi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stoi(reference, estimate, sample_rate, extended=extended))


def quality_rate(sample_rate: int) -> int | None:
    """The rate PESQ and STOI are computed at: 16 kHz (PESQ wide-band) and 8 kHz (narrow-band) as they are, any
    other rate of at least 8 kHz resampled to 16 kHz (wide-band), nothing below 8 kHz (heartbeat/ECG data)."""
    if sample_rate < 8000:
        return None
    return sample_rate if sample_rate in (8000, 16000) else 16000


def quality_note(rates, extended: bool = False) -> str:
    """One line saying how PESQ and STOI were computed for data at these sample rates (wb or nb, which STOI,
    what was resampled), for the header or foot of a table."""
    rates = sorted({int(r) for r in rates})
    stoi = "STOI and ESTOI" if extended else "STOI (not ESTOI)"
    parts = []
    wide = [r for r in rates if quality_rate(r) == 16000]
    if wide:
        moved = [r for r in wide if r != 16000]
        parts.append(
            f"PESQ wb (ITU-T P.862.2) and {stoi} at 16 kHz"
            + (f" (resampled from {', '.join(map(str, moved))} Hz with soxr HQ)" if moved else "")
        )
    if 8000 in rates:
        parts.append(f"PESQ nb (ITU-T P.862) and {stoi} at 8 kHz")
    low = [r for r in rates if quality_rate(r) is None]
    if low:
        parts.append(
            f"PESQ omitted and STOI omitted: defined for speech at 8 kHz or more, data is {', '.join(map(str, low))} Hz"
        )
    return "; ".join(parts)


def score_pair(
    estimate: np.ndarray,
    reference: np.ndarray,
    noisy: np.ndarray,
    sample_rate: int,
    peaks: bool = False,
    extended: bool = False,
    beats: np.ndarray | None = None,
    band_hz=None,
) -> dict[str, float | None]:
    """Every metric for one segment, of the output (`si_sdr`, `pesq`, ...) and of the noisy input (`si_sdr_noisy`,
    `pesq_noisy`, ...) by the same code, and the improvement (`si_sdr_i`, `pesq_i`, ...). SI-SDR is computed at the
    data's rate, PESQ and STOI (and ESTOI with `extended`) at `quality_rate`; None where a metric is undefined.
    With `peaks` (ECG), the `ecg_metrics` scores too, against `beats` (annotated R peaks of `reference`) when
    given, with the band SNR over `band_hz` (default 0.5-40 Hz)."""
    rate = quality_rate(sample_rate)
    est_q, ref_q, noisy_q = estimate, reference, noisy
    if rate is not None and rate != sample_rate:
        est_q, ref_q, noisy_q = (resample(x, sample_rate, rate) for x in (estimate, reference, noisy))
    out: dict[str, float | None] = {}
    for key in ("si_sdr", "pesq", "stoi", "estoi") if extended else ("si_sdr", "pesq", "stoi"):
        if key == "si_sdr":
            before, after = si_sdr(noisy, reference), si_sdr(estimate, reference)
        elif rate is None:
            before = after = None
        elif key == "pesq":
            before, after = (pesq_score(x, ref_q, rate) for x in (noisy_q, est_q))
        else:
            before, after = (stoi_score(x, ref_q, rate, extended=key == "estoi") for x in (noisy_q, est_q))
        out[f"{key}_noisy"], out[key] = before, after
        out[f"{key}_i"] = None if before is None or after is None else after - before
    if peaks:
        from denoise_vc.ecg_metrics import HEART_BAND_HZ, ecg_scores

        band = tuple(band_hz) if band_hz else HEART_BAND_HZ
        after = ecg_scores(estimate, reference, sample_rate, beats, band)
        before = ecg_scores(noisy, reference, sample_rate, beats, band)
        for key, value in after.items():
            out[f"{key}_noisy"], out[key] = before[key], value
            out[f"{key}_i"] = None if value is None or before[key] is None else value - before[key]
    return out


def mean_scores(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean of each metric over the rows where it is defined (None where it never is)."""
    keys = rows[0].keys() if rows else []
    out = {}
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out

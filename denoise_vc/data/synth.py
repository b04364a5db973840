"""Deterministic generators of speech-like and heartbeat-like clean signals, at any sample rate.

They let the package train, test and benchmark with no downloads: the speech generator is a
source-filter synthesiser (glottal pulses with a moving F0, time-varying formant resonators,
fricative noise bursts and pauses); the heartbeat generator sums Gaussian P-QRS-T waves on a
beat-to-beat interval series with heart-rate variability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

# (F1, F2, F3, F4) in Hz of an adult male vocal tract; formant_scale shifts them per speaker.
VOWEL_FORMANTS = np.array(
    [
        [730, 1090, 2440, 3400],  # a
        [270, 2290, 3010, 3700],  # i
        [300, 870, 2240, 3300],  # u
        [530, 1840, 2480, 3500],  # e
        [570, 840, 2410, 3300],  # o
        [660, 1720, 2410, 3400],  # ae
        [490, 1350, 1690, 3300],  # er
    ],
    dtype=np.float64,
)
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])
FRAME_S = 0.005


@dataclass(frozen=True)
class SpeakerTraits:
    """What makes one generated speaker differ from another."""

    f0_hz: float = 120.0  # mean fundamental frequency
    f0_range_semitones: float = 4.0  # spread of the intonation contour
    formant_scale: float = 1.0  # >1 for a shorter vocal tract (higher formants)
    syllables_per_s: float = 4.5
    pause_prob: float = 0.3  # chance of a pause after a word
    pause_s: tuple[float, float] = (0.15, 0.5)
    breathiness: float = 0.03

    @staticmethod
    def random(rng: np.random.Generator) -> SpeakerTraits:
        female = rng.random() < 0.5
        return SpeakerTraits(
            f0_hz=float(rng.uniform(170, 260) if female else rng.uniform(85, 150)),
            f0_range_semitones=float(rng.uniform(2.0, 6.0)),
            formant_scale=float(rng.uniform(1.1, 1.25) if female else rng.uniform(0.9, 1.05)),
            syllables_per_s=float(rng.uniform(3.5, 6.0)),
            pause_prob=float(rng.uniform(0.15, 0.45)),
            breathiness=float(rng.uniform(0.01, 0.06)),
        )


def _smooth_noise(rng: np.random.Generator, n: int, cutoff_frames: float) -> np.ndarray:
    """Unit-variance low-pass noise of n frames (for slow random contours)."""
    raw = rng.standard_normal(n + 64)
    sos = signal.butter(2, min(0.99, 1.0 / max(cutoff_frames, 1.01)), output="sos")
    out = signal.sosfiltfilt(sos, raw)[32 : 32 + n] if n + 64 > 15 else raw[:n]
    return out / (np.std(out) + 1e-9)


def _plan_frames(n_frames: int, traits: SpeakerTraits, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame targets: voiced/unvoiced amplitude, formants, fricative centre frequency."""
    voiced = np.zeros(n_frames)
    unvoiced = np.zeros(n_frames)
    fric_hz = np.full(n_frames, 4000.0)
    formants = np.zeros((n_frames, 4))
    vowel = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
    frame = int(rng.uniform(0.05, 0.25) / FRAME_S)  # leading silence
    formants[:] = vowel
    while frame < n_frames:
        for _ in range(int(rng.integers(1, 5))):  # syllables in a word
            if frame >= n_frames:
                break
            syl = max(4, int(rng.uniform(0.7, 1.3) / traits.syllables_per_s / FRAME_S))
            if rng.random() < 0.4:  # fricative onset
                n_fric = int(rng.uniform(0.04, 0.12) / FRAME_S)
                end = min(n_frames, frame + n_fric)
                unvoiced[frame:end] = rng.uniform(0.1, 0.35) * np.hanning(end - frame + 2)[1:-1]
                fric_hz[frame:end] = rng.uniform(2500, 6500)
                frame = end
            next_vowel = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
            end = min(n_frames, frame + syl)
            ramp = np.linspace(0.0, 1.0, end - frame)[:, None]
            formants[frame:end] = (1 - ramp) * vowel + ramp * next_vowel
            env = np.sin(np.pi * np.linspace(0.05, 0.95, end - frame)) ** 0.6
            voiced[frame:end] = rng.uniform(0.6, 1.0) * env
            vowel = next_vowel
            frame = end
        formants[frame:] = vowel
        if rng.random() < traits.pause_prob:
            frame += int(rng.uniform(*traits.pause_s) / FRAME_S)
        else:
            frame += int(rng.uniform(0.02, 0.06) / FRAME_S)
    return {"voiced": voiced, "unvoiced": unvoiced, "fric_hz": fric_hz, "formants": formants}


def _glottal_source(f0: np.ndarray, sample_rate: int) -> np.ndarray:
    """Rosenberg glottal flow derivative driven by a per-sample F0 contour."""
    phase = np.cumsum(f0 / sample_rate) % 1.0
    open_rise, open_fall = 0.4, 0.16
    flow = np.where(
        phase < open_rise,
        0.5 * (1 - np.cos(np.pi * phase / open_rise)),
        np.where(
            phase < open_rise + open_fall,
            np.cos(0.5 * np.pi * (phase - open_rise) / open_fall),
            0.0,
        ),
    )
    return np.diff(flow, prepend=0.0) * (sample_rate / np.maximum(f0, 1.0)) * 0.25


def _formant_filter(
    excitation: np.ndarray, formants: np.ndarray, sample_rate: int, block: int, scale: float
) -> np.ndarray:
    """Cascade of 2nd-order resonators whose centre frequencies change every `block` samples."""
    out = np.empty_like(excitation)
    nyquist = sample_rate / 2
    zi = np.zeros((4, 2))
    for i, start in enumerate(range(0, len(excitation), block)):
        freqs = formants[min(i, len(formants) - 1)] * scale
        sos = np.zeros((4, 6))
        for k, (freq, bw) in enumerate(zip(freqs, FORMANT_BANDWIDTHS)):
            if freq >= 0.9 * nyquist:  # formants above the band simply drop out
                sos[k] = [1, 0, 0, 1, 0, 0]
                continue
            r = np.exp(-np.pi * bw / sample_rate)
            c = -2 * r * np.cos(2 * np.pi * freq / sample_rate)
            sos[k] = [1 + c + r * r, 0, 0, 1, c, r * r]
        out[start : start + block], zi = signal.sosfilt(sos, excitation[start : start + block], zi=zi)
    return out


def speech_like(duration_s: float, sample_rate: int, seed: int, traits: SpeakerTraits | None = None) -> np.ndarray:
    """A speech-like utterance: deterministic for (duration, rate, seed, traits); RMS about 0.05."""
    rng = np.random.default_rng(seed)
    traits = traits or SpeakerTraits.random(rng)
    n = max(1, int(round(duration_s * sample_rate)))
    n_frames = int(np.ceil(n / (FRAME_S * sample_rate))) + 1
    plan = _plan_frames(n_frames, traits, rng)
    frame_t = np.arange(n_frames) * FRAME_S
    t = np.arange(n) / sample_rate

    declination = np.linspace(0.08, -0.08, n_frames) * 12  # semitones
    contour = declination / 12 + traits.f0_range_semitones / 12 * 0.5 * _smooth_noise(rng, n_frames, 60)
    f0 = np.interp(t, frame_t, traits.f0_hz * 2.0**contour)
    f0 *= 1 + 0.005 * rng.standard_normal(n)  # jitter

    voiced = np.interp(t, frame_t, plan["voiced"])
    unvoiced = np.interp(t, frame_t, plan["unvoiced"])
    excitation = _glottal_source(f0, sample_rate) * voiced
    excitation += traits.breathiness * voiced * rng.standard_normal(n)
    block = max(1, int(FRAME_S * sample_rate))
    speech = _formant_filter(excitation, plan["formants"], sample_rate, block, traits.formant_scale)

    # Fricatives: band-passed noise around a per-event centre frequency (below Nyquist).
    noise = rng.standard_normal(n) * unvoiced
    centre = np.clip(
        np.median(plan["fric_hz"][plan["unvoiced"] > 0]) if np.any(plan["unvoiced"]) else 4000, None, 0.4 * sample_rate
    )
    low, high = 0.5 * centre, min(1.6 * centre, 0.49 * sample_rate)
    if high > low > 0:
        noise = signal.sosfilt(signal.butter(2, [low, high], btype="band", fs=sample_rate, output="sos"), noise)
    speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-9) + 0.6 * noise / (np.std(noise) + 1e-9) * np.sqrt(
        np.mean(unvoiced**2)
    )
    rms = np.sqrt(np.mean(speech**2)) + 1e-9
    speech = speech * (0.05 / rms)
    return np.clip(speech, -0.99, 0.99).astype(np.float32)


@dataclass(frozen=True)
class Heartbeat:
    """A generated heartbeat-like signal and the sample index of each R peak."""

    signal: np.ndarray
    r_peaks: np.ndarray


# (offset from R in fractions of a 1 s interval, amplitude, width in s) of P, Q, R, S, T.
PQRST = np.array(
    [
        [-0.20, 0.12, 0.025],
        [-0.035, -0.12, 0.010],
        [0.0, 1.00, 0.011],
        [0.035, -0.22, 0.010],
        [0.28, 0.28, 0.045],
    ]
)


def heartbeat_like(duration_s: float, sample_rate: int, seed: int) -> Heartbeat:
    """An ECG-like P-QRS-T trace with heart-rate variability (respiratory sinus arrhythmia + drift)."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(duration_s * sample_rate)))
    mean_rr = 60.0 / rng.uniform(55, 95)
    resp_hz, lf_hz = rng.uniform(0.2, 0.35), rng.uniform(0.05, 0.12)
    beats, t = [], rng.uniform(0.1, mean_rr)
    while t < duration_s + 1.0:
        beats.append(t)
        rr = mean_rr * (1 + 0.04 * np.sin(2 * np.pi * resp_hz * t) + 0.03 * np.sin(2 * np.pi * lf_hz * t))
        t += rr * (1 + 0.02 * rng.standard_normal())
    beats = np.asarray(beats)
    x = np.zeros(n)
    time = np.arange(n) / sample_rate
    for beat in beats:
        rr_scale = np.sqrt(mean_rr)
        for offset, amp, width in PQRST:
            centre = beat + offset * (rr_scale if offset > 0.1 else 1.0)
            lo = max(0, int((centre - 5 * width) * sample_rate))
            hi = min(n, int((centre + 5 * width) * sample_rate) + 1)
            if hi <= lo:
                continue
            a = amp * (1 + 0.05 * rng.standard_normal())
            x[lo:hi] += a * np.exp(-0.5 * ((time[lo:hi] - centre) / width) ** 2)
    r_peaks = np.round(beats * sample_rate).astype(int)
    r_peaks = r_peaks[(r_peaks >= 0) & (r_peaks < n)]
    return Heartbeat(signal=(0.8 * x).astype(np.float32), r_peaks=r_peaks)

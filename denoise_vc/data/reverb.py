"""Reverberation for training mixtures: real room impulse responses from a folder, and shoebox rooms simulated
with pyroomacoustics (image method), in one bank of responses that training items draw from.

Every response is cut at its direct-path onset (so reverberant speech stays aligned with the dry speech) and
scaled so its first `early_ms` carry unit energy. The training target is either the dry speech or the
speech convolved with that early part (direct sound + early reflections, which listeners hear as part of
the voice and which models cannot and should not remove); the late tail is what the model learns to drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from denoise_vc.audio import list_audio_files, load_audio
from denoise_vc.errors import AudioFileError, ConfigError

TARGETS = ("early", "dry")
MAX_RIR_S = 1.5  # tails past this are below audibility in these rooms and only cost convolution time


@dataclass(frozen=True)
class ReverbSettings:
    prob: float = 0.0  # probability that a training item is reverberant
    target: str = "early"  # early | dry
    early_ms: float = 50.0


def reverb_settings(cfg) -> ReverbSettings:
    """Checked settings from the `data.reverb` section (absent or null: no reverberation)."""
    if not cfg:
        return ReverbSettings()
    prob, target, early = float(cfg.get("prob", 0.0)), str(cfg.get("target", "early")), cfg.get("early_ms", 50.0)
    if not 0.0 <= prob <= 1.0:
        raise ConfigError(f"data.reverb.prob must be in [0, 1], got {prob}")
    if target not in TARGETS:
        raise ConfigError(f"data.reverb.target must be one of {', '.join(TARGETS)}, got {target!r}")
    if not (np.isfinite(float(early)) and 0.0 < float(early) <= 500.0):
        raise ConfigError(f"data.reverb.early_ms must be in (0, 500], got {early}")
    return ReverbSettings(prob=prob, target=target, early_ms=float(early))


def normalise_rir(rir: np.ndarray, sample_rate: int, early_ms: float) -> np.ndarray:
    """The response from its direct-path onset (first sample within 10 dB of the peak), unit early energy."""
    rir = np.asarray(rir, dtype=np.float64)
    magnitude = np.abs(rir)
    if magnitude.max() <= 0 or not np.all(np.isfinite(rir)):
        raise ValueError("silent or non-finite impulse response")
    onset = int(np.argmax(magnitude >= 0.316 * magnitude.max()))
    rir = rir[onset : onset + int(MAX_RIR_S * sample_rate)]
    early = rir[: max(1, int(early_ms * sample_rate / 1000))]
    out = (rir / np.sqrt(np.sum(early**2))).astype(np.float32)
    out.setflags(write=False)
    return out


def load_rirs(folder: str, sample_rate: int, early_ms: float) -> list[np.ndarray]:
    """Every impulse response in a folder (wav/flac/..., first channel), resampled and normalised."""
    files = list_audio_files(folder)
    if not files:
        raise AudioFileError(f"{folder}: no impulse responses (.wav/.flac/.ogg) found")
    rirs = []
    for path in files:
        x = load_audio(path, sample_rate, mono=False)[0][0]
        try:
            rirs.append(normalise_rir(x, sample_rate, early_ms))
        except ValueError as exc:
            raise AudioFileError(f"{path}: {exc}") from None
    return rirs


def simulate_rirs(count: int, sample_rate: int, seed: int, early_ms: float) -> list[np.ndarray]:
    """`count` shoebox rooms (3-10 x 3-8 x 2.5-4 m, RT60 0.2-0.8 s, source and microphone at least 0.5 m
    apart and from the walls) by pyroomacoustics' image method; the same seed gives the same rooms."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, 4099])
    rirs = []
    for _ in range(count):
        dims = rng.uniform([3.0, 3.0, 2.5], [10.0, 8.0, 4.0])
        rt60 = rng.uniform(0.2, 0.8)
        absorption, max_order = pra.inverse_sabine(rt60, dims)
        room = pra.ShoeBox(
            dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 60), air_absorption=False
        )
        source = rng.uniform(0.5, dims - 0.5)
        mic = rng.uniform(0.5, dims - 0.5)
        while np.linalg.norm(mic - source) < 0.5:
            mic = rng.uniform(0.5, dims - 0.5)
        room.add_source(source)
        room.add_microphone(mic)
        room.compute_rir()
        rirs.append(normalise_rir(room.rir[0][0], sample_rate, early_ms))
    return rirs


def reverberate(
    clean: np.ndarray, rir: np.ndarray, settings: ReverbSettings, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant speech, training target) of the same length as `clean`; new arrays, inputs untouched."""
    wet = fftconvolve(clean, rir)[: len(clean)].astype(np.float32)
    if settings.target == "dry":
        return wet, np.array(clean, dtype=np.float32, copy=True)
    early = rir[: max(1, int(settings.early_ms * sample_rate / 1000))]
    return wet, fftconvolve(clean, early)[: len(clean)].astype(np.float32)


def build_rir_bank(cfg, sample_rate: int, seed: int) -> tuple[np.ndarray, ...]:
    """The responses training draws from: the real ones in `data.reverb.rir` plus `data.reverb.simulate`
    simulated rooms. Empty when reverberation is off."""
    settings = reverb_settings(cfg)
    if not cfg or settings.prob <= 0.0:
        return ()
    count = int(cfg.get("simulate") or 0)
    if count < 0:
        raise ConfigError(f"data.reverb.simulate must be >= 0 rooms, got {count}")
    rirs = load_rirs(str(cfg["rir"]), sample_rate, settings.early_ms) if cfg.get("rir") else []
    rirs += simulate_rirs(count, sample_rate, seed, settings.early_ms) if count else []
    if not rirs:
        raise ConfigError("data.reverb.prob > 0 needs data.reverb.rir=FOLDER or data.reverb.simulate=N rooms")
    return tuple(rirs)

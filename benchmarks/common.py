"""Shared pieces of the benchmark scripts: the machine header, peers, and real-data test mixtures."""

from __future__ import annotations

import ctypes
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from denoise_vc.audio import list_audio_files, load_audio, resample

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def header(title: str, seed: int) -> str:
    import denoise_vc

    cpu = platform.processor() or platform.machine()
    return (
        f"# {title}\n# {time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} CPUs ({cpu}) · "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads · denoise-vc {denoise_vc.__version__}"
        f" · seed {seed}"
    )


# -- peers --------------------------------------------------------------------------------------------
def spectral_gating(noisy: np.ndarray, rate: int) -> np.ndarray | None:
    """noisereduce's non-stationary spectral gating (None where the package is not installed)."""
    try:
        import noisereduce
    except ImportError:
        return None
    return noisereduce.reduce_noise(y=noisy, sr=rate, stationary=False).astype(np.float32)


RNNOISE_RATE, RNNOISE_FRAME, RNNOISE_DELAY = 48000, 480, 960  # two 10 ms frames of look-ahead delay


def rnnoise(noisy: np.ndarray, rate: int) -> np.ndarray | None:
    """RNNoise through pyrnnoise's bundled library, at 48 kHz, delay compensated (None if not installed)."""
    try:
        from pyrnnoise.rnnoise import lib
    except (ImportError, OSError):
        return None
    x = resample(noisy, rate, RNNOISE_RATE) * 32768.0
    n = len(x)
    padded = np.concatenate([x, np.zeros(RNNOISE_DELAY + RNNOISE_FRAME, np.float32)]).astype(np.float32)
    out = np.empty_like(padded)
    state = lib.rnnoise_create(None)
    try:
        for start in range(0, len(padded) - RNNOISE_FRAME + 1, RNNOISE_FRAME):
            frame = np.ascontiguousarray(padded[start : start + RNNOISE_FRAME])
            result = np.empty_like(frame)
            lib.rnnoise_process_frame(
                state,
                result.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            )
            out[start : start + RNNOISE_FRAME] = result
    finally:
        lib.rnnoise_destroy(state)
    aligned = out[RNNOISE_DELAY : RNNOISE_DELAY + n] / 32768.0
    return resample(aligned, RNNOISE_RATE, rate)[: len(noisy)]


# -- real mixtures --------------------------------------------------------------------------------------
def vctk_noise_mixtures(rate: int, count: int, seed: int, speakers=("p228",)):
    """(name, clean, noise) triples: real VCTK utterances with real noise recordings cut at random offsets.

    The noise is scaled to the utterance's RMS, so `clean + g * noise` has SNR -20 log10(g) dB.
    """
    speech = [f for f in list_audio_files(SHARED_DATA / "speech" / "vctk") if f.parent.name in speakers]
    noises = [load_audio(f, rate)[0][0] for f in list_audio_files(SHARED_DATA / "noise")]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        path = speech[i % len(speech)]
        clean = load_audio(path, rate)[0][0]
        k = int(rng.integers(len(noises)))
        noise = noises[k]
        if len(noise) < len(clean):
            noise = np.tile(noise, len(clean) // len(noise) + 1)
        start = int(rng.integers(0, len(noise) - len(clean) + 1))
        segment = noise[start : start + len(clean)].astype(np.float32)
        segment *= np.sqrt(np.mean(clean**2)) / (np.sqrt(np.mean(segment**2)) + 1e-12)
        out.append((f"{path.stem}+noise{k}", clean, segment))
    return out


def babble_pair(rate: int):
    """The real 0 dB babble pair: (clean, noisy)."""
    clean = load_audio(SHARED_DATA / "pairs" / "speech_clean.wav", rate)[0][0]
    noisy = load_audio(SHARED_DATA / "pairs" / "speech_babble_0dB_noisy.wav", rate)[0][0]
    n = min(len(clean), len(noisy))
    return clean[:n], noisy[:n]


def median_seconds(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))

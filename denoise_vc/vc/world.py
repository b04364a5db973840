"""WORLD analysis and synthesis on the VC frame grid: the features of `vocoder=world`.

One frame vector per hop (the same grid as the log-mel features):
    [ mel-cepstrum c0..c_order (SPTK's sp2mc of the CheapTrick envelope, all-pass constant alpha by
      rate) | coded band aperiodicity (pyworld.code_aperiodicity; 1 band at 16 kHz, 3 at 22.05 kHz) |
      log-F0 interpolated over unvoiced frames | voiced flag (1/0) ]
Synthesis inverts each part: mc2sp, decode_aperiodicity, F0 = exp(log-F0) where the flag is above 0.5, then
`pyworld.synthesize`. No weights, offline, about 50x faster than real time on one CPU core.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from denoise_vc.vc.features import FeatureSettings, interpolate_log_f0, load_pyworld

MIN_F0_HZ = 20.0  # a predicted voiced frame never asks WORLD for a lower F0


@lru_cache(maxsize=16)
def mcep_alpha(sample_rate: int) -> float:
    """The all-pass constant that makes the mel-cepstrum's frequency warping follow the mel scale."""
    import pysptk

    return float(pysptk.util.mcepalpha(sample_rate))


@lru_cache(maxsize=16)
def _freqt_matrix(in_length: int, order: int, alpha: float) -> np.ndarray:
    """(in_length, order + 1) matrix of SPTK's frequency warping `freqt`, which is linear in its input: one
    matrix product then warps every frame at once (pysptk applies it frame by frame through Python)."""
    import pysptk

    eye = np.eye(in_length)
    return np.stack([pysptk.freqt(eye[i], order, alpha) for i in range(in_length)])


def spectrum_to_mcep(power: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """(frames, order + 1) mel-cepstra of (frames, fft/2 + 1) power spectra: pysptk.sp2mc for all frames."""
    cepstrum = np.fft.irfft(np.log(power), axis=-1)
    cepstrum[:, 0] /= 2.0
    return cepstrum @ _freqt_matrix(cepstrum.shape[1], order, alpha)


def mcep_to_spectrum(mcep: np.ndarray, alpha: float, fft_size: int) -> np.ndarray:
    """(frames, fft/2 + 1) power spectra of (frames, order + 1) mel-cepstra: pysptk.mc2sp for all frames."""
    half = fft_size // 2
    cepstrum = mcep @ _freqt_matrix(mcep.shape[1], half, -alpha)
    cepstrum[:, 0] *= 2.0
    symmetric = np.zeros((len(mcep), fft_size))
    symmetric[:, : half + 1] = cepstrum
    symmetric[:, half + 1 :] = cepstrum[:, 1:half][:, ::-1]
    return np.exp(np.fft.rfft(symmetric, axis=-1).real)


def fft_size(sample_rate: int, f0_floor: float) -> int:
    pyworld = load_pyworld()
    return int(pyworld.get_cheaptrick_fft_size(sample_rate, f0_floor))


@dataclass(frozen=True)
class WorldLayout:
    """Where each part sits in the frame vector, and what synthesis needs to undo it."""

    order: int
    bap_dims: int
    alpha: float
    fft_size: int

    @property
    def mcep(self) -> slice:
        return slice(0, self.order + 1)

    @property
    def bap(self) -> slice:
        return slice(self.order + 1, self.order + 1 + self.bap_dims)

    @property
    def lf0(self) -> int:
        return self.order + 1 + self.bap_dims

    @property
    def voiced(self) -> int:
        return self.lf0 + 1

    @property
    def dims(self) -> int:
        return self.voiced + 1

    @staticmethod
    def for_settings(fs: FeatureSettings, order: int) -> WorldLayout:
        pyworld = load_pyworld()
        bap_dims = int(pyworld.get_num_aperiodicities(fs.sample_rate))
        return WorldLayout(order, bap_dims, mcep_alpha(fs.sample_rate), fft_size(fs.sample_rate, fs.f0_floor))


def analyse(wave: np.ndarray, fs: FeatureSettings, layout: WorldLayout, frames: int) -> np.ndarray:
    """(frames, layout.dims) WORLD frame vectors of a cleaned waveform, cut or edge-padded to `frames`."""
    pyworld = load_pyworld()
    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    period_ms = 1000.0 * fs.hop_s
    f0, times = pyworld.dio(x, fs.sample_rate, f0_floor=fs.f0_floor, f0_ceil=fs.f0_ceil, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, times, fs.sample_rate)
    with ThreadPoolExecutor(2) as pool:  # pyworld releases the GIL: envelope and aperiodicity side by side
        envelope = pool.submit(
            pyworld.cheaptrick, x, f0, times, fs.sample_rate, f0_floor=fs.f0_floor, fft_size=layout.fft_size
        )
        ap = pyworld.d4c(x, f0, times, fs.sample_rate, fft_size=layout.fft_size)
        sp = envelope.result()
    mcep = spectrum_to_mcep(np.maximum(sp, 1e-16), layout.order, layout.alpha)
    bap = pyworld.code_aperiodicity(ap, fs.sample_rate)
    lf0, voiced = interpolate_log_f0(f0)
    if np.isnan(lf0).all():  # no voiced frame at all: any finite value, the flag says unvoiced
        lf0 = np.full(len(f0), np.log(fs.f0_floor), dtype=np.float32)
    vectors = np.concatenate([mcep, bap, lf0[:, None], voiced[:, None].astype(np.float64)], axis=1)
    if len(vectors) >= frames:
        return vectors[:frames].astype(np.float32)
    return np.pad(vectors, ((0, frames - len(vectors)), (0, 0)), mode="edge").astype(np.float32)


def f0_of(vectors: np.ndarray, layout: WorldLayout) -> np.ndarray:
    """(frames,) F0 in Hz (0 = unvoiced) that a frame-vector sequence asks for."""
    voiced = vectors[:, layout.voiced] > 0.5
    lf0 = np.nan_to_num(vectors[:, layout.lf0].astype(np.float64), nan=0.0).clip(max=np.log(2000.0))
    return np.where(voiced, np.maximum(np.exp(lf0), MIN_F0_HZ), 0.0)


class World:
    """The `world` vocoder: de-normalised WORLD frame vectors -> float32 waveform at `sample_rate`."""

    def __init__(self, fs: FeatureSettings, layout: WorldLayout) -> None:
        self.sample_rate = fs.sample_rate
        self.period_ms = 1000.0 * fs.hop_s
        self.layout = layout

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        pyworld = load_pyworld()
        lay = self.layout
        v = np.nan_to_num(np.asarray(vectors, dtype=np.float64))
        sp = mcep_to_spectrum(v[:, lay.mcep], lay.alpha, lay.fft_size)
        ap = pyworld.decode_aperiodicity(np.ascontiguousarray(v[:, lay.bap]), self.sample_rate, lay.fft_size)
        ap = np.clip(ap, 0.0, 1.0)
        wave = pyworld.synthesize(f0_of(v, lay), sp, ap, self.sample_rate, self.period_ms)
        return wave.astype(np.float32)

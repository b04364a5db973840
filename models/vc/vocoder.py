"""Vocoder interface (log-mel frames -> waveform) and the offline default: Griffin-Lim via librosa.

Log-mel convention shared with the data pipeline (both sides must agree):
    log_mel = log(max(librosa.feature.melspectrogram(y, sr, n_fft, hop_length, win_length, power=1.0,
                                                     n_mels, fmin, fmax), 1e-5))
i.e. the natural log of the mel MAGNITUDE spectrogram (power=1, librosa's default Slaney filters, centred
Hann frames), floored at 1e-5, shaped (frames, n_mels). A vocoder takes this DE-normalised log-mel; undoing
the dataset's mean/std normalisation is the caller's job. The forward transform is the data pipeline's one
mel function, `denoise_vc.vc.features.log_mel` (models do not import the pipeline).
"""

from __future__ import annotations

from typing import Protocol

import librosa
import numpy as np

LOG_FLOOR = 1e-5


class Vocoder(Protocol):
    """Anything that turns a (frames, n_mels) de-normalised log-mel into a float32 waveform at `sample_rate`."""

    sample_rate: int

    def __call__(self, log_mel: np.ndarray) -> np.ndarray: ...


class GriffinLim:
    """Griffin-Lim phase reconstruction from the mel magnitude: no training, no weights, audibly phasey."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        win_length: int | None = None,
        n_iter: int = 32,
    ) -> None:
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_iter = n_iter
        self.n_mels = n_mels
        self.mel = {"sr": sample_rate, "n_fft": n_fft, "fmin": fmin, "fmax": fmax}

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, n_mels) log-mel magnitude -> float32 waveform of about frames * hop_length samples.

        n_mels is read from the input's shape (librosa's inverse takes it from there).
        """
        mel = np.exp(np.nan_to_num(np.asarray(log_mel, dtype=np.float64), nan=np.log(LOG_FLOOR)).clip(max=20.0)).T
        wave = librosa.feature.inverse.mel_to_audio(
            mel,
            hop_length=self.hop_length,
            win_length=self.win_length,
            power=1.0,
            n_iter=self.n_iter,
            **self.mel,
        )
        return wave.astype(np.float32)

"""Property-based tests: any rate, channel count, length and format loads, resamples and streams correctly."""

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from denoise_vc.audio import load_audio, resample
from denoise_vc.inference import WindowPlan, enhance_file

RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000]
FORMATS = [("wav", "PCM_16", 1 / 32768), ("wav", "FLOAT", 1e-7), ("flac", "PCM_24", 1 / 2**23)]


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(1, 4000),
    rate=st.sampled_from(RATES),
    channels=st.integers(1, 4),
    fmt=st.sampled_from(FORMATS),
    peak=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_any_file_loads_as_mono_float32_in_range(length, rate, channels, fmt, peak, seed):
    suffix, subtype, step = fmt
    x = np.random.default_rng(seed).uniform(-peak, peak, (length, channels)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"a.{suffix}"
        sf.write(path, x, rate, subtype=subtype)
        y, sr = load_audio(path)
        resampled, sr16 = load_audio(path, 16000)
    assert sr == rate and y.dtype == np.float32 and y.shape == (1, length)
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    np.testing.assert_allclose(y[0], x.mean(axis=1), atol=2 * step)  # the mono mix is the channel mean
    assert sr16 == 16000 and resampled.dtype == np.float32 and resampled.shape[0] == 1
    assert abs(resampled.shape[1] - length * 16000 / rate) <= 1


@settings(max_examples=25, deadline=None)
@given(
    src=st.sampled_from(RATES),
    dst=st.sampled_from(RATES),
    cycles=st.floats(0.02, 0.4),
    seconds=st.floats(0.25, 1.0),
)
def test_resampling_keeps_length_and_frequency(src, dst, cycles, seconds):
    freq = cycles * min(src, dst)  # below both Nyquist limits (0.4 of the lower rate)
    n = int(seconds * src)
    x = np.sin(2 * np.pi * freq * np.arange(n) / src).astype(np.float32)
    y = resample(x, src, dst)
    assert y.dtype == np.float32 and abs(len(y) - n * dst / src) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * dst / len(y) - freq) <= 1.5 * dst / len(y)  # within 1.5 bins


class Identity(nn.Module):
    def forward(self, x):
        return x


@settings(max_examples=15, deadline=None)
@given(
    length=st.integers(1, 30000),
    rate=st.sampled_from(RATES),
    channels=st.integers(1, 3),
    block_s=st.floats(0.01, 1.0),
)
def test_streamed_files_keep_length_rate_and_channels(length, rate, channels, block_s):
    x = (0.3 * np.random.default_rng(length).standard_normal((length, channels))).clip(-1, 1).astype(np.float32)
    plan = WindowPlan.from_seconds(0.25, 0.02, 0.01, 16000)
    with tempfile.TemporaryDirectory() as tmp:
        sf.write(Path(tmp) / "in.wav", x, rate, subtype="FLOAT")
        out = enhance_file(Identity(), 16000, Path(tmp) / "in.wav", Path(tmp) / "out.wav", plan, block_s=block_s)
        y, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == rate and y.shape == x.shape and np.all(np.isfinite(y))
    if rate == 16000:  # no resampling: the identity model gives the input back through the overlap-add
        np.testing.assert_allclose(y, x, atol=1e-5)

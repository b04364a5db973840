import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from denoise_vc.errors import AudioFileError
from denoise_vc.inference import StreamingEnhancer, WindowPlan, enhance_array, enhance_file


class LinearFIR(torch.nn.Module):
    """A linear, time-invariant test model whose receptive field (9) is inside the context."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 1, 9, padding=4, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(-1, 1, 9).view(1, 1, 9))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


def whole(model, x):
    with torch.no_grad():
        return model.conv(torch.from_numpy(x)[:, None])[:, 0].numpy()


def test_window_weights_sum_to_one():
    plan = WindowPlan(1000, 50, 30)
    total = np.zeros(plan.window + 10 * plan.hop)
    for k in range(11):
        total[k * plan.hop : k * plan.hop + plan.window] += plan.weights()
    assert np.allclose(total[plan.lead : 10 * plan.hop], 1.0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(1, 6000), block=st.integers(1, 2500), channels=st.integers(1, 3))
def test_chunked_output_equals_whole_output_for_a_linear_model(length, block, channels):
    model = LinearFIR()
    plan = WindowPlan(800, 40, 25)
    x = np.random.default_rng(length).standard_normal((channels, length)).astype(np.float32)
    streamer = StreamingEnhancer(model, plan, channels, batch_windows=2)
    parts = [streamer.push(x[:, i : i + block]) for i in range(0, length, block)] + [streamer.finish()]
    y = np.concatenate(parts, axis=1)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, whole(model, x), atol=1e-5)


def test_crossfade_hides_a_window_boundary_jump():
    """A model that adds a different offset per call: the cross-fade must turn steps into ramps."""

    class Offset(torch.nn.Module):
        calls = 0

        def forward(self, x):
            Offset.calls += 1
            return x * 0 + torch.arange(x.shape[0], dtype=x.dtype).view(-1, 1, 1) + Offset.calls

    plan = WindowPlan(1000, 50, 100)
    y = enhance_array(Offset(), np.zeros(5000, np.float32), plan, batch_windows=1)
    assert np.abs(np.diff(y)).max() <= 1.0 / plan.crossfade + 1e-6


def test_window_too_short_for_its_context_is_refused():
    from denoise_vc.errors import ConfigError

    with pytest.raises(ConfigError, match="too short"):
        WindowPlan.from_seconds(0.3, 0.2, 0.1, 1000)


@pytest.mark.parametrize(
    "rate,channels,seconds", [(8000, 2, 1.3), (22050, 1, 0.7), (48000, 2, 2.1), (16000, 1, 0.0001)]
)
def test_files_keep_rate_channels_and_length(tmp_path, rate, channels, seconds):
    n = max(1, int(rate * seconds))
    x = (0.1 * np.random.default_rng(0).standard_normal((n, channels))).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, rate, subtype="PCM_16")
    model = LinearFIR()
    out = enhance_file(
        model,
        16000,
        tmp_path / "in.wav",
        tmp_path / "out" / "in.wav",
        WindowPlan.from_seconds(0.5, 0.05, 0.02, 16000),
        block_s=0.3,
    )
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, n)
    assert info.subtype == "PCM_16"


def test_resampling_round_trip_with_an_identity_model_preserves_the_signal(tmp_path):
    rate = 44100
    t = np.arange(rate * 2) / rate
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", x, rate, subtype="FLOAT")
    identity = torch.nn.Identity()
    enhance_file(
        identity,
        16000,
        tmp_path / "tone.wav",
        tmp_path / "o.wav",
        WindowPlan.from_seconds(0.5, 0.05, 0.02, 16000),
        block_s=0.37,
    )
    y, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    assert np.abs(y[2000:-2000] - x[2000:-2000]).max() < 1e-2


def test_input_is_never_overwritten_and_no_partial_output_is_left(tmp_path):
    x = np.zeros(1000, np.float32)
    x[500] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    before = (tmp_path / "nan.wav").read_bytes()
    with pytest.raises(AudioFileError, match="NaN"):
        enhance_file(LinearFIR(), 16000, tmp_path / "nan.wav", tmp_path / "out" / "nan.wav", WindowPlan(800, 40, 25))
    assert list((tmp_path / "out").iterdir()) == []
    sf.write(tmp_path / "ok.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(AudioFileError, match="overwrite the input"):
        enhance_file(LinearFIR(), 16000, tmp_path / "ok.wav", tmp_path / "ok.wav", WindowPlan(800, 40, 25))
    assert (tmp_path / "nan.wav").read_bytes() == before

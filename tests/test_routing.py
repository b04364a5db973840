"""`denoise-vc route`: the all-round model where it removes little, the noisy-end finetune where it removes much."""

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
from bad_inputs import tiny_checkpoint

from denoise_vc.checkpoint import load_model
from denoise_vc.cli import main
from denoise_vc.models.routed import LevelRouted

RATE = 360


class LowPass(nn.Module):
    """Keeps what lies below `cycles` (a stand-in for a denoiser that removes high-band noise)."""

    def __init__(self, cycles: float) -> None:
        super().__init__()
        self.cycles = cycles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(x, dim=-1)
        spectrum[..., torch.fft.rfftfreq(x.shape[-1]) > self.cycles] = 0
        return torch.fft.irfft(spectrum, n=x.shape[-1], dim=-1)


class Halve(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x


def beats(seconds: float = 20.0) -> torch.Tensor:
    """An ECG-like pulse train at 72 bpm (20 ms Gaussian R waves) as (1, 1, T)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.exp(-0.5 * ((t - c) / 0.02) ** 2) for c in np.arange(0.4, seconds, 60 / 72))
    return torch.tensor(x, dtype=torch.float32)[None, None]


def test_each_window_gets_the_all_round_model_the_finetune_or_their_blend_by_what_it_removes():
    spec = {"name": "wave_unet", "args": {"levels": 2, "channels_interval": 4}}
    routed = LevelRouted(spec, spec, band_cycles=[5 / RATE, 40 / RATE])
    routed.clean, routed.noisy = LowPass(20 / RATE), Halve()
    clean = beats()
    rng = np.random.default_rng(0)
    hiss = torch.tensor(rng.standard_normal(clean.shape[-1]), dtype=torch.float32)[None, None]
    hiss = hiss - LowPass(25 / RATE)(hiss)  # noise only above 25 Hz: the stand-in removes (most of) it
    x = torch.cat([clean, clean + 0.15 * hiss, clean + 1.0 * hiss])  # w: 0, between, 1
    w = routed.weight(x, routed.clean(x)).flatten()
    assert w[0] == 0.0 and w[2] == 1.0 and 0.0 < w[1] < 1.0  # little, some, much removed in 5-40 Hz
    out = routed(x)
    assert torch.equal(out[0], routed.clean(x)[0])  # a clean lead: the all-round model's output, bit for bit
    assert torch.allclose(out[2], 0.5 * x[2])  # a buried lead: the finetune's
    assert torch.allclose(out[1], (1 - w[1]) * routed.clean(x)[1] + w[1] * 0.5 * x[1], atol=1e-6)


def test_route_writes_one_checkpoint_that_denoise_runs_and_refuses_what_cannot_pair(tmp_path, capsys):
    first = tiny_checkpoint(tmp_path / "a.pth")
    other_rate = tiny_checkpoint(tmp_path / "b.pth", ["data.sample_rate=8000"])
    pair = tmp_path / "pair.pth"
    assert main(["route", "--clean", str(first), "--noisy", str(first), "-o", str(pair)]) == 0
    model, ckpt = load_model(pair)
    assert isinstance(model, LevelRouted) and ckpt["meta"]["sample_rate"] == 16000
    assert ckpt["config"] == load_model(first)[1]["config"]  # the all-round model's windows and rate
    audio = tmp_path / "in.wav"
    sf.write(audio, 0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32), 16000)
    assert main(["denoise", str(audio), "-o", str(tmp_path / "single.wav"), "--checkpoint", str(first)]) == 0
    assert main(["denoise", str(audio), "-o", str(tmp_path / "paired.wav"), "--checkpoint", str(pair)]) == 0
    single, paired = sf.read(tmp_path / "single.wav")[0], sf.read(tmp_path / "paired.wav")[0]
    np.testing.assert_allclose(paired, single, atol=1e-5)  # a model paired with itself is that model
    capsys.readouterr()

    before = pair.read_bytes()
    refusals = [
        (["--clean", str(first), "--noisy", str(first), "-o", str(pair)], "already exists"),
        (["--clean", str(first), "--noisy", str(other_rate), "-o", str(tmp_path / "c.pth")], "trained at 8000 Hz"),
        (["--clean", str(pair), "--noisy", str(first), "-o", str(tmp_path / "d.pth")], "already a routed pair"),
        (["--clean", str(first), "--noisy", str(first), "-o", str(tmp_path / "e.pth"), "--band-hz", "5", "9000"],
         "below half of 16000 Hz"),
        (["--clean", str(first), "--noisy", str(first), "-o", str(tmp_path / "f.pth"), "--log-ratio", "0", "-1"],
         "lo < hi"),
    ]  # fmt: skip
    for argv, says in refusals:
        assert main(["route", *argv]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert pair.read_bytes() == before  # nothing overwritten
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["a.pth", "b.pth", "pair.pth"]  # nor left behind

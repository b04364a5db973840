"""The compact STFT-domain denoiser (`subband_crn`) and the Demucs waveform baseline (`demucs`): any length at
any rate, causality, TorchScript, size, and a short learning run."""

import numpy as np
import pytest
import torch

from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.models import build_model
from denoise_vc.models.introspect import count_parameters
from denoise_vc.models.spectral import band_matrices, stft_sizes
from denoise_vc.solvers.factory import build_denoiser, build_solver

NAMES = ("subband_crn", "demucs")


def default_model(name: str, rate: int = 16000, *overrides: str) -> torch.nn.Module:
    """The default-config model as training builds it (the data's rate reaches models that take one)."""
    cfg = compose_config([f"model={name}", *overrides])
    return build_denoiser(cfg.model, 0, rate).eval()


def lookahead(model: torch.nn.Module) -> int:
    """Samples a causal model may look ahead: one STFT window, or Demucs' stated bound (595 at depth 4)."""
    return model.n_fft if hasattr(model, "n_fft") else model.lookahead


def varied(model: torch.nn.Module) -> torch.nn.Module:
    """A fresh subband_crn is nearly a pass-through (its mask starts near a constant), which proves little: give its
    mask layer random weights so the output depends strongly on the input. Demucs starts random anyway."""
    if hasattr(model, "n_fft"):
        torch.manual_seed(1)
        with torch.no_grad():
            model.decoder[-1].conv.weight.normal_(0.0, 0.5)
            model.decoder[-1].conv.bias.zero_()
    return model


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rate", [16000, 360])
def test_any_length_at_any_rate_comes_back_the_same_length(name, causal, rate):
    model = default_model(name, rate, f"model.causal={str(causal).lower()}")
    for length in (1, 777, 16000 + 3 if rate == 16000 else 3600 + 3):  # 10 s at 360 Hz
        x = torch.randn(2, 1, length)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), (length, y.shape)
    assert model.valid_length(777) % model.valid_length(1) == 0


def test_stft_sizes_follow_the_sample_rate():
    model = default_model("subband_crn", 16000)
    assert (model.n_fft, model.hop, model.bands) == (512, 256, 129)  # GTCRN's 65 bins + 64 ERB bands
    assert model.init_args["sample_rate"] == 16000  # stored, so the checkpoint rebuilds it at its rate
    ecg = default_model("subband_crn", 360)
    assert (ecg.n_fft, ecg.hop, ecg.bands) == (12, 6, 7)  # all bins below the ERB split: none merged
    assert stft_sizes(1000, 32.0, 16.0) == (32, 16)


def test_erb_bands_interpolate_back_to_bins():
    merge, expand = band_matrices(257, 16000, 2000.0, 64)
    assert merge.shape == (257, 129) and expand.shape == (129, 257)
    assert torch.allclose(expand.sum(0), torch.ones(257))  # every bin is a weighted interpolation of bands
    assert torch.allclose(merge.sum(0), torch.ones(129))  # every band is a weighted mean of its bins
    assert torch.equal(expand[:65, :65], torch.eye(65))  # low bins kept as they are


@pytest.mark.parametrize("name", NAMES)
def test_causal_variant_does_not_look_ahead(name):
    """Changing the input from sample t on leaves the causal model's output before t - lookahead unchanged
    (lookahead: one STFT window for subband_crn, `Demucs.lookahead` = 595 samples at depth 4); the
    non-causal variant's early output does change."""
    t, n = 6000, 9000
    x = torch.randn(1, 1, n) * 0.1
    changed = x.clone()
    changed[..., t:] += torch.randn(1, 1, n - t)
    for causal in (True, False):
        model = varied(default_model(name, 16000, f"model.causal={str(causal).lower()}"))
        with torch.no_grad():
            diff = (model(x) - model(changed)).abs()[0, 0]
        before = float(diff[: t - lookahead(model)].max())
        if causal:
            assert before < 1e-6, f"{name}: output {before:.2e} changed before t - {lookahead(model)}"
            assert float(diff[t:].max()) > 1e-3  # ... while the model does react to the change
        else:
            assert before > 1e-4


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("causal", [False, True])
def test_torchscript_matches_eager(name, causal):
    model = varied(default_model(name, 16000, f"model.causal={str(causal).lower()}"))
    scripted = torch.jit.script(model)
    with torch.no_grad():
        for length in (777, 4000 + 3):
            x = torch.randn(2, 1, length) * 0.1
            assert float((scripted(x) - model(x)).abs().max()) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_parameter_counts_are_in_the_stated_ranges(causal):
    flag = f"model.causal={str(causal).lower()}"
    assert 50_000 <= count_parameters(default_model("subband_crn", 16000, flag)) <= 150_000
    assert 1_000_000 <= count_parameters(default_model("demucs", 16000, flag)) <= 5_000_000


def test_a_fresh_subband_crn_passes_speech_through_and_gradients_are_finite():
    """The mask starts near a constant with zero phase (a pass-through up to the level); silence gives finite
    gradients."""
    model = build_model("subband_crn")
    x = torch.randn(1, 1, 8000) * 0.1
    with torch.no_grad():
        y = model.eval()(x)
    assert float(torch.nn.functional.cosine_similarity(x.flatten(), y.flatten(), dim=0)) > 0.99
    silence = torch.zeros(2, 1, 4096, requires_grad=True)
    model.train()(silence).square().sum().backward()
    assert torch.isfinite(silence.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_subband_crn_under_fp16_autocast_stays_finite_where_its_mask_network_says_zero():
    """On a GPU, fp16 AMP training of subband_crn hit a non-finite loss tens of steps in: the mask's 1e-8 floor
    underflowed in fp16 and a bin where the network output 0 gave 0/0. CPU autocast to fp16 shows the same."""
    model = build_model("subband_crn").eval()
    with torch.no_grad():
        model.decoder[-1].conv.weight.zero_()
        model.decoder[-1].conv.bias.zero_()
    x = torch.randn(2, 1, 8000) * 0.1
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.float16):
            mixed = model(x)
    assert torch.isfinite(mixed).all()
    assert torch.allclose(mixed, reference, atol=1e-4)
    model = varied(model)  # a mask that depends on the input: fp16 features, float32 mask, same output
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.float16):
            mixed = model(x)
    assert float(torch.nn.functional.cosine_similarity(mixed.flatten(), reference.flatten(), dim=0)) > 0.99


LEARNING = [
    "data.segment_length=4096",
    "data.items_per_epoch=64",
    "data.batch_size=8",
    "data.valid_items=8",
    "data.builtin.utterances.train=4",
    "data.builtin.utterances.valid=2",
    "data.builtin.utterances.test=1",
    "data.builtin.utterance_s=2.0",
    "data.builtin.noise_s=6.0",
    "data.noise_kinds=[white,pink]",
    "data.snr_db=0",
    "solver.lr=3e-3",
    "solver.progress=false",
    "solver.plot_every=0",
]


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("subband_crn", ["loss=spectral", "solver.epochs=6"]),
        ("demucs", ["loss=si_sdr", "solver.epochs=5", "model.hidden=16"]),
    ],
)
def test_a_short_run_lifts_si_sdr_and_keeps_the_output_in_time(name, overrides, tmp_path):
    """Learning check on generated data at 0 dB (a margin, no timing); the output stays lined up with the
    clean speech."""
    cfg = resolve_paths(compose_config([f"run_dir={tmp_path / name}", f"model={name}", *LEARNING, *overrides]))
    solver = build_solver(cfg)
    summary = solver.fit()
    improvement = summary["best"]["valid_si_sdr_i"]
    assert np.isfinite(summary["best"]["valid_loss"])
    assert improvement >= 3.0, f"{name}: SI-SDR improvement only {improvement:.2f} dB"
    assert abs(output_lag(solver)) <= 2


def output_lag(solver) -> int:
    """The lag (samples) at which |cross-correlation| of the model's output and the clean speech peaks, over
    the validation segments at 0 dB (SI-SDR and MR-STFT ignore the sign, so the magnitude is compared)."""
    view = solver.valid_set.at(gain=1.0, snr_db=0.0)
    noisy = torch.stack([view[i][0] for i in range(len(view))])
    clean = np.stack([view[i][1][0].numpy() for i in range(len(view))])
    with torch.no_grad():
        denoised = solver.model.eval()(noisy)[:, 0].numpy()
    lags = np.arange(-32, 33)
    corr = [abs(sum(float(np.dot(np.roll(d, -lag), c)) for d, c in zip(denoised, clean))) for lag in lags]
    return int(lags[int(np.argmax(corr))])


def test_demucs_trained_with_a_shift_blind_loss_is_not_delayed(tmp_path):
    """MR-STFT cannot see a delay of a few samples, so a network whose layers shift the signal keeps the shift:
    the decoder must cut what the encoder padded (before that fix this run's output lagged 8 samples)."""
    overrides = ["loss=mrstft", "solver.epochs=6", "model.hidden=16"]
    cfg = resolve_paths(compose_config([f"run_dir={tmp_path / 'd'}", "model=demucs", *LEARNING, *overrides]))
    solver = build_solver(cfg)
    solver.fit()
    assert abs(output_lag(solver)) <= 2

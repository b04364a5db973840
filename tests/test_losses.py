import numpy as np
import pytest
import pywt
import torch

from denoise_vc.config import compose_config
from denoise_vc.errors import ConfigError
from denoise_vc.losses import (
    CombinedLoss,
    CompressedSpectralLoss,
    L1Loss,
    MorletCWT,
    MultiResolutionSTFTLoss,
    NegativeSISDR,
    PeakWeightedL1,
    WaveletLoss,
    WeightedSum,
    band_scales,
    build_loss,
    cwt_scales,
    si_sdr_torch,
)
from denoise_vc.metrics import si_sdr
from denoise_vc.solvers.factory import build_denoise_loss


@pytest.mark.parametrize(
    "scales", [cwt_scales(36, 1.0, 36.0, "linear"), cwt_scales(20, 1.0, 150.0, "log"), np.array([0.7, 2.5, 9.0])]
)
@pytest.mark.parametrize("length", [257, 1000])
def test_torch_cwt_matches_pywt(scales, length):
    x = np.random.default_rng(length).standard_normal(length)
    reference, _ = pywt.cwt(x, scales, "morl")
    cwt = MorletCWT(scales)
    for dtype in (torch.float64, torch.float32):
        ours = cwt(torch.tensor(x, dtype=dtype)).double().numpy()
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()


def test_cwt_is_batched_and_differentiable():
    cwt = MorletCWT(cwt_scales(8, 1, 8))
    x = torch.randn(3, 1, 300, requires_grad=True)
    out = cwt(x)
    assert out.shape == (3, 1, 8, 300)
    out.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_peak_weighted_loss_weighs_peak_errors_more_than_l1():
    target = torch.zeros(1, 1, 100)
    target[..., 50] = 1.0  # one peak
    target[..., 10] = 0.05
    err_at_peak, err_quiet = target.clone(), target.clone()
    err_at_peak[..., 50] -= 0.1
    err_quiet[..., 10] -= 0.1
    l1, weighted = L1Loss(), PeakWeightedL1(peak_weight=2.0)
    assert l1(err_at_peak, target) == pytest.approx(float(l1(err_quiet, target)))
    ratio = float(weighted(err_at_peak, target) / weighted(err_quiet, target))
    assert ratio == pytest.approx(3.0 / 1.1, rel=1e-5)  # weights 1 + 2*1 vs 1 + 2*0.05


def test_peak_weight_is_measured_from_the_baseline_not_from_zero():
    """An ECG whose isoelectric line sits at -0.3 mV: errors on the flat baseline weigh 1, as plain L1."""
    ecg = torch.full((1, 1, 360), -0.3)
    ecg[..., ::90] = 1.2  # R peaks
    baseline_error = ecg.clone()
    baseline_error[..., 45::90] += 0.1  # errors only between the peaks
    loss = PeakWeightedL1(peak_weight=3.0)
    assert float(loss(baseline_error, ecg)) == pytest.approx(float(L1Loss()(baseline_error, ecg)), rel=1e-6)
    assert float(loss(baseline_error + 0.3, ecg + 0.3)) == pytest.approx(float(loss(baseline_error, ecg)), rel=1e-5)


@pytest.mark.parametrize("rate", [360, 1000, 16000])
def test_wavelet_scales_cover_the_band_in_hz_at_any_rate(rate):
    scales = band_scales([0.5, 40.0], rate, num_scales=12)
    centres = np.array([pywt.scale2frequency("morl", s) * rate for s in scales])
    assert centres.max() == pytest.approx(40.0, rel=1e-6) and centres.min() == pytest.approx(0.5, rel=1e-6)


def test_wavelet_loss_sees_errors_in_its_band_and_not_far_outside():
    """At 360 Hz with band 0.5-40 Hz, baseline wander (1 Hz) costs far more than the same power at 150 Hz;
    the old fixed scales (1-36 samples: 8-290 Hz at 360 Hz) were blind to wander."""
    rate, t = 360, torch.arange(3600) / 360
    target = torch.zeros(1, 1, 3600)
    wander, hiss = torch.sin(2 * np.pi * 1.0 * t), torch.sin(2 * np.pi * 150.0 * t)
    loss = WaveletLoss([0.5, 40.0], 24, sample_rate=rate)
    assert float(loss(target + wander, target)) > 10 * float(loss(target + hiss, target))


def test_peak_weight_zero_is_plain_l1():
    pred, target = torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    assert float(PeakWeightedL1(0.0)(pred, target)) == pytest.approx(float(L1Loss()(pred, target)))


def test_combined_is_peak_weighted_plus_alpha_wavelet():
    pred, target = torch.randn(2, 1, 512), torch.randn(2, 1, 512)
    combined = CombinedLoss(peak_weight=0.5, alpha=0.3, wavelet={"band_hz": [1, 40], "num_scales": 6}, sample_rate=360)
    expected = PeakWeightedL1(0.5)(pred, target) + 0.3 * WaveletLoss([1, 40], 6, sample_rate=360)(pred, target)
    assert float(combined(pred, target)) == pytest.approx(float(expected), rel=1e-5)


def test_mrstft_is_zero_only_for_identical_signals():
    loss = MultiResolutionSTFTLoss()
    x = torch.randn(2, 1, 8000)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    assert float(loss(x + 0.3 * torch.randn_like(x), x)) > 0.1


def test_negative_si_sdr_matches_the_metric():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(4000).astype(np.float32)
    est = (ref + 0.5 * rng.standard_normal(4000)).astype(np.float32)
    value = -float(NegativeSISDR()(torch.tensor(est)[None, None], torch.tensor(ref)[None, None]))
    assert value == pytest.approx(si_sdr(est, ref), abs=1e-3)


@pytest.mark.parametrize("name", ["l1", "peak_l1", "wavelet", "combined", "mrstft", "si_sdr", "spectral", "sum"])
def test_every_loss_decreases_toward_the_target(name):
    loss = build_denoise_loss(compose_config([f"loss={name}"]).loss, 16000)
    target = torch.sin(torch.linspace(0, 60, 4096))[None, None] * 0.5
    far, near = target + 0.5 * torch.randn_like(target), target + 0.05 * torch.randn_like(target)
    assert float(loss(near, target)) < float(loss(far, target))


def test_mrstft_sizes_in_ms_give_the_sample_counts_of_old_at_16khz():
    """The config's milliseconds are Demucs' 512/1024/2048, 50/120/240, 240/600/1200 samples at 16 kHz."""
    old = [(512, 50, 240), (1024, 120, 600), (2048, 240, 1200)]
    assert build_denoise_loss(compose_config(["loss=mrstft"]).loss, 16000).resolutions == old
    assert MultiResolutionSTFTLoss(sample_rate=16000).resolutions == old
    assert MultiResolutionSTFTLoss(sample_rate=8000).resolutions == [(256, 25, 120), (512, 60, 300), (1024, 120, 600)]
    at_360 = MultiResolutionSTFTLoss(sample_rate=360)
    assert all(win <= n_fft and hop >= 1 for n_fft, hop, win in at_360.resolutions)
    x = torch.randn(2, 1, 3600)
    assert float(at_360(x, x)) == pytest.approx(0.0, abs=1e-5)


def test_the_factory_hands_the_data_rate_to_losses_that_take_one():
    cfg = compose_config(["loss=spectral", "data=heartbeat"])
    loss = build_denoise_loss(cfg.loss, int(cfg.data.sample_rate))
    assert (loss.n_fft, loss.hop) == (32, 16)  # 32 ms / 16 ms at 1 kHz
    assert (build_loss("spectral", sample_rate=16000).n_fft, build_loss("spectral").hop) == (512, 256)
    assert isinstance(build_loss("l1", sample_rate=360), L1Loss)  # rate-free losses ignore it


def test_spectral_loss_is_zero_for_a_perfect_estimate_and_grows_with_the_error():
    target = torch.sin(torch.linspace(0, 400, 8000))[None, None] * 0.3 + 0.05 * torch.randn(1, 1, 8000)
    spectral = CompressedSpectralLoss(si_sdr_weight=0.0)
    assert float(spectral(target, target)) == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn_like(target)
    near, far = spectral(target + 0.01 * noise, target), spectral(target + 0.1 * noise, target)
    assert 0.0 < float(near) < float(far)
    with_sdr = CompressedSpectralLoss(si_sdr_weight=0.1)  # the SI-SDR term only adds -0.1 x SI-SDR (dB)
    expected = float(far) - 0.1 * float(si_sdr_torch(target + 0.1 * noise, target).mean())
    assert float(with_sdr(target + 0.1 * noise, target)) == pytest.approx(expected, rel=1e-5)
    assert float(with_sdr(target, target)) < float(with_sdr(target + 0.01 * noise, target))


@pytest.mark.parametrize("name", ["spectral", "mrstft"])
def test_spectral_losses_have_finite_gradients_even_for_silence(name):
    loss = build_loss(name, sample_rate=16000)
    target = torch.randn(2, 1, 4096) * 0.1
    for pred in (torch.zeros(2, 1, 4096, requires_grad=True), (target + 0.1).clone().requires_grad_(True)):
        value = loss(pred, target)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_sum_loss_weighs_its_terms_and_forwards_the_peak_weight():
    pred, target = torch.randn(2, 1, 2048), torch.randn(2, 1, 2048)
    total = WeightedSum({"spectral": {"weight": 0.5, "si_sdr_weight": 0.0}, "peak_l1": {"peak_weight": 2.0}})
    expected = 0.5 * CompressedSpectralLoss(si_sdr_weight=0.0)(pred, target) + PeakWeightedL1(2.0)(pred, target)
    assert float(total(pred, target)) == pytest.approx(float(expected), rel=1e-5)
    assert total.peak_weight == 2.0  # the curriculum's peak_weight schedule reaches the peak-weighted term
    total.peak_weight = 3.0
    assert total.terms[1].peak_weight == 3.0
    assert not hasattr(WeightedSum({"l1": {}}), "peak_weight")
    with pytest.raises(ConfigError, match="unknown loss"):
        WeightedSum({"nope": {}})

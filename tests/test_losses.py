import numpy as np
import pytest
import pywt
import torch

from denoise_vc.losses import (
    CombinedLoss,
    L1Loss,
    MorletCWT,
    MultiResolutionSTFTLoss,
    NegativeSISDR,
    PeakWeightedL1,
    WaveletLoss,
    build_loss,
    cwt_scales,
)
from denoise_vc.metrics import si_sdr


@pytest.mark.parametrize("scales", [cwt_scales(), cwt_scales(20, 1.0, 150.0, "log"), np.array([0.7, 2.5, 9.0])])
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


def test_peak_weight_zero_is_plain_l1():
    pred, target = torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    assert float(PeakWeightedL1(0.0)(pred, target)) == pytest.approx(float(L1Loss()(pred, target)))


def test_combined_is_peak_weighted_plus_alpha_wavelet():
    pred, target = torch.randn(2, 1, 512), torch.randn(2, 1, 512)
    combined = CombinedLoss(peak_weight=0.5, alpha=0.3, wavelet={"num_scales": 6, "max_scale": 6})
    expected = PeakWeightedL1(0.5)(pred, target) + 0.3 * WaveletLoss(6, 1.0, 6.0)(pred, target)
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


@pytest.mark.parametrize("name", ["l1", "peak_l1", "wavelet", "combined", "mrstft", "si_sdr"])
def test_every_loss_decreases_toward_the_target(name):
    loss = build_loss(name)
    target = torch.sin(torch.linspace(0, 60, 4096))[None, None] * 0.5
    far, near = target + 0.5 * torch.randn_like(target), target + 0.05 * torch.randn_like(target)
    assert float(loss(near, target)) < float(loss(far, target))

import numpy as np
import pytest

from denoise_vc.data.synth import heartbeat_like, speech_like
from denoise_vc.metrics import mean_scores, peak_scores, pesq_mode, score_pair, si_sdr


def test_si_sdr_is_scale_invariant_and_orders_by_noise():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000)
    noise = rng.standard_normal(8000)
    assert si_sdr(3.0 * ref, ref) > 80
    assert si_sdr(ref + 0.1 * noise, ref) == pytest.approx(si_sdr(5 * (ref + 0.1 * noise), ref))
    assert si_sdr(ref + noise, ref) == pytest.approx(0.0, abs=0.3)
    assert si_sdr(ref + 0.1 * noise, ref) > si_sdr(ref + noise, ref)


def test_pesq_and_stoi_only_where_defined():
    assert pesq_mode(16000) == "wb" and pesq_mode(8000) == "nb" and pesq_mode(1000) is None
    clean = speech_like(3.0, 16000, 1)
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    good, bad = score_pair(clean, clean, noisy, 16000), score_pair(noisy, clean, noisy, 16000)
    assert good["pesq"] > 4.0 and bad["pesq"] < good["pesq"]
    assert good["stoi"] > 0.99 and bad["stoi"] < good["stoi"]
    low = score_pair(clean[:3000], clean[:3000], noisy[:3000], 1000)
    assert low["pesq"] is None and low["stoi"] is None


def test_peak_scores_for_heartbeats():
    beat = heartbeat_like(10.0, 1000, 3).signal
    assert peak_scores(beat, beat, 1000) == (1.0, 0.0)
    halved = beat.copy()
    halved *= 0.5
    f1, amp = peak_scores(halved, beat, 1000)
    assert f1 == 1.0 and amp == pytest.approx(0.5, abs=1e-6)
    f1_flat, _ = peak_scores(
        np.zeros_like(beat) + 1e-3 * np.random.default_rng(0).standard_normal(len(beat)), beat, 1000
    )
    assert f1_flat < 0.5


def test_mean_scores_skips_undefined_values():
    assert mean_scores([{"a": 1.0, "b": None}, {"a": 3.0, "b": None}]) == {"a": 2.0, "b": None}

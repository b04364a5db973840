import numpy as np
import pytest

from denoise_vc.data.synth import heartbeat_like, speech_like
from denoise_vc.metrics import mean_scores, pesq_mode, quality_note, quality_rate, score_pair, si_sdr


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


def test_score_pair_reports_ecg_scores_for_output_and_input():
    beat = heartbeat_like(20.0, 1000, 3)
    noisy = beat.signal + 0.3 * np.random.default_rng(0).standard_normal(beat.signal.size).astype(np.float32)
    row = score_pair(beat.signal, beat.signal, noisy, 1000, peaks=True, beats=beat.r_peaks)
    assert row["r_f1"] == 1.0 and row["r_amp_error"] == 0.0 and row["band_snr"] > 100
    assert row["band_snr_noisy"] < row["band_snr"] and row["r_amp_error_noisy"] > 0.0
    assert row["band_snr_i"] == pytest.approx(row["band_snr"] - row["band_snr_noisy"])


def test_mean_scores_skips_undefined_values():
    assert mean_scores([{"a": 1.0, "b": None}, {"a": 3.0, "b": None}]) == {"a": 2.0, "b": None}


def test_noisy_input_is_scored_by_the_same_code_beside_the_output():
    clean = speech_like(3.0, 16000, 1)
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    scores = score_pair(clean, clean, noisy, 16000, extended=True)
    same = score_pair(noisy, clean, noisy, 16000, extended=True)
    for key in ("si_sdr", "pesq", "stoi", "estoi"):
        assert scores[f"{key}_noisy"] == pytest.approx(same[key])  # the input's score is the output metric's
        assert scores[f"{key}_i"] == pytest.approx(scores[key] - scores[f"{key}_noisy"]) and scores[f"{key}_i"] > 0
    assert "estoi" not in score_pair(clean, clean, noisy, 16000)


def test_pesq_and_stoi_rates_and_the_note_that_says_so():
    rates = (1000, 8000, 11025, 16000, 22050, 48000)
    assert [quality_rate(r) for r in rates] == [None, 8000, 16000, 16000, 16000, 16000]
    clean = speech_like(2.0, 22050, 1)
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    scores = score_pair(noisy, clean, noisy, 22050)
    assert scores["pesq"] is not None and scores["pesq"] == pytest.approx(scores["pesq_noisy"])
    assert "PESQ wb" in quality_note([16000]) and "resampled" not in quality_note([16000])
    assert "resampled from 22050 Hz" in quality_note([22050]) and "PESQ nb" in quality_note([8000])
    assert "PESQ omitted" in quality_note([1000]) and "ESTOI at" in quality_note([16000], extended=True)


def test_training_plot_spectrograms_share_one_db_scale(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from denoise_vc.plots import DYNAMIC_RANGE_DB, draw_example, plot_example

    clean = speech_like(1.0, 16000, 1)
    noisy = clean + 0.3 * np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    denoised = 0.5 * clean  # quieter than both: its own scale would hide that
    fig, axes = plt.subplots(3, 2, squeeze=False, layout="constrained")
    try:
        images = draw_example(axes, clean, noisy, denoised, 16000)
        limits = {image.get_clim() for image in images}
        assert len(images) == 3 and len(limits) == 1
        low, high = limits.pop()
        assert high - low == pytest.approx(DYNAMIC_RANGE_DB)
        assert high == pytest.approx(max(float(np.max(image.get_array())) for image in images))
        assert len(fig.axes) == 7  # six panels and one colour bar
    finally:
        plt.close(fig)
    assert plot_example(clean, noisy, denoised, 16000, tmp_path / "p.png").stat().st_size > 0

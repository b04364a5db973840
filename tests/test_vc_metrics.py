import numpy as np
import pytest

from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render
from denoise_vc.vc.metrics import MCD_CONSTANT, f0_scores, mel_cepstral_distortion, score_conversion, summarise


def test_mcd_uses_the_standard_constant_on_the_aligned_frames():
    a = np.zeros((4, 24))
    b = np.zeros((4, 24))
    b[:, 0] = 1.0  # c1 differs by 1 on every frame
    path = np.stack([np.arange(4), np.arange(4)], 1)
    assert mel_cepstral_distortion(a, b, path) == pytest.approx(10 / np.log(10) * np.sqrt(2))
    assert MCD_CONSTANT == pytest.approx(6.1419, abs=1e-3)


def test_f0_scores_in_cents_and_voicing_errors():
    f0_a = np.array([100.0, 200.0, 0.0, 150.0, 0.0])
    f0_b = f0_a * 2 ** (100 / 1200)  # 100 cents higher where voiced
    f0_b[4] = 120.0  # a voicing disagreement
    path = np.stack([np.arange(5), np.arange(5)], 1)
    scores = f0_scores(f0_a, f0_b, path)
    assert scores["f0_rmse_cents"] == pytest.approx(100.0)
    assert scores["f0_corr"] == pytest.approx(1.0)
    assert scores["vuv_error"] == pytest.approx(0.2)


def test_same_speaker_scores_far_better_than_another_speaker():
    script = make_script(7, 5)
    target = render(script, BUILTIN_SPEAKERS["f1"], 16000, 1)
    same = score_conversion(render(script, BUILTIN_SPEAKERS["f1"], 16000, 2), target, 16000)
    other = score_conversion(render(script, BUILTIN_SPEAKERS["m1"], 16000, 2), target, 16000)
    assert same["mcd"] < 4 < 10 < other["mcd"]
    assert same["f0_rmse_cents"] < 50 and other["f0_rmse_cents"] > 800  # f1 is about an octave above m1
    assert score_conversion(target, target, 16000)["mcd"] == 0.0


def test_summaries_are_medians_that_skip_nan():
    rows = [{"mcd": 1.0, "f0_corr": float("nan")}, {"mcd": 3.0, "f0_corr": 0.5}, {"mcd": 10.0, "f0_corr": 0.7}]
    assert summarise(rows) == {"mcd": 3.0, "f0_corr": pytest.approx(0.6)}


def test_pauses_of_the_reference_do_not_count():
    script = make_script(8, 5)
    reference = render(script, BUILTIN_SPEAKERS["f1"], 16000, 1)
    hiss = 1e-4 * np.random.default_rng(0).standard_normal(len(reference)).astype(np.float32)
    quiet = reference == 0  # generated pauses are digital silence
    assert quiet.mean() > 0.02
    with_hiss = reference + hiss * quiet  # noise only where the reference is silent
    assert score_conversion(with_hiss, reference, 16000)["mcd"] < 0.1  # about 0.44 dB if pauses counted

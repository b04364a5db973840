"""Training mixtures like real recordings: level ranges, loudness draws, reverberation, and validation over levels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from denoise_vc.cli import main
from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.data.datasets import TrainSet
from denoise_vc.data.levels import draw_level, level_grid, parse_level, validation_levels
from denoise_vc.data.mixing import MixSettings, scale_to_level
from denoise_vc.data.reverb import ReverbSettings, normalise_rir, reverberate, simulate_rirs
from denoise_vc.data.sources import Corpus
from denoise_vc.data.synth import speech_like
from denoise_vc.errors import ConfigError
from denoise_vc.metrics import si_sdr
from denoise_vc.solvers.factory import build_solver

SR = 16000


def corpus(seconds: float = 3.0) -> Corpus:
    rng = np.random.default_rng(0)
    clean = tuple(speech_like(seconds, SR, s) for s in range(2))
    noise = tuple(rng.standard_normal(int(seconds * SR)).astype(np.float32) * 0.1 for _ in range(2))
    return Corpus(SR, clean, noise)


def snr_of(noisy: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((noisy - clean).astype(np.float64) ** 2)))


@pytest.mark.parametrize(
    "value, positive",
    [("loud", False), ([1, 2, 3], False), ([5, -5], False), (float("nan"), False), ([0, 1], True), (-0.5, True)],
)
def test_bad_level_settings_are_refused_with_the_key_named(value, positive):
    with pytest.raises(ConfigError, match="data.x"):
        parse_level(value, "data.x", positive=positive)


def test_a_range_is_drawn_uniformly_in_db_and_validation_spans_it():
    assert parse_level([-5, 20], "k") == (-5.0, 20.0) and parse_level(3, "k") == 3.0
    rng = np.random.default_rng(1)
    snrs = [draw_level((-5.0, 20.0), rng, in_db=True) for _ in range(2000)]
    assert -5 <= min(snrs) < -4 and 19 < max(snrs) <= 20 and abs(np.mean(snrs) - 7.5) < 0.5
    gains_db = [20 * np.log10(draw_level((0.1, 1.0), rng, in_db=False)) for _ in range(2000)]
    assert abs(np.mean(gains_db) - (-10.0)) < 0.5  # uniform in dB, not in linear gain (whose mean is -6.8 dB)
    assert level_grid((-5.0, 20.0), 4, in_db=True) == [-5.0, 3.33, 11.67, 20.0]
    cfg = compose_config(["data.snr_db=[0,15]"])
    assert validation_levels(cfg.data) == [(None, 0.0), (None, 5.0), (None, 10.0), (None, 15.0)]
    assert validation_levels(compose_config(["data.snr_db=null", "data.gain=0.5"]).data) == [(0.5, None)]


def test_level_skew_draws_more_items_near_the_noisy_end_of_the_range():
    def draws(level, in_db, skew):
        rng = np.random.default_rng(4)
        return np.array([draw_level(level, rng, in_db=in_db, skew=skew) for _ in range(4000)])

    np.testing.assert_array_equal(draws((-9.0, 40.0), True, 1.0), draws((-9.0, 40.0), True, 1.0))
    plain, skewed = draws((-9.0, 40.0), True, 1.0), draws((-9.0, 40.0), True, 3.0)
    third = -9.0 + 49.0 / 3
    # P(u**3 < 1/3) = (1/3) ** (1/3) = 0.69 of the items in the noisiest third, against 1/3 when uniform
    assert abs(np.mean(plain < third) - 1 / 3) < 0.03 and abs(np.mean(skewed < third) - 0.693) < 0.03
    assert skewed.min() >= -9.0 and skewed.max() <= 40.0 and skewed.max() > 35.0  # clean items still come
    gains_db = 20 * np.log10(draws((0.1, 1.0), False, 3.0))  # for gains the noisy end is the high one
    assert abs(np.mean(gains_db > -20.0 / 3) - 0.693) < 0.03 and gains_db.min() >= -20.0 - 1e-9


def test_the_training_set_draws_with_the_configured_skew(tmp_path):
    skewed = build_solver(_tiny(tmp_path, "data.snr_db=[-10,30]", "data.level_skew=4")).train_set
    plain = build_solver(_tiny(tmp_path, "data.snr_db=[-10,30]")).train_set
    levels = {}
    for name, data in (("skewed", skewed), ("plain", plain)):
        levels[name] = np.median([snr_of(*(t[0].numpy() for t in data[i])) for i in range(len(data))])
    assert levels["skewed"] < levels["plain"] - 10  # medians: -10 + 40 / 16 = -7.5 dB against 10 dB


def test_every_training_item_draws_its_own_snr_in_the_range_reproducibly():
    data = TrainSet(corpus(), 8000, 48, MixSettings(noise_mix=1), seed=3, snr_db=(-5.0, 20.0))
    snrs = []
    for i in range(len(data)):
        noisy, clean = (t[0].numpy() for t in data[i])
        snrs.append(snr_of(noisy, clean))
    assert min(snrs) >= -5.01 and max(snrs) <= 20.01
    assert max(snrs) - min(snrs) > 15  # one model hears every level, not one
    again = TrainSet(corpus(), 8000, 48, MixSettings(noise_mix=1), seed=3, snr_db=(-5.0, 20.0))
    np.testing.assert_array_equal(again[7][0].numpy(), data[7][0].numpy())
    data.epoch = 1
    assert not np.array_equal(again[7][0].numpy(), data[7][0].numpy())


def test_loudness_draw_scales_mixture_and_target_alike():
    rng = np.random.default_rng(0)
    clean = speech_like(2.0, SR, 0) * 0.5
    noisy = clean + 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
    levels = []
    for _ in range(50):
        loud_noisy, loud_clean = scale_to_level(noisy, clean, (-35.0, -15.0), rng)
        levels.append(10 * np.log10(np.mean(loud_noisy.astype(np.float64) ** 2)))
        assert np.max(np.abs(loud_noisy)) <= 0.99 + 1e-6
        assert snr_of(loud_noisy, loud_clean) == pytest.approx(snr_of(noisy, clean), abs=1e-3)
    assert -35.01 <= min(levels) < -30 and -20 < max(levels) <= -14.99
    assert np.array_equal(noisy, clean + (noisy - clean))  # inputs untouched


def test_reverberation_keeps_alignment_and_the_target_is_the_early_part():
    rng = np.random.default_rng(0)
    tail = rng.standard_normal(8000) * np.exp(-np.arange(8000) / 1600.0)  # RT60 ~ 0.7 s
    rir = np.concatenate([np.zeros(30), [1.0], 0.3 * tail]).astype(np.float32)
    h = normalise_rir(rir, SR, early_ms=50.0)
    assert h[0] == pytest.approx(np.max(np.abs(h)), rel=0.5)  # cut at the direct path: no leading delay
    assert np.sum(h[:800].astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    clean = speech_like(2.0, SR, 1)
    wet, target = reverberate(clean, h, ReverbSettings(prob=1.0, target="early"), SR)
    assert wet.shape == target.shape == clean.shape
    probe = rng.standard_normal(4000).astype(np.float32)  # white: its cross-correlation with the wet is the RIR
    wet_probe, _ = reverberate(probe, h, ReverbSettings(prob=1.0), SR)
    assert np.argmax(np.correlate(wet_probe, probe, mode="full")) - 3999 == 0  # direct path at lag 0
    late = wet - target
    assert np.sum(late**2) > 0.1 * np.sum(target**2)  # the late tail is what the model must remove
    dry_wet, dry = reverberate(clean, h, ReverbSettings(prob=1.0, target="dry"), SR)
    np.testing.assert_array_equal(dry, clean)
    np.testing.assert_array_equal(dry_wet, wet)
    delta, same = reverberate(clean, normalise_rir(np.array([1.0], np.float32), SR, 50.0), ReverbSettings(), SR)
    np.testing.assert_allclose(delta, clean, atol=1e-6)


def test_simulated_rooms_are_deterministic_and_reverberant():
    a, b = simulate_rirs(2, SR, seed=5, early_ms=50.0), simulate_rirs(2, SR, seed=5, early_ms=50.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for h in a:
        energy = np.cumsum(h.astype(np.float64)[::-1] ** 2)[::-1]
        assert len(h) > 0.1 * SR and energy[int(0.1 * SR)] > 1e-3 * energy[0]  # a real tail, not a delta


def _tiny(tmp_path, *extra):
    from conftest import TINY

    return resolve_paths(compose_config([f"run_dir={tmp_path / 'run'}", *TINY, *extra]))


def test_training_with_ranges_reverb_and_loudness_runs_and_validates_over_the_levels(tmp_path):
    rir_dir = tmp_path / "rir"
    rir_dir.mkdir()
    rng = np.random.default_rng(0)
    sf.write(rir_dir / "room.wav", np.concatenate([[1.0], 0.2 * rng.standard_normal(3000)]).astype(np.float32), SR)
    cfg = _tiny(
        tmp_path,
        "data.snr_db=[0,15]",
        "data.level_dbfs=[-30,-20]",
        "data.reverb.prob=0.5",
        f"data.reverb.rir={rir_dir}",
        "data.reverb.simulate=1",
        "solver.epochs=1",
    )
    solver = build_solver(cfg)
    assert len(solver.train_set.rirs) == 2
    assert solver.valid_levels == [(None, 0.0), (None, 5.0), (None, 10.0), (None, 15.0)]
    solver.fit()
    row = json.loads((solver.run_dir / "history.json").read_text())[0]
    noisy_in = []
    for _, snr in solver.valid_levels:
        view = solver.valid_set.at(snr_db=snr)
        noisy_in += [si_sdr(view[i][0][0].numpy(), view[i][1][0].numpy()) for i in range(len(view))]
    # valid SI-SDR of the noisy input (SI-SDR - SI-SDRi) is the mean over the four levels, not one level
    assert row["valid_si_sdr"] - row["valid_si_sdr_i"] == pytest.approx(np.mean(noisy_in), abs=0.01)


def test_a_curriculum_over_a_range_scales_every_items_noise(tmp_path):
    cfg = _tiny(
        tmp_path,
        "data.snr_db=[0,15]",
        "curriculum=stepped",
        "curriculum.gain.milestones=[0,1]",
        "curriculum.gain.values=[0.0,1.0]",
        "solver.epochs=2",
    )
    solver = build_solver(cfg)
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    assert [r["noise_scale"] for r in history] == [0.0, 1.0]


def best_row(history: list[dict], key: str) -> dict:
    """The history row with the highest `key`, checked to be the one (and only one at that value) marked best."""
    best = max(history, key=lambda r: r[key])
    assert best["best"] and sum(r["best"] for r in history if r[key] > best[key] - 1e-9) == 1
    return best


def test_best_checkpoint_can_be_chosen_by_pesq(tmp_path):
    cfg = _tiny(tmp_path, "solver.valid_metric=pesq", "solver.epochs=2", "data.segment_length=16384")
    solver = build_solver(cfg)
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    assert all(1.0 <= r["valid_pesq"] <= 4.6 for r in history)
    best_row(history, "valid_pesq")


HEARTBEAT_TINY = [
    "data=heartbeat", "model.levels=5", "model.channels_interval=8", "data.items_per_epoch=16",
    "data.valid_items=6", "data.builtin.utterance_s=12", "data.builtin.noise_s=20",
    "data.builtin.utterances.train=2", "data.builtin.utterances.valid=1", "data.builtin.utterances.test=1",
    "loss=peak_l1", "solver.progress=false",
]  # fmt: skip


def test_best_checkpoint_can_be_chosen_by_the_r_peak_f1_that_evaluate_reports(tmp_path):
    """`solver.valid_metric=r_f1`: each epoch's validation F1 is the detector's R peaks on the denoised segments
    against their beats, i.e. what `evaluate` reports for that model on the same segments, averaged over the
    validation levels; best.pth is the epoch with the highest."""
    from denoise_vc.checkpoint import load_model
    from denoise_vc.evaluation import evaluate_levels

    settings = [f"run_dir={tmp_path / 'run'}", *HEARTBEAT_TINY, "data.gain=[0.05,1]", "solver.valid_metric=r_f1"]
    solver = build_solver(resolve_paths(compose_config([*settings, "solver.epochs=3"])))
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    assert len(history) == 3 and all(0.0 <= r["valid_r_f1"] <= 1.0 for r in history)
    best = best_row(history, "valid_r_f1")
    model, _ = load_model(solver.run_dir / "best.pth")
    levels = evaluate_levels(model, solver.valid_set, solver.valid_levels, peaks=True)
    assert len(levels) == 4 and min(row["r_f1_noisy"] for row in levels.values()) < 1.0  # a level to score
    assert np.mean([row["r_f1"] for row in levels.values()]) == pytest.approx(best["valid_r_f1"], abs=1e-6)


@pytest.mark.parametrize(
    "override, message",
    [
        ("solver.valid_metric=pesq data=heartbeat", "PESQ, defined at 8 and 16 kHz"),
        ("solver.valid_metric=stoi", "needs >= 1 s segments"),
        ("solver.valid_metric=r_f1", "needs ECG or heartbeat data (data.peaks=true)"),
        ("solver.valid_metric=mix solver.valid_mix.pesq=nan", "solver.valid_mix weights must be finite"),
        ("data.reverb.prob=0.5", "needs data.reverb.rir"),
        ("data.reverb.prob=2", "data.reverb.prob must be in"),
        ("data.snr_db=[20,-5]", "low > high"),
        ("data.gain=[0,1] data.snr_db=null", "data.gain must be >= 0"),
    ],
)
def test_bad_mixture_and_validation_settings_fail_in_one_line(tmp_path, capsys, override, message):
    from conftest import TINY

    args = [a for a in TINY if not a.startswith("data.segment_length")] + ["data.segment_length=4096"]
    code = main(["train", f"run_dir={tmp_path / 'r'}", *args, *override.split()])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "last.pth").exists()

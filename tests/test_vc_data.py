import json

import numpy as np
import pytest
import torch
from vc_tiny import vc_overrides

from denoise_vc.config import compose_config
from denoise_vc.vc.align import dtw_durations, durations_from_path, pad_to_multiple, reduce_mean, repair_durations
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render
from denoise_vc.vc.dataset import BucketSampler, PairSet, collate
from denoise_vc.vc.features import FeatureSettings, clean_wave, extract, log_mel
from denoise_vc.vc.prepare import prepare
from denoise_vc.vc.segments import match_target_segments, pause_segments, reduce_segments


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vcdata")
    cfg = compose_config(vc_overrides(tmp), config_name="vc")
    return cfg, prepare(cfg, progress=False)


def test_repair_durations_always_hits_the_total():
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.integers(-2, 6, size=int(rng.integers(1, 30)))
        total = int(rng.integers(0, 120))
        fixed = repair_durations(d, total)
        assert fixed.sum() == total and (fixed >= 0).all() and len(fixed) == len(d)
    assert repair_durations(np.array([3, 1, 1]), 5).tolist() == [3, 1, 1]


def test_durations_from_a_path_count_each_target_frame_once():
    path = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [2, 3], [3, 3], [4, 4]])
    assert durations_from_path(path, 5, 5).tolist() == [2, 0, 2, 0, 1]
    # a time-stretched copy: each source frame owns two target frames
    src = np.random.default_rng(1).standard_normal((20, 8))
    tgt = np.repeat(src, 2, axis=0)
    d = dtw_durations(src, tgt)
    assert d.sum() == 40 and np.mean(d == 2) > 0.8


def test_reduction_padding_and_means_round_trip():
    x = np.arange(14, dtype=np.float64)
    padded = pad_to_multiple(x, 3)
    assert len(padded) == 15 and padded[-1] == 13
    assert np.allclose(reduce_mean(padded, 3), [1, 4, 7, 10, 38 / 3])
    mel = pad_to_multiple(np.zeros((7, 2)), 3, -11.5)
    assert mel.shape == (9, 2) and (mel[7:] == -11.5).all()


def test_pauses_split_segments_and_short_or_edge_silences_do_not():
    hop_s = 0.01
    loud, quiet = np.zeros(30), np.full(30, -10.0)  # natural-log energy; -10 is about -87 dB below 0
    energy = np.concatenate([quiet, loud, quiet[:25], loud, quiet[:10], loud, quiet])
    ids = pause_segments(energy, hop_s, min_silence_s=0.2, threshold_db=-40)
    assert ids.max() == 1  # the 250 ms pause cuts, the 100 ms one and the edges do not
    cut = int(np.flatnonzero(np.diff(ids))[0]) + 1
    assert 60 <= cut < 85
    assert pause_segments(np.full(50, -11.5), hop_s, 0.2, -40).tolist() == [0] * 50  # all silent: one segment


def test_segments_collapsed_by_reduction_merge_and_both_sides_match():
    frames = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3])  # segment 1 falls between reduced frames
    assert reduce_segments(frames, 3, 4).tolist() == [0, 0, 1, 2]
    src, tgt = match_target_segments(np.array([0, 0, 1, 1, 2, 2]), np.array([1, 2, 0, 0, 3, 1]))
    assert src.tolist() == [0, 0, 0, 0, 1, 1]  # segment 1 got no target frames: merged into segment 0
    assert tgt.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert src.max() == tgt.max()


def test_features_share_one_frame_grid_and_one_mel_function():
    cfg = compose_config(["data.n_mels=40"], config_name="vc")
    fs = FeatureSettings.from_config(cfg.data)
    wave = render(make_script(3, 4), BUILTIN_SPEAKERS["f1"], 22050, 3)
    x = clean_wave(wave, 22050, fs)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(10 ** (-26 / 20), rel=0.05)
    feats = extract(x, fs)
    n = 1 + len(x) // fs.hop_length
    assert feats["mel"].shape == (n, 40) and len(feats["lf0"]) == len(feats["energy"]) == len(feats["voiced"]) == n
    voiced_hz = np.exp(feats["lf0"][feats["voiced"]])
    assert 170 < np.median(voiced_hz) < 270  # f1 speaks at about 215 Hz
    assert np.isfinite(feats["lf0"]).all()
    silent = extract(np.zeros(4000, np.float32), fs)
    assert np.isnan(silent["lf0"]).all() and not silent["voiced"].any()
    assert np.allclose(silent["mel"], np.log(1e-5)) and np.array_equal(log_mel(x, fs), feats["mel"])


def test_prepare_durations_segments_and_cache(prepared, tmp_path):
    cfg, manifest = prepared
    assert manifest["computed"] == 7 and {k: len(v) for k, v in manifest["splits"].items()} == {
        "train": 4,
        "valid": 1,
        "test": 2,
    }
    r = int(cfg.data.reduction_factor)
    for name in manifest["splits"]["train"]:
        with np.load(f"{cfg.data.prepared_dir}/features/{name}.npz") as z:
            assert len(z["src_mel"]) % r == 0 and len(z["tgt_mel"]) % r == 0
            assert z["durations"].sum() == len(z["tgt_mel"]) // r == len(z["tgt_segment"])
            assert len(z["durations"]) == len(z["src_segment"]) == len(z["src_mel"]) // r
            assert z["src_segment"].max() == z["tgt_segment"].max()
            assert (np.diff(z["tgt_segment"]) >= 0).all()
    stats = json.loads(open(f"{cfg.data.prepared_dir}/stats.json").read())
    source, target = stats["source"], stats["target"]
    assert len(source["mel_mean"]) == len(target["mel_mean"]) == 40
    # each speaker keeps its own statistics: m1 speaks near 110 Hz, f1 near 215 Hz (ln ratio 0.67)
    assert 4.4 < source["lf0_mean"] < 5.0 and 5.1 < target["lf0_mean"] < 5.7
    assert target["lf0_mean"] - source["lf0_mean"] > 0.4
    again = prepare(cfg, progress=False)
    assert again["computed"] == 0 and again["reused"] == 7
    changed = compose_config(
        [*vc_overrides(tmp_path), f"data.prepared_dir={cfg.data.prepared_dir}", "data.silence_db=-30"], config_name="vc"
    )
    assert prepare(changed, progress=False)["computed"] == 7  # a new setting invalidates the cache


def test_batches_follow_the_model_contract(prepared):
    cfg, manifest = prepared
    stats = json.loads(open(f"{cfg.data.prepared_dir}/stats.json").read())
    data = PairSet(cfg.data.prepared_dir, manifest["splits"]["train"], stats, 3)
    batch = collate([data[0], data[1], data[2]])
    b, ts, n_mels = batch["src_mel"].shape
    assert (b, n_mels) == (3, 40) and ts == 3 * batch["src_pitch"].shape[1]
    assert batch["tgt_mel"].shape[1] == 3 * batch["tgt_pitch"].shape[1]
    for i in range(3):
        s, t = int(batch["src_len"][i]), int(batch["tgt_len"][i])
        assert int(batch["durations"][i, :s].sum()) == t and int(batch["durations"][i, s:].sum()) == 0
        assert (batch["src_segment"][i, s:] == -1).all() and (batch["tgt_segment"][i, t:] == -1).all()
        assert int(batch["src_segment"][i, :s].max()) + 1 == int(batch["n_segments"][i])
        assert int(batch["tgt_segment"][i, :t].max()) + 1 == int(batch["n_segments"][i])
        assert (batch["src_mel"][i, 3 * s :] == 0).all()
    assert batch["durations"].dtype == torch.int64 and batch["src_mel"].dtype == torch.float32
    for key in ("src_mel", "src_pitch", "tgt_energy"):
        assert torch.isfinite(batch[key]).all()


def test_bucket_sampler_groups_by_length_and_is_seeded():
    lengths = list(range(100, 0, -1))
    sampler = BucketSampler(lengths, batch_size=4, group_size=5, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25 and sorted(i for b in batches for i in b) == list(range(100))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 25  # random batches of 4 out of 1..100 spread about 50
    assert list(BucketSampler(lengths, 4, 5, 3)) == batches
    sampler.epoch = 1
    assert list(sampler) != batches


def test_a_pair_dtw_cannot_align_is_reported_by_name_and_skipped(tmp_path, capsys):
    import soundfile as sf

    rate = 16000
    for side, speaker in (("src", "m1"), ("tgt", "f1")):
        (tmp_path / side).mkdir()
        for index in range(6):
            words = 18 if side == "tgt" and index == 2 else 3  # u2's target says six times as much
            wave = render(make_script(index, words), BUILTIN_SPEAKERS[speaker], rate, index)
            sf.write(tmp_path / side / f"u{index}.wav", wave, rate)
    overrides = [
        f"data.source={tmp_path / 'src'}",
        f"data.target={tmp_path / 'tgt'}",
        f"data.prepared_dir={tmp_path / 'prep'}",
        "data.split.valid=0.2",
        "data.split.test=0.2",
    ]
    manifest = prepare(compose_config(overrides, config_name="vc"), progress=False)
    assert list(manifest["skipped"]) == ["u2"] and "lengths differ" in manifest["skipped"]["u2"]
    assert "skipped u2" in capsys.readouterr().err
    kept = [name for names in manifest["splits"].values() for name in names]
    assert sorted(kept) == ["u0", "u1", "u3", "u4", "u5"] and not (tmp_path / "prep/features/u2.npz").exists()
    again = prepare(compose_config(overrides, config_name="vc"), progress=False)  # the cache keeps the verdict
    assert again["computed"] == 0 and again["skipped"] == manifest["skipped"]

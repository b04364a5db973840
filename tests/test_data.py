import numpy as np
import pytest
import soundfile as sf
from scipy.io import savemat

from denoise_vc.config import compose_config
from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.data.mixing import MixSettings, gain_for_snr, make_noise_segment, mix, phase_shuffle
from denoise_vc.data.noises import NOISES, bandpass, generate_noise
from denoise_vc.data.sources import build_corpus
from denoise_vc.data.synth import SpeakerTraits, heartbeat_like, speech_like
from denoise_vc.ecg_metrics import detect_r_peaks
from denoise_vc.errors import ConfigError


@pytest.mark.parametrize("rate", [1000, 8000, 16000, 22050])
def test_speech_generator_is_deterministic_and_varies_by_seed(rate):
    a, b, c = speech_like(1.5, rate, 3), speech_like(1.5, rate, 3), speech_like(1.5, rate, 4)
    assert a.shape == (int(1.5 * rate),) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.isfinite(a).all() and 0.02 < np.sqrt(np.mean(a**2)) < 0.1


def test_speech_has_pauses_voicing_and_speaker_dependent_pitch():
    rate = 16000
    low = speech_like(4.0, rate, 1, SpeakerTraits(f0_hz=100.0, pause_prob=0.9))
    high = speech_like(4.0, rate, 1, SpeakerTraits(f0_hz=220.0, pause_prob=0.9))
    frames = low[: len(low) // 400 * 400].reshape(-1, 400)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    assert (energy < 0.05 * energy.max()).mean() > 0.1  # pauses exist
    assert (energy > 0.3 * energy.max()).mean() > 0.2  # and so does speech

    def mean_f0(x):
        import librosa

        f0, voiced, _ = librosa.pyin(x, fmin=60, fmax=400, sr=rate, frame_length=1024)
        return np.nanmean(f0[voiced])

    assert mean_f0(high) / mean_f0(low) == pytest.approx(2.2, rel=0.15)


def test_heartbeat_peaks_are_where_the_generator_put_them():
    beat = heartbeat_like(20.0, 1000, seed=5)
    found = detect_r_peaks(beat.signal, 1000)
    inner = beat.r_peaks[beat.r_peaks > 500]  # the detector may miss a beat in the first few hundred ms
    found = found[found > 500]
    assert len(found) == len(inner)
    assert np.abs(found - inner).max() <= 3
    rr = np.diff(beat.r_peaks) / 1000
    assert 0.5 < rr.mean() < 1.2 and rr.std() > 0.005  # heart-rate variability


@pytest.mark.parametrize("kind", sorted(NOISES))
@pytest.mark.parametrize("rate", [1000, 16000])
def test_noises_are_unit_rms_deterministic_and_finite(kind, rate):
    a, b = generate_noise(kind, 2.0, rate, 9), generate_noise(kind, 2.0, rate, 9)
    assert np.array_equal(a, b) and np.isfinite(a).all()
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)


def test_noise_colours_have_the_expected_spectral_slopes():
    rate = 16000

    def slope(x):
        f = np.fft.rfftfreq(len(x), 1 / rate)
        p = np.abs(np.fft.rfft(x)) ** 2
        band = (f > 100) & (f < 4000)
        return np.polyfit(np.log10(f[band]), np.log10(p[band] + 1e-20), 1)[0]

    assert slope(generate_noise("white", 4, rate, 1)) == pytest.approx(0.0, abs=0.2)
    assert slope(generate_noise("pink", 4, rate, 1)) == pytest.approx(-1.0, abs=0.2)
    assert slope(generate_noise("brown", 4, rate, 1)) == pytest.approx(-2.0, abs=0.2)


def test_mixing_at_a_target_snr_is_exact():
    rng = np.random.default_rng(0)
    clean, noise = rng.standard_normal(8000).astype(np.float32), rng.standard_normal(8000).astype(np.float32)
    for snr in (-5.0, 0.0, 10.0):
        noisy = mix(clean, noise, snr_db=snr)
        residual = noisy - clean
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(residual.astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=1e-3)
    assert gain_for_snr(clean, np.zeros_like(noise), 0.0) == 0.0
    assert np.array_equal(mix(clean, noise, gain=0.0), clean)


def test_phase_shuffle_keeps_the_magnitude_spectrum():
    noise = generate_noise("pink", 1.0, 8000, 2)
    shuffled = phase_shuffle(noise, np.random.default_rng(1))
    assert np.allclose(np.abs(np.fft.rfft(shuffled)), np.abs(np.fft.rfft(noise)), rtol=1e-3, atol=1e-3)
    assert np.corrcoef(shuffled, noise)[0, 1] < 0.2


def test_noise_flips_are_the_recording_signed_or_reversed_and_all_occur():
    recording = np.cumsum(np.random.default_rng(0).standard_normal(5000)).astype(np.float32)
    seen = set()
    for seed in range(40):
        settings = MixSettings(flip_prob=0.5)
        segment = make_noise_segment([recording], 1000, settings, np.random.default_rng(seed))
        crop = make_noise_segment([recording], 1000, MixSettings(), np.random.default_rng(seed))  # same offset
        variants = {"kept": crop, "negated": -crop, "reversed": crop[::-1], "both": -crop[::-1]}
        matches = [name for name, v in variants.items() if np.array_equal(segment, v)]
        assert len(matches) == 1, f"seed {seed}: the segment is no flip of its crop"
        seen.add(matches[0])
    assert seen == {"kept", "negated", "reversed", "both"}


def test_bandpass_removes_out_of_band_energy():
    rate = 1000
    t = np.arange(5000) / rate
    x = np.sin(2 * np.pi * 0.2 * t) + np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 200 * t)
    y = bandpass(x, rate, 0.5, 40)
    spectrum = np.abs(np.fft.rfft(y)) / len(y)
    f = np.fft.rfftfreq(len(y), 1 / rate)
    assert spectrum[np.argmin(abs(f - 10))] > 0.4
    assert spectrum[np.argmin(abs(f - 200))] < 0.01 and spectrum[np.argmin(abs(f - 0.2))] < 0.05


def _data_cfg(extra=()):
    return compose_config(
        [
            "data.builtin.utterances.train=3",
            "data.builtin.utterance_s=1.5",
            "data.builtin.noise_s=3",
            "data.noise_kinds=[white,pink,clicks]",
            *extra,
        ]
    ).data


def test_augmentation_never_modifies_cached_arrays():
    data = _data_cfg()
    corpus = build_corpus(data, "train", 0)
    before = [c.copy() for c in corpus.clean] + [n.copy() for n in corpus.noise]
    settings = MixSettings(noise_mix=3, phase_shuffle_prob=1.0, bandpass_hz=(100.0, 6000.0), sample_rate=16000)
    dataset = TrainSet(corpus, 2048, 40, settings, seed=0, gain=1.0)
    for epoch in range(2):
        dataset.epoch = epoch
        for i in range(len(dataset)):
            noisy, clean = dataset[i]
            noisy.mul_(0)  # a consumer scribbling on what it got must not reach the cache
            clean.add_(1)
    after = list(corpus.clean) + list(corpus.noise)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert all(not a.flags.writeable for a in after)


def test_training_items_depend_on_seed_epoch_and_index_only():
    corpus = build_corpus(_data_cfg(), "train", 0)
    settings = MixSettings(noise_mix=2, phase_shuffle_prob=0.5, sample_rate=16000)
    a, b = TrainSet(corpus, 1024, 8, settings, 0), TrainSet(corpus, 1024, 8, settings, 0)
    assert all(np.array_equal(a[i][0], b[i][0]) for i in (0, 5, 7))
    assert all(np.array_equal(a[i][0], a[i][0]) for i in range(3))  # order does not matter
    b.epoch = 1
    assert not np.array_equal(a[0][0], b[0][0])


def test_splits_do_not_share_generated_material():
    data = _data_cfg()
    train, test = build_corpus(data, "train", 0), build_corpus(data, "test", 0)
    assert not any(np.allclose(a, b) for a in train.clean for b in test.clean)
    assert not np.array_equal(train.noise[0][:100], test.noise[0][:100])


def test_fixed_set_mixes_the_same_segments_at_every_level():
    corpus = build_corpus(_data_cfg(), "valid", 0)
    fixed = FixedSet(corpus, 2048, 4, MixSettings(sample_rate=16000), seed=1)
    low, high = fixed.at(gain=0.25), fixed.at(gain=1.0)
    for i in range(4):
        assert np.array_equal(low[i][1], high[i][1])
        np.testing.assert_allclose(
            (high[i][0] - high[i][1]).numpy(), 4 * (low[i][0] - low[i][1]).numpy(), rtol=1e-4, atol=1e-6
        )
    again = FixedSet(corpus, 2048, 4, MixSettings(sample_rate=16000), seed=1)
    assert np.array_equal(again.clean, fixed.clean)


def test_gain_one_is_about_zero_db_snr_on_builtin_data():
    corpus = build_corpus(_data_cfg(), "train", 0)
    clean = np.concatenate(corpus.clean)
    for noise in corpus.noise:
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(np.sqrt(np.mean(clean**2)), rel=1e-3)


def test_real_folders_of_every_format_are_loaded_and_resampled(tmp_path):
    rate = 22050
    clean_dir, noise_dir = tmp_path / "clean", tmp_path / "noise"
    clean_dir.mkdir(), noise_dir.mkdir()
    for i, fmt in enumerate(["wav", "flac", "ogg"]):
        stereo = np.stack([speech_like(1.0, rate, i), speech_like(1.0, rate, i)], axis=1)
        sf.write(clean_dir / f"utt{i}.{fmt}", stereo, rate)
    savemat(noise_dir / "noise.mat", {"sig": generate_noise("white", 2.0, 8000, 1)[:, None]})
    data = compose_config(
        [
            "data=folder",
            f"data.clean={clean_dir}",
            f"data.noise={noise_dir}",
            "data.mat_variable=sig",
            "data.mat_sample_rate=8000",
        ]
    ).data
    corpus = build_corpus(data, "train", 0)
    assert corpus.sample_rate == 16000
    assert len(corpus.clean) == 1 and len(corpus.clean[0]) == pytest.approx(16000, abs=2)  # 1 of 3 files for train
    assert len(corpus.noise[0]) == pytest.approx(2 * 16000, abs=2)  # 2 s at 8 kHz, resampled


def test_noise_channels_make_each_channel_a_recording_of_its_own(tmp_path):
    rate = 8000
    (tmp_path / "clean").mkdir(), (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "clean" / "a.wav", speech_like(1.0, rate, 1), rate, subtype="FLOAT")
    channels = [generate_noise(kind, 2.0, rate, seed) for seed, kind in enumerate(["white", "pink", "brown", "hum"])]
    for name, pair in (("m", channels[:2]), ("n", channels[2:])):
        sf.write(tmp_path / "noise" / f"{name}.wav", np.stack(pair, axis=1), rate, subtype="FLOAT")

    def corpus(*extra):
        args = ["data=folder", f"data.clean={tmp_path / 'clean'}", f"data.noise={tmp_path / 'noise'}"]
        return build_corpus(compose_config([*args, "data.sample_rate=8000", *extra]).data, "train", 0)

    assert len(corpus().noise) == 2  # each file's channels mixed to one recording
    listed = corpus("data.noise_channels=[0,1]").noise
    # channel by channel (every file's first, then every file's second), each scaled on its own, waveform kept
    for got, want in zip(listed, [channels[0], channels[2], channels[1], channels[3]], strict=True):
        assert np.corrcoef(got, want)[0, 1] > 0.999
    assert all(np.array_equal(a, b) for a, b in zip(corpus("data.noise_channels=all").noise, listed, strict=True))
    with pytest.raises(ConfigError, match="data.noise_channels must be"):
        corpus("data.noise_channels=[-1]")


def test_paired_folders_reproduce_the_recording_at_gain_one(tmp_path):
    rate = 16000
    (tmp_path / "clean").mkdir(), (tmp_path / "noisy").mkdir()
    clean = speech_like(1.0, rate, 1)
    noisy = clean + 0.3 * generate_noise("pink", 1.0, rate, 2) * 0.05
    sf.write(tmp_path / "clean" / "a.wav", clean, rate, subtype="FLOAT")
    sf.write(tmp_path / "noisy" / "a.wav", noisy, rate, subtype="FLOAT")
    data = compose_config(
        [
            "data=folder",
            f"data.clean={tmp_path / 'clean'}",
            f"data.noisy={tmp_path / 'noisy'}",
            "data.segment_length=16000",
        ]
    ).data
    corpus = build_corpus(data, "train", 0)
    assert corpus.paired
    fixed = FixedSet(corpus, 16000, 1, MixSettings(sample_rate=rate), seed=0)
    np.testing.assert_allclose(fixed.at(gain=1.0)[0][0][0].numpy(), noisy, atol=1e-6)


def test_data_paths_are_made_absolute_relative_to_data_root(tmp_path, monkeypatch):
    from denoise_vc.config import resolve_paths

    monkeypatch.chdir(tmp_path)
    cfg = resolve_paths(
        compose_config(
            ["data=folder", "data.root=/data", "data.clean=clean", "data.noise=/abs/noise", "run_dir=runs/x"]
        )
    )
    assert cfg.data.clean == "/data/clean" and cfg.data.noise == "/abs/noise"
    assert cfg.run_dir == str(tmp_path / "runs" / "x")
    assert resolve_paths(compose_config(["data.clean=builtin_speech"])).data.noise == "builtin"

"""Clinical ECG scores: one-to-one beat matching at 150 ms, R amplitudes from the local isoelectric level, band
SNR, and cardiologists' annotations carried from WFDB `.atr` files (or `.peaks.csv`) into the test segments."""

import numpy as np
import pytest
import soundfile as sf
import wfdb

from denoise_vc.config import compose_config
from denoise_vc.data.datasets import FixedSet
from denoise_vc.data.mixing import MixSettings
from denoise_vc.data.sources import build_corpus
from denoise_vc.data.synth import heartbeat_like
from denoise_vc.ecg_metrics import (
    band_snr,
    beat_matching,
    detect_r_peaks,
    r_amplitude_deviations,
    r_amplitude_error,
)

RATE = 360


def test_beats_match_one_to_one_within_150_ms_inclusive():
    reference = np.array([1000, 2000, 3000])
    tolerance = int(round(0.15 * RATE))
    assert beat_matching(reference, reference + tolerance, RATE) == (1.0, 1.0, 1.0)
    assert beat_matching(reference, reference + tolerance + 1, RATE) == (0.0, 0.0, 0.0)
    # two detections around one beat: one matches, the other is a false positive, never a second match
    se, pp, f1 = beat_matching(reference, np.array([995, 1005, 2000, 3000]), RATE)
    assert (se, pp) == (1.0, 0.75) and f1 == pytest.approx(2 * 0.75 / 1.75)
    assert beat_matching(reference, np.array([], dtype=int), RATE) == (0.0, 0.0, 0.0)
    assert beat_matching(np.array([], dtype=int), reference, RATE) == (None, None, None)


def test_r_amplitudes_are_read_from_the_local_isoelectric_level():
    beat = heartbeat_like(30.0, RATE, 2)
    t = np.arange(beat.signal.size) / RATE
    wander = 0.4 * np.sin(2 * np.pi * 0.1 * t)  # slow baseline drift moves every beat's level, not its R wave
    assert r_amplitude_error(beat.signal + wander, beat.signal, beat.r_peaks, RATE) < 0.03
    assert r_amplitude_error(0.9 * beat.signal, beat.signal, beat.r_peaks, RATE) == pytest.approx(0.1, abs=0.005)


def test_r_amplitude_deviations_keep_the_sign_and_skip_flat_beats():
    beat = heartbeat_like(30.0, RATE, 2)
    shrunk = r_amplitude_deviations(0.9 * beat.signal, beat.signal, beat.r_peaks, RATE)
    inflated = r_amplitude_deviations(1.2 * beat.signal, beat.signal, beat.r_peaks, RATE)
    assert shrunk.size == beat.r_peaks.size > 20
    assert np.allclose(shrunk, -0.1, atol=0.005) and np.allclose(inflated, 0.2, atol=0.01)
    flat = np.zeros_like(beat.signal)
    assert r_amplitude_deviations(beat.signal, flat, beat.r_peaks, RATE).size == 0
    assert r_amplitude_error(beat.signal, flat, beat.r_peaks, RATE) is None


def test_band_snr_measures_noise_in_the_heart_band_only():
    beat = heartbeat_like(60.0, RATE, 3).signal.astype(np.float64)
    rng = np.random.default_rng(0)
    assert band_snr(beat + 0.7, beat, RATE) > 60  # an offset is outside 0.5-40 Hz
    t = np.arange(beat.size) / RATE
    hum, tremor = (0.3 * np.sin(2 * np.pi * f * t) for f in (100.0, 10.0))
    assert band_snr(beat + hum, beat, RATE) > band_snr(beat + tremor, beat, RATE) + 20  # 100 Hz lies above the band
    noisy = beat + 0.2 * rng.standard_normal(beat.size)
    assert 0 < band_snr(noisy, beat, RATE) < band_snr(beat + 0.05 * rng.standard_normal(beat.size), beat, RATE)


def test_the_detector_finds_generated_beats():
    beat = heartbeat_like(30.0, RATE, 5)
    found = detect_r_peaks(beat.signal, RATE)
    inner = beat.r_peaks[(beat.r_peaks > RATE // 2) & (beat.r_peaks < beat.signal.size - RATE // 2)]
    assert beat_matching(inner, found[(found > RATE // 2) & (found < beat.signal.size - RATE // 2)], RATE)[2] == 1.0
    assert len(found) >= len(beat.r_peaks) - 1  # a beat in the first few hundred ms may go unseen
    assert detect_r_peaks(np.zeros(RATE * 10), RATE).size == 0


def write_annotated_record(folder, name: str, seconds: float, seed: int) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    beat = heartbeat_like(seconds, RATE, seed)
    signal = beat.signal[:, None].astype(np.float64) - 0.3
    wfdb.wrsamp(
        name, fs=RATE, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["212"], adc_gain=[200.0],
        baseline=[0], write_dir=str(folder),
    )  # fmt: skip
    symbols = ["N"] * len(beat.r_peaks)
    samples, symbols = np.append(beat.r_peaks, 5), ["+", *symbols]  # a rhythm mark is not a beat
    order = np.argsort(samples, kind="stable")
    wfdb.wrann(name, "atr", samples[order], symbol=[symbols[i] for i in order], write_dir=str(folder))
    return beat.r_peaks


def test_annotated_beats_follow_the_split_and_the_crop(tmp_path):
    peaks = write_annotated_record(tmp_path / "clean", "ecg", 100.0, 2)
    noise = np.random.default_rng(3).normal(0.0, 0.2, (int(100 * RATE), 1))
    (tmp_path / "noise").mkdir()
    wfdb.wrsamp("ma", fs=RATE, units=["mV"], sig_name=["n"], p_signal=noise, fmt=["16"], adc_gain=[200.0],
                baseline=[0], write_dir=str(tmp_path / "noise"))  # fmt: skip
    paths = [f"data.clean={tmp_path / 'clean'}", f"data.noise={tmp_path / 'noise'}"]
    cfg = compose_config(["data=ecg", "data.split_by=time", *paths]).data
    test = build_corpus(cfg, "test", seed=0)
    start = int(100 * RATE) - 3600
    np.testing.assert_array_equal(test.beats[0], peaks[peaks >= start] - start)  # the '+' mark is left out
    segments = FixedSet(test, 1024, 6, MixSettings(sample_rate=RATE), seed=1)
    for clean, beats in zip(segments.clean, segments.beats):
        assert len(beats) >= 2
        for b in beats:  # each annotated beat sits on its segment's R wave
            assert clean[b] == pytest.approx(clean[max(0, b - 20) : b + 21].max())


def test_a_peaks_csv_beside_a_wav_gives_its_beats_at_the_data_rate(tmp_path):
    beat = heartbeat_like(40.0, 1000, 7)
    (tmp_path / "clean").mkdir()
    sf.write(tmp_path / "clean" / "drive.wav", beat.signal, 1000, subtype="FLOAT")
    (tmp_path / "clean" / "drive.peaks.csv").write_text("sample\n" + "\n".join(map(str, beat.r_peaks)) + "\n")
    cfg = compose_config(["data=heartbeat", f"data.clean={tmp_path / 'clean'}", "data.sample_rate=500",
                          "data.split_by=time"]).data  # fmt: skip
    train = build_corpus(cfg, "train", seed=0)
    expected = np.round(beat.r_peaks * 0.5).astype(int)
    np.testing.assert_array_equal(train.beats[0], expected[expected < len(train.clean[0])])

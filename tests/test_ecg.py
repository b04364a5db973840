"""Real-ECG support: WFDB records (MIT-BIH format 212), lead selection, time splits, baseline-relative peaks."""

import numpy as np
import pytest
import wfdb

from denoise_vc.audio import load_audio
from denoise_vc.config import compose_config
from denoise_vc.data.sources import build_corpus
from denoise_vc.data.synth import heartbeat_like
from denoise_vc.ecg_metrics import ecg_scores
from denoise_vc.errors import AudioFileError

RATE = 360


def write_record(folder, name: str, leads: np.ndarray, fmt: str = "212") -> None:
    """A two-lead WFDB record in mV, stored the way MIT-BIH stores its records."""
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=RATE,
        units=["mV"] * leads.shape[1],
        sig_name=[f"lead{i}" for i in range(leads.shape[1])],
        p_signal=leads,
        fmt=[fmt] * leads.shape[1],
        adc_gain=[200.0] * leads.shape[1],
        baseline=[0] * leads.shape[1],
        write_dir=str(folder),
    )


def ecg_leads(seconds: float, seed: int) -> np.ndarray:
    lead = heartbeat_like(seconds, RATE, seed).signal - 0.3  # MIT-BIH MLII sits about 0.3 mV below zero
    return np.stack([lead, -0.5 * lead], axis=1)


def test_a_format_212_record_loads_in_mv_at_its_own_rate_with_the_chosen_lead(tmp_path):
    leads = ecg_leads(10.0, 0)
    write_record(tmp_path, "rec", leads)
    lead0, rate = load_audio(tmp_path / "rec.hea", channel=0)
    lead1, _ = load_audio(tmp_path / "rec.hea", channel=1)
    assert rate == RATE and lead0.shape == (1, len(leads))
    # format 212 stores 12-bit integers at 200 ADC units per mV: 0.0025 mV is half a step
    assert np.max(np.abs(lead0[0] - leads[:, 0])) <= 0.0026
    assert np.max(np.abs(lead1[0] - leads[:, 1])) <= 0.0026
    resampled, rate = load_audio(tmp_path / "rec.hea", sample_rate=1000, channel=0)
    assert rate == 1000 and abs(resampled.shape[1] - round(len(leads) * 1000 / RATE)) <= 1


def test_bad_records_and_leads_get_one_line_errors(tmp_path):
    write_record(tmp_path, "rec", ecg_leads(2.0, 1))
    with pytest.raises(AudioFileError, match=r"rec\.hea: has 2 channels, channel 5 does not exist"):
        load_audio(tmp_path / "rec.hea", channel=5)
    (tmp_path / "rec.dat").unlink()
    with pytest.raises(AudioFileError, match=r"rec\.hea: not a readable WFDB record"):
        load_audio(tmp_path / "rec.hea")


def test_time_split_gives_each_split_its_own_stretch_of_every_record(tmp_path):
    write_record(tmp_path / "clean", "ecg", ecg_leads(100.0, 2))
    noise = np.random.default_rng(3).normal(0.0, 0.2, (int(100 * RATE), 2))
    write_record(tmp_path / "noise", "ma", noise, fmt="16")
    paths = [f"data.clean={tmp_path / 'clean'}", f"data.noise={tmp_path / 'noise'}"]
    cfg = compose_config(["data=ecg", "data.split_by=time", *paths]).data
    parts = {s: build_corpus(cfg, s, seed=0) for s in ("train", "valid", "test")}
    total = int(100 * RATE)
    assert [len(parts[s].clean[0]) for s in ("train", "valid", "test")] == [total - 2 * 3600, 3600, 3600]
    whole, _ = load_audio(tmp_path / "clean" / "ecg.hea", channel=0)
    joined = np.concatenate([parts[s].clean[0] for s in ("train", "valid", "test")])
    np.testing.assert_array_equal(joined, whole[0])  # contiguous, in order, nothing shared or dropped
    # noise is scaled to the clean recordings' RMS about their mean: the -0.3 mV offset is not signal power
    clean = parts["train"].clean[0]
    assert np.std(parts["train"].noise[0]) == pytest.approx(np.std(clean), rel=0.02)


def test_ecg_scores_ignore_a_dc_offset():
    beat = heartbeat_like(20.0, RATE, 4)
    peaks = beat.r_peaks[beat.r_peaks > RATE // 2]  # the detector may miss a beat in the first few hundred ms
    for offset in (0.0, -0.3, 0.8):
        scores = ecg_scores(beat.signal + offset, beat.signal + offset, RATE, peaks)
        assert scores["r_se"] == pytest.approx(1.0) and scores["r_amp_error"] == pytest.approx(0.0, abs=1e-9)
    halved = ecg_scores(0.5 * beat.signal - 0.3, beat.signal - 0.3, RATE, peaks)  # same baseline
    assert halved["r_se"] == pytest.approx(1.0) and halved["r_amp_error"] == pytest.approx(0.5, abs=0.02)
    shifted = ecg_scores(beat.signal + 0.5, beat.signal, RATE, beat.r_peaks)  # an offset is not in the heart's band
    assert shifted["band_snr"] > 40

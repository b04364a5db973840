"""`vocoder=world`: WORLD frames in, WORLD frames out, pyworld makes the waveform; MCD from SPTK mel-cepstra."""

import numpy as np
import pytest
import soundfile as sf
from vc_tiny import VC_TINY

from denoise_vc.checkpoint import load_checkpoint
from denoise_vc.cli import main
from denoise_vc.config import compose_config
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render
from denoise_vc.vc.features import FeatureSettings, clean_wave
from denoise_vc.vc.metrics import score_conversion
from denoise_vc.vc.vocoders import acoustic_frames, build_vocoder, frame_dims, free_running_distance, world_layout
from denoise_vc.vc.world import f0_of

RATE = 16000


def _settings(*extra: str) -> FeatureSettings:
    return FeatureSettings.from_config(compose_config(["vocoder=world", *extra], config_name="vc").data)


def _voice(speaker: str, seed: int = 3) -> np.ndarray:
    fs = _settings()
    return clean_wave(render(make_script(seed, 5), BUILTIN_SPEAKERS[speaker], RATE, seed), RATE, fs)


def test_world_frames_carry_the_voice_and_resynthesise_it():
    fs = _settings()
    x = _voice("f1")
    frames = acoustic_frames(x, fs)
    assert fs.hop_length == 80 and frames.shape == (1 + len(x) // 80, frame_dims(fs)) == (len(frames), 28)
    f0 = f0_of(frames, world_layout(fs))
    assert 0.3 < np.mean(f0 > 0) < 1.0  # voiced and unvoiced frames both present
    assert 170 < np.median(f0[f0 > 0]) < 270  # f1 speaks near 215 Hz
    vocoded = build_vocoder(fs)(frames)
    assert abs(len(vocoded) - len(x)) <= 2 * fs.hop_length
    n = min(len(x), len(vocoded))
    itself = score_conversion(vocoded[:n], x[:n], RATE)
    other = score_conversion(_voice("m1"), x, RATE)  # another speaker saying the same words
    assert itself["mcd_sptk"] < 4.0 and itself["f0_rmse_cents"] < 80 and itself["vuv_error"] < 0.15
    assert other["mcd_sptk"] > itself["mcd_sptk"] + 2.0 and other["f0_rmse_cents"] > 600
    assert other["mcd"] > itself["mcd"] + 2.0  # the WORLD-coded MCD agrees


def test_free_running_distance_forgives_timing_not_spectra():
    fs = _settings()
    frames = acoustic_frames(_voice("f1"), fs)
    assert free_running_distance(frames, frames, fs) == pytest.approx(0.0, abs=1e-9)
    slower = np.repeat(frames, 2, axis=0)  # the same sounds at half the speed: DTW absorbs it
    assert free_running_distance(slower, frames, fs) == pytest.approx(0.0, abs=1e-6)
    brighter = frames.copy()
    brighter[:, 1:25] += 0.05  # every cepstral coefficient off by 0.05: MCD = 10/ln10 * sqrt(2 * 24) * 0.05
    assert free_running_distance(brighter, frames, fs) == pytest.approx(10 / np.log(10) * np.sqrt(48) * 0.05, 1e-3)


def test_vc_train_and_convert_with_the_world_vocoder(tmp_path, capsys):
    common = [f"data.prepared_dir={tmp_path / 'prep'}", *VC_TINY, "vocoder=world"]
    assert main(["vc-train", f"run_dir={tmp_path / 'run'}", *common]) == 0
    assert "valid mcd" in capsys.readouterr().out  # the best checkpoint is chosen by free-running MCD
    ckpt = load_checkpoint(tmp_path / "run" / "best.pth", kind="vc")
    assert ckpt["model"]["args"]["n_mels"] == 28 and ckpt["config"]["data"]["vocoder"] == "world"
    assert np.isfinite(ckpt["meta"]["metrics"]["mcd"]) and ckpt["meta"]["metrics"]["mcd"] > 0
    stats = ckpt["meta"]["stats"]
    assert stats["target"]["lf0_mean"] - stats["source"]["lf0_mean"] > 0.4  # f1 above m1, kept apart
    source = tmp_path / "in" / "a.wav"
    source.parent.mkdir()
    sf.write(source, render(make_script(7, 4), BUILTIN_SPEAKERS["m1"], RATE, 7), RATE)
    assert (
        main(["convert", str(source.parent), "-o", str(tmp_path / "out"), "--vc", str(tmp_path / "run/best.pth")]) == 0
    )
    wave, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == RATE and len(wave) > 0.3 * RATE and np.isfinite(wave).all() and np.abs(wave).max() > 1e-3

"""`vc-slice`: silence cutting, overlapping chunks, loudness, F0 codes, resumable runs, bad inputs (generated audio)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import soundfile as sf

from denoise_vc.audio import resample
from denoise_vc.cli import main
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render
from denoise_vc.vc.slicing import (
    SliceSettings,
    chunk_bounds,
    coarse_f0,
    normalise_loudness,
    speech_segments,
)

RATE = 16000
MODEL_RATE = 40000
F1 = dataclasses.replace(BUILTIN_SPEAKERS["f1"], pause_prob=0.0)  # no natural pauses: islands are known exactly


def _island(seed: int, words: int, rate: int = RATE) -> np.ndarray:
    return render(make_script(seed, words), F1, rate, seed)


def _islands_file(rate: int = RATE) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Three voiced islands split by 0.8 s of digital silence and 1.0 s of low noise (-80 dBFS); the last one
    holds a 0.15 s digital pause, shorter than the 0.3 s threshold. (wave, [(start, end) s of each island])."""
    rng = np.random.default_rng(7)
    a, b, c = _island(1, 5, rate), _island(2, 4, rate), _island(3, 8, rate)
    half = len(c) // 2
    c = np.concatenate([c[:half], np.zeros(int(0.15 * rate), np.float32), c[half:]])
    noise = (1e-4 * rng.standard_normal(rate)).astype(np.float32)
    parts = [a, np.zeros(int(0.8 * rate), np.float32), b, noise, c]
    edges, t = [], 0
    for i, part in enumerate(parts):
        if i % 2 == 0:
            edges.append((t / rate, (t + len(part)) / rate))
        t += len(part)
    return np.concatenate(parts), edges


def test_silences_longer_than_the_threshold_are_cut_shorter_pauses_kept():
    wave, islands = _islands_file()
    settings = SliceSettings()
    segments = [(s / RATE, e / RATE) for s, e in speech_segments(wave, RATE, settings)]
    assert len(segments) == len(islands) == 3  # the 0.15 s pause inside the third island is not a cut
    for (s, e), (a, b) in zip(segments, islands):
        # each island's rendering has 0.1 s of lead-in and tail silence; at most keep_silence_s (0.1 s) is left
        assert a - 0.02 <= s <= a + 0.16 and b - 0.16 <= e <= b + 0.02, (s, e, a, b)
    finer = speech_segments(wave, RATE, dataclasses.replace(settings, min_silence_s=0.1))
    assert len(finer) == 4  # now the 0.15 s pause cuts too
    assert speech_segments(np.zeros(RATE, np.float32), RATE, settings) == []  # digital silence: no speech


@pytest.mark.parametrize("seconds", [0.7, 4.0, 4.01, 7.7, 11.3, 30.05])
def test_chunks_cover_the_segment_with_one_overlap_each(seconds):
    length = int(round(seconds * MODEL_RATE))
    bounds = chunk_bounds(length, MODEL_RATE, 4.0, 0.3)
    expected = 1 if seconds <= 4.0 else math.ceil((length - 0.3 * MODEL_RATE) / (3.7 * MODEL_RATE))
    assert len(bounds) == expected
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    sizes = [e - s for s, e in bounds]
    assert max(sizes) <= 4.0 * MODEL_RATE and max(sizes) - min(sizes) == 0  # equal chunks: no short tail
    if len(bounds) > 1:
        assert min(sizes) >= (4.0 + 0.3) / 2 * MODEL_RATE - 1
        overlaps = [a_end - b_start for (_, a_end), (b_start, _) in zip(bounds, bounds[1:])]
        assert all(abs(o - 0.3 * MODEL_RATE) <= 1 for o in overlaps), overlaps
    excess = sum(sizes) - length
    assert 0 <= excess <= len(bounds) * 0.3 * MODEL_RATE


def test_loudness_rule_never_clips():
    quiet = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.01
    out = normalise_loudness(quiet)
    assert np.max(np.abs(out)) == pytest.approx(0.9 * 0.75 + 0.25 * 0.01, rel=1e-4)  # RVC: alpha 0.75 mix to 0.9
    assert np.corrcoef(out, quiet)[0, 1] > 0.9999  # a gain, not a distortion
    loud = quiet * 200.0  # peak 2.0: a float input beyond full scale
    assert np.max(np.abs(normalise_loudness(loud))) <= 0.99 + 1e-6
    assert not normalise_loudness(np.zeros(100, np.float32)).any()


def test_coarse_f0_codes():
    f0 = np.array([0.0, 30.0, 50.0, 100.0, 215.0, 1100.0, 3000.0, 0.0])
    code = coarse_f0(f0)
    assert code.tolist()[0] == 0 and code[-1] == 0  # unvoiced: 0 (RVC would write 1)
    assert code[1] == 1 and code[2] == 1 and code[5] == 255 and code[6] == 255
    assert 1 < code[3] < code[4] < 255
    sweep = np.linspace(1.0, 1500.0, 3000)
    codes = coarse_f0(sweep)
    assert np.all(np.diff(codes) >= 0) and codes.min() >= 1 and codes.max() == 255  # monotone, 1..255


def _run(capsys, *argv):
    code = main(["vc-slice", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _stamps(out):
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def _write(path, wave, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate)


def test_end_to_end_outputs_and_f0(tmp_path, capsys):
    """Long segment through the CLI with harvest: chunk lengths, both rates, F0 files, the f1 voice's pitch."""
    wave = np.concatenate([_island(4, 18), np.zeros(RATE, np.float32), _island(5, 2)])  # ~8 s island, ~1 s one
    _write(tmp_path / "in" / "talk.wav", wave)
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, tmp_path / "in", "-o", out, "--f0", "harvest")
    assert code == 0 and "talk.wav: " in stdout and "1 sliced" in stdout
    record = json.loads((out / "manifest.json").read_text())["inputs"]["talk"]
    names = record["chunks"]
    assert record["segments"] == 2 and record["dropped"] == 0

    long_segment = speech_segments(resample(wave, RATE, MODEL_RATE), MODEL_RATE, SliceSettings())[0]
    length = long_segment[1] - long_segment[0]
    first = sorted(n for n in names if n.startswith("talk_0_"))
    assert len(first) == math.ceil((length - 0.3 * MODEL_RATE) / (3.7 * MODEL_RATE)) >= 2
    sizes = []
    voiced_hz = []
    for name in names:
        hi, hi_rate = sf.read(out / "wavs" / f"{name}.wav")
        lo, lo_rate = sf.read(out / "wavs16k" / f"{name}.wav")
        assert (hi_rate, lo_rate) == (MODEL_RATE, 16000)
        assert len(hi) <= 4.0 * MODEL_RATE and 0.5 < np.max(np.abs(hi)) <= 0.99
        assert abs(len(lo) * MODEL_RATE / 16000 - len(hi)) <= MODEL_RATE / 16000  # same duration, to a sample
        f0 = np.load(out / "f0" / f"{name}.npy")
        code = np.load(out / "f0_coarse" / f"{name}.npy")
        assert f0.shape == code.shape and abs(len(f0) - len(lo) / 160) <= 2  # 10 ms frames
        assert np.all((code >= 1) & (code <= 255) | (f0 == 0)) and np.all((code == 0) == (f0 == 0))
        assert (f0 > 0).mean() > 0.3
        order = np.argsort(f0[f0 > 0])
        assert np.all(np.diff(code[f0 > 0][order]) >= 0)  # higher Hz, higher or equal code
        voiced_hz.append(f0[f0 > 0])
        if name.startswith("talk_0_"):
            sizes.append(len(hi))
    excess = sum(sizes) - length
    assert 0 <= excess <= len(sizes) * 0.3 * MODEL_RATE + len(sizes)
    assert abs(np.median(np.concatenate(voiced_hz)) / 215.0 - 1) < 0.2  # the f1 voice is rendered at ~215 Hz


def test_rerun_skips_changed_input_redone_changed_setting_redoes_all(tmp_path, capsys):
    src = tmp_path / "in"
    _write(src / "a.wav", np.concatenate([_island(1, 5), np.zeros(RATE, np.float32), _island(2, 5)]))
    _write(src / "sub" / "a.wav", _island(3, 6), 22050)  # same stem in a subfolder: its own names
    (src / "metadata.csv").write_text("a|hello\n")  # a corpus' transcript table is not an input
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, src, "-o", out, "--f0", "dio")
    assert code == 0 and "2 sliced" in stdout
    manifest = json.loads((out / "manifest.json").read_text())["inputs"]
    assert set(manifest) == {"a", "sub__a"} and len(manifest["a"]["chunks"]) == 2
    before = _stamps(out)

    code, stdout, _ = _run(capsys, src, "-o", out, "--f0", "dio")
    assert code == 0 and stdout.count("skipped: up to date") == 2 and "0 sliced" in stdout
    assert _stamps(out) == before  # nothing rewritten, not even the manifest

    _write(src / "a.wav", _island(9, 4))  # now one segment: a_1_0 is stale
    (out / "wavs" / ".a_1_0.wav.k1ll3d.wav").write_bytes(b"RIFF")  # a temp file left by a killed run
    code, stdout, _ = _run(capsys, src, "-o", out, "--f0", "dio")
    assert code == 0 and "1 sliced" in stdout and "1 up to date" in stdout
    after = _stamps(out)
    for folder, ext in (("wavs", "wav"), ("wavs16k", "wav"), ("f0", "npy"), ("f0_coarse", "npy")):
        assert not (out / folder / f"a_1_0.{ext}").exists()
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"a_0_0.{ext}", f"sub__a_0_0.{ext}"]
        assert after[out / folder / f"sub__a_0_0.{ext}"] == before[out / folder / f"sub__a_0_0.{ext}"]
        assert after[out / folder / f"a_0_0.{ext}"] != before[out / folder / f"a_0_0.{ext}"]

    code, stdout, _ = _run(capsys, src, "-o", out, "--f0", "dio", "--chunk-s", "1.5")
    assert code == 0 and "2 sliced" in stdout and "0 up to date" in stdout
    manifest = json.loads((out / "manifest.json").read_text())["inputs"]
    assert all(len(r["chunks"]) >= 2 for r in manifest.values())
    on_disk = sorted(p.stem for p in (out / "wavs").iterdir())
    assert on_disk == sorted(n for r in manifest.values() for n in r["chunks"])  # old 4 s chunks removed
    assert all(len(sf.read(out / "wavs" / f"{n}.wav")[0]) <= 1.5 * MODEL_RATE for n in on_disk)


def test_bad_inputs_one_line_errors_others_go_on(tmp_path, capsys):
    src = tmp_path / "in"
    _write(src / "good.wav", _island(1, 4))
    (src / "x.wav").write_text("not audio")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, src, tmp_path / "missing.wav", "-o", out, "--f0", "dio")
    assert code == 3  # some failed, the rest processed
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2 and any("x.wav" in line for line in lines) and any("missing.wav" in line for line in lines)
    assert "Traceback" not in err and "good.wav: 1 chunks" in stdout
    assert (out / "wavs" / "good_0_0.wav").is_file()

    _write(src / "good.flac", _island(2, 3))  # good.flac would take good.wav's names
    code, _, err = _run(capsys, src / "good.wav", src / "good.flac", "-o", out, "--f0", "dio")
    assert code == 3 and "already those of" in err

    code, _, err = _run(capsys, tmp_path / "missing.wav", "-o", out)
    assert code == 1 and err.count("\n") == 1 and "missing.wav" in err

    for argv, needle in (
        ([src, "-o", src / "slices"], "inside the input folder"),
        ([src, "-o", src], "inside the input folder"),
        ([src, "-o", out, "--overlap-s", "5", "--chunk-s", "4"], "--overlap-s 5.0"),
        ([src, "-o", out, "--chunk-s", "nan"], "--chunk-s nan"),
        ([src, "-o", out, "--threshold-db", "6"], "--threshold-db 6.0"),
        ([src, "-o", out, "--rate", "0"], "--rate 0"),
    ):
        code, stdout, err = _run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and needle in err and stdout == "", (argv, err)
    assert not (src / "slices").exists()


def test_denoiser_front_end_is_part_of_the_settings(tmp_path, capsys):
    from denoise_vc.pretrained import shipped_models

    if "default" not in shipped_models():
        pytest.skip("no default denoiser installed with this copy of the package")
    rng = np.random.default_rng(3)
    noisy = _island(6, 4) + (0.01 * rng.standard_normal(len(_island(6, 4)))).astype(np.float32)
    _write(tmp_path / "in" / "n.wav", noisy)
    out = tmp_path / "out"
    argv = [tmp_path / "in", "-o", out, "--f0", "dio", "--device", "cpu"]
    code, stdout, _ = _run(capsys, *argv, "--denoiser", "default")
    assert code == 0 and "1 sliced" in stdout
    denoised = json.loads((out / "manifest.json").read_text())["inputs"]["n"]
    assert (out / "wavs" / "n_0_0.wav").is_file()
    code, stdout, _ = _run(capsys, *argv)  # without the front-end: a different setting, so redone
    assert code == 0 and "1 sliced" in stdout
    assert json.loads((out / "manifest.json").read_text())["inputs"]["n"]["settings"] != denoised["settings"]
    code, _, err = _run(capsys, *argv, "--denoiser", "nosuch")
    assert code == 1 and err.count("\n") == 1 and "--denoiser nosuch" in err

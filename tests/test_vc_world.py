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


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """A tiny `vocoder=world` model trained through the CLI (m1 -> f1 built-in speakers); its folder and output."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("world")
    common = [f"data.prepared_dir={tmp / 'prep'}", *VC_TINY, "vocoder=world"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["vc-train", f"run_dir={tmp / 'run'}", *common]) == 0
    return tmp, printed.getvalue()


def _source(folder, seed: int = 7):
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "a.wav", render(make_script(seed, 4), BUILTIN_SPEAKERS["m1"], RATE, seed), RATE)
    return folder


def _converted(vc: str, source, out, *extra: str) -> np.ndarray:
    """`convert` of the folder `source` (one file, a.wav) into `out`, read back."""
    assert main(["convert", str(source), "-o", str(out), "--vc", vc, *extra]) == 0
    return sf.read(out / "a.wav")[0]


def test_vc_train_and_convert_with_the_world_vocoder(world_run, tmp_path):
    run, printed = world_run
    assert "valid mcd" in printed  # the best checkpoint is chosen by free-running MCD
    ckpt = load_checkpoint(run / "run" / "best.pth", kind="vc")
    assert ckpt["model"]["args"]["n_mels"] == 28 and ckpt["config"]["data"]["vocoder"] == "world"
    assert np.isfinite(ckpt["meta"]["metrics"]["mcd"]) and ckpt["meta"]["metrics"]["mcd"] > 0
    stats = ckpt["meta"]["stats"]
    assert stats["target"]["lf0_mean"] - stats["source"]["lf0_mean"] > 0.4  # f1 above m1, kept apart
    source = _source(tmp_path / "in")
    assert main(["convert", str(source), "-o", str(tmp_path / "out"), "--vc", str(run / "run/best.pth")]) == 0
    wave, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == RATE and len(wave) > 0.3 * RATE and np.isfinite(wave).all() and np.abs(wave).max() > 1e-3


def test_mcd_sptk_selection_scores_the_vocoded_conversion(world_run, tmp_path, monkeypatch):
    """`solver.valid_metric=mcd_sptk`: each converted validation utterance goes through the vocoder and is scored
    as vc-evaluate scores it: a conversion that reproduces the target's frames scores 0 dB, one with a brighter
    envelope clearly more."""
    from denoise_vc.solvers.vc import build_vc_solver

    run, _ = world_run
    cfg = compose_config(
        [f"run_dir={tmp_path / 'run'}", f"data.prepared_dir={run / 'prep'}", *VC_TINY, "vocoder=world",
         "solver.valid_metric=mcd_sptk"], config_name="vc",
    )  # fmt: skip
    solver = build_vc_solver(cfg)
    shift = np.zeros(28, dtype=np.float32)
    shift[1:25] = 0.5  # half a standard deviation on every mel-cepstral coefficient

    def scored(offset: np.ndarray) -> float:
        monkeypatch.setattr(solver, "_infer", lambda item: item["tgt_mel"][0].numpy() + offset)
        return solver.free_running()["mcd_sptk"]

    assert scored(np.zeros(28, dtype=np.float32)) == pytest.approx(0.0, abs=1e-6)
    assert scored(shift) > 1.0
    assert set(solver.validate()) == {"loss", "mel_l1", "mcd_sptk"}


def test_retrieval_index_blends_in_the_target_speakers_frames(world_run, tmp_path, capsys):
    import json

    from denoise_vc.vc.retrieval import TargetIndex

    run, _ = world_run
    vc = str(run / "run" / "best.pth")
    targets = tmp_path / "f1"
    targets.mkdir()
    for seed in (11, 12, 13):
        sf.write(targets / f"t{seed}.wav", render(make_script(seed, 4), BUILTIN_SPEAKERS["f1"], RATE, seed), RATE)
    index_path = tmp_path / "f1.index"
    assert main(["vc-index", str(targets), "--vc", vc, "-o", str(index_path)]) == 0
    index = TargetIndex.load(index_path)
    assert index.meta["files"] == 3 and index.meta["dims"] == 24 and index.meta["frames"] > 500
    stored = index.index.reconstruct_n(0, 50)
    _, ids = index.index.search(stored, 4)
    assert (ids[:, 0] == np.arange(50)).all()  # each frame's own nearest neighbour is itself
    assert np.allclose(index.blend(stored, 1.0), stored, atol=1e-4)  # a real target frame is kept
    source = _source(tmp_path / "in")

    def convert(name: str, *extra: str) -> np.ndarray:
        return _converted(vc, source, tmp_path / name, *extra)

    plain = convert("plain")
    assert np.array_equal(convert("r0", "--index", str(index_path), "--index-rate", "0"), plain)
    retrieved = convert("r1", "--index", str(index_path), "--index-rate", "1")
    assert len(retrieved) == len(plain) and not np.allclose(retrieved, plain, atol=1e-3)
    capsys.readouterr()
    assert main(["convert", str(source), "-o", str(tmp_path / "x"), "--vc", vc, "--index", str(index_path),
                 "--index-rate", "1.5"]) == 1  # fmt: skip
    assert "--index-rate 1.5: must be in [0, 1]" in capsys.readouterr().err
    meta = json.loads(index_path.with_suffix(".index.json").read_text())
    index_path.with_suffix(".index.json").write_text(json.dumps(meta | {"stats": "another model"}))
    assert main(["convert", str(source), "-o", str(tmp_path / "y"), "--vc", vc, "--index", str(index_path)]) == 1
    assert "built with another VC model" in capsys.readouterr().err


def test_vc_gmm_fits_the_runs_train_pairs_and_convert_fuses_it(world_run, tmp_path, capsys):
    """`vc-gmm` fits the GMM on the checkpoint's own train pairs; `convert --gmm` blends its spectra in by the
    weight (0 keeps the wGMM's output exactly, 1 takes the GMM's spectra on the wGMM's timing)."""
    from denoise_vc.vc.fusion import matching_frames
    from denoise_vc.vc.gmm import JointDensityGMM
    from denoise_vc.vc.pipeline import Converter

    run, _ = world_run
    vc = str(run / "run" / "best.pth")
    gmm_path = tmp_path / "gmm.pt"
    fit = ["vc-gmm", "--vc", vc, "-o", str(gmm_path), "--mixtures", "1", "--max-iter", "20"]
    assert main(fit) == 0
    assert "on 4 train pairs" in capsys.readouterr().out  # VC_TINY's train split
    assert JointDensityGMM.load(gmm_path).meta["train_pairs"] == 4
    assert main(fit) == 1 and "exists (a GMM fit takes minutes); pass --overwrite" in capsys.readouterr().err
    source = _source(tmp_path / "in")

    def convert(name: str, *extra: str) -> np.ndarray:
        return _converted(vc, source, tmp_path / name, *extra)

    plain = convert("plain")
    assert np.array_equal(convert("w0", "--gmm", str(gmm_path), "--gmm-weight", "0"), plain)
    fused = convert("w5", "--gmm", str(gmm_path))  # default weight 0.5
    assert len(fused) == len(plain) and not np.allclose(fused, plain, atol=1e-3)
    wave, rate = sf.read(source / "a.wav")
    own = Converter(vc).convert_frames(wave, rate)
    taken = Converter(vc, gmm=gmm_path, gmm_weight=1.0).convert_frames(wave, rate)
    peer = JointDensityGMM.load(gmm_path).convert_frames(wave, rate)
    columns = slice(1, 25)
    assert np.allclose(taken[:, columns], peer[matching_frames(own, peer, columns), columns], atol=1e-4)
    assert np.array_equal(taken[:, 25:], own[:, 25:]) and np.array_equal(taken[:, 0], own[:, 0])  # F0, c0 kept
    capsys.readouterr()
    bad = ["convert", str(source), "-o", str(tmp_path / "x"), "--vc", vc, "--gmm", str(gmm_path), "--gmm-weight"]
    assert main([*bad, "1.5"]) == 1
    assert "fusion weight (--gmm-weight) must be a number in [0, 1], not 1.5" in capsys.readouterr().err
    assert main(["convert", str(source), "-o", str(tmp_path / "y"), "--vc", vc, "--gmm", vc]) == 1
    assert "is a 'vc' checkpoint, expected 'vc_gmm'" in capsys.readouterr().err


def test_world_analysis_prints_no_dependency_warning():
    """pyworld's import warns that pkg_resources is deprecated; every `convert` used to print it to the user."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error');"
        "import numpy as np; from denoise_vc.vc.metrics import score_conversion;"
        "t = np.arange(16000) / 16000; x = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(9 * t));"
        "scores = score_conversion(x, x, 16000); print(scores['mcd'] < 0.1, scores['f0_rmse_cents'] < 1)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["True", "True"] and done.stderr == ""

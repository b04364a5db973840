"""`data.front_end`: noise-robust VC training on sources that are also noisy-then-denoised. Tiny generated
corpus, a near-identity denoiser (so a copy's source is the clean source plus the mixed noise) and white noise."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from bad_inputs import tiny_checkpoint
from test_evaluate_folders import _identity
from vc_tiny import vc_overrides

from denoise_vc.cli import main
from denoise_vc.config import compose_config
from denoise_vc.data.noises import generate_noise
from denoise_vc.errors import ConfigError
from denoise_vc.vc.corpus import build_pairs
from denoise_vc.vc.front_end import noisy_copy, with_front_end
from denoise_vc.vc.prepare import prepare

IDENTITY = ["model=wave_unet", "model.levels=3", "model.channels_interval=4"]


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((noisy - clean) ** 2)))


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    root = tmp_path_factory.mktemp("front_end")
    (root / "noise").mkdir()
    for i in range(2):
        sf.write(root / "noise" / f"n{i}.wav", generate_noise("white", 3.0, 16000, seed=i), 16000, subtype="FLOAT")
    return root, tiny_checkpoint(root / "identity.pth", model_overrides=IDENTITY, edit=_identity)


def front_cfg(tmp_path, root, checkpoint, *extra):
    settings = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}", *extra]
    return compose_config(vc_overrides(tmp_path, *settings), config_name="vc")


def test_noisy_copy_hits_its_snr_range_and_repeats_with_its_seed():
    clean = np.sin(np.linspace(0, 300, 8000)).astype(np.float32)
    noises = [generate_noise("pink", 2.0, 16000, seed=3)]
    levels = [snr_db(clean, noisy_copy(clean, noises, (2.0, 8.0), seed)) for seed in range(20)]
    assert all(2.0 - 1e-3 <= level <= 8.0 + 1e-3 for level in levels) and np.std(levels) > 0.5
    assert np.array_equal(noisy_copy(clean, noises, (2.0, 8.0), 7), noisy_copy(clean, noises, (2.0, 8.0), 7))


def test_train_and_valid_sources_come_again_noisy_then_denoised(tmp_path, front):
    root, checkpoint = front
    cfg = front_cfg(tmp_path, root, checkpoint, "data.front_end.copies=2", "data.front_end.snr_db=[5,5]")
    pairs = {p.name: p for p in with_front_end(build_pairs(cfg.data, 0), cfg.data, 0, "cpu")}
    assert sorted(n for n in pairs if n.startswith("test")) == ["test_0000", "test_0001"]  # never augmented
    assert {n for n in pairs if ".den" in n} == {f"{s}.den{k}" for s in ("train_0000", "train_0001",
        "train_0002", "train_0003", "valid_0000") for k in (0, 1)}  # fmt: skip
    clean, rate = pairs["train_0001"].source()
    copies = [pairs[f"train_0001.den{k}"].source() for k in (0, 1)]
    assert all(r == rate for _, r in copies)
    # the near-identity front-end leaves the 5 dB mixture: clean + noise at 5 dB (tanh bends it slightly)
    assert all(abs(snr_db(clean, copy) - 5.0) < 0.5 for copy, _ in copies)
    assert not np.allclose(copies[0][0], copies[1][0])  # each copy its own noise cut
    assert np.array_equal(copies[0][0], pairs["train_0001.den0"].source()[0])  # and the same one every time
    assert np.array_equal(pairs["train_0001.den0"].target()[0], pairs["train_0001"].target()[0])  # clean target


def test_prepare_adds_the_copies_and_follows_the_front_ends_weights(tmp_path, front):
    root, checkpoint = front
    cfg = front_cfg(tmp_path, root, checkpoint, "data.front_end.copies=1")
    manifest = prepare(cfg, progress=False)
    assert {k: len(v) for k, v in manifest["splits"].items()} == {"train": 8, "valid": 2, "test": 2}
    assert "valid_0000.den0" in manifest["splits"]["valid"]
    features = tmp_path / "vc_prep" / "features"
    with np.load(features / "train_0000.npz") as plain, np.load(features / "train_0000.den0.npz") as copy:
        assert np.array_equal(plain["tgt_mel"], copy["tgt_mel"])
        source, noisy = plain["src_mel"], copy["src_mel"]  # the noise shows in the source (and in its trimming)
        assert source.shape != noisy.shape or not np.allclose(source, noisy)
    assert prepare(cfg, progress=False)["computed"] == 0
    tiny_checkpoint(checkpoint.parent / "other.pth")  # other weights under the same name: a new front-end
    checkpoint.with_name("other.pth").replace(checkpoint)
    try:
        assert prepare(cfg, progress=False)["computed"] == 12
    finally:
        tiny_checkpoint(checkpoint, model_overrides=IDENTITY, edit=_identity)


def test_vc_prepare_reports_the_copies(tmp_path, front, capsys):
    root, checkpoint = front
    settings = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}"]
    assert main(["vc-prepare", *vc_overrides(tmp_path, *settings, "data.front_end.copies=2")]) == 0
    assert "prepared 12 train, 3 valid, 2 test pairs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, says",
    [
        (["data.front_end.noise=null"], "data.front_end.noise: a folder of noise recordings is needed"),
        (["data.front_end.noise=/no/such/folder"], "data.front_end.noise=/no/such/folder: folder not found"),
        (["data.front_end.snr_db=[10,5]"], "data.front_end.snr_db=[10, 5]: expected [low, high]"),
        (["data.front_end.snr_db=[nan,5]"], "data.front_end.snr_db"),
        (["data.front_end.snr_db=[loud,5]"], "data.front_end.snr_db=['loud', 5]: expected [low, high]"),
        (["data.front_end.snr_db=[1,2,3]"], "data.front_end.snr_db=[1, 2, 3]: expected [low, high]"),
        (["data.front_end.denoiser=/no/such.pth"], "data.front_end.denoiser=/no/such.pth: checkpoint not found"),
    ],
)
def test_bad_front_end_settings_are_one_line(tmp_path, front, extra, says):
    root, checkpoint = front
    with pytest.raises(ConfigError, match=None) as error:
        prepare(front_cfg(tmp_path, root, checkpoint, *extra), progress=False)
    assert says in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "vc_prep" / "features").exists()  # refused before anything is written


def test_an_empty_noise_folder_is_refused(tmp_path, front):
    root, checkpoint = front
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .wav/.flac/.ogg files"):
        prepare(front_cfg(tmp_path, root, checkpoint, f"data.front_end.noise={tmp_path / 'empty'}"), progress=False)


def test_vc_train_behind_a_front_end_converts_denoised_input(tmp_path, front, capsys):
    from denoise_vc.vc.pipeline import Converter

    root, checkpoint = front
    settings = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}"]
    assert main(["vc-train", *vc_overrides(tmp_path, *settings, "data.front_end.copies=1", "solver.epochs=1")]) == 0
    converter = Converter(tmp_path / "vc_run" / "best.pth", denoiser=checkpoint)
    assert converter.cfg.data.front_end.denoiser == str(checkpoint)  # the checkpoint says what it trained behind
    pair = build_pairs(converter.cfg.data, 0)[-1]
    noisy = noisy_copy(pair.source()[0], [generate_noise("white", 3.0, 16000, seed=5)], (5.0, 5.0), seed=1)
    converted = converter.convert(noisy, 16000)
    assert converted.ndim == 1 and len(converted) > 0.5 * len(noisy) and np.isfinite(converted).all()
    source = tmp_path / "source.wav"
    sf.write(source, pair.source()[0], 16000)
    assert (
        main(["convert", str(source), "-o", str(tmp_path / "out"), "--vc", str(tmp_path / "vc_run" / "best.pth")]) == 0
    )
    assert f"trained behind the denoiser {checkpoint}; for noisy input pass --denoiser" in capsys.readouterr().err


def test_validation_scores_clean_and_denoised_sources_apart_and_weighs_them(tmp_path, front):
    """Behind a front-end the history shows each form's free-running distance; `solver.valid_denoised_weight`
    moves the selection metric between them (0: the clean median alone, 1: the denoised median alone)."""
    import json

    root, checkpoint = front
    settings = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}"]
    settings += ["data.front_end.copies=1", "data.builtin.utterances.valid=3", "solver.valid_metric=mel_dtw"]
    rows = {}
    for weight in ("null", "0", "1"):
        run = tmp_path / f"w{weight}"
        overrides = vc_overrides(tmp_path, *settings, "solver.epochs=1", f"solver.valid_denoised_weight={weight}")
        assert main(["vc-train", *overrides, f"run_dir={run}"]) == 0
        rows[weight] = json.loads((run / "history.json").read_text())[0]
    pooled = rows["null"]
    clean, denoised = pooled["valid_mel_dtw_clean"], pooled["valid_mel_dtw_denoised"]
    assert clean != denoised and min(clean, denoised) <= pooled["valid_mel_dtw"] <= max(clean, denoised)
    for weight, form in (("0", "clean"), ("1", "denoised")):  # same seed, same weights: only the metric differs
        assert rows[weight][f"valid_mel_dtw_{form}"] == pytest.approx(pooled[f"valid_mel_dtw_{form}"], rel=1e-5)
        assert rows[weight]["valid_mel_dtw"] == pytest.approx(rows[weight][f"valid_mel_dtw_{form}"], rel=1e-9)
    bad = vc_overrides(tmp_path, *settings, "solver.valid_denoised_weight=1.5", f"run_dir={tmp_path / 'bad'}")
    assert main(["vc-train", *bad]) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs data.front_end.denoiser"),  # nothing to weigh: the setting would do nothing
        (["FRONT", "solver.valid_metric=mel_l1"], "needs a free-running solver.valid_metric"),
    ],
)
def test_a_denoised_weight_that_would_do_nothing_is_refused(tmp_path, front, capsys, extra, message):
    root, checkpoint = front
    if extra[:1] == ["FRONT"]:
        extra = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}", *extra[1:]]
    overrides = vc_overrides(tmp_path, *extra, "solver.valid_denoised_weight=0.5")
    assert main(["vc-train", *overrides]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not (tmp_path / "vc_run").exists()


def test_vc_gmm_on_a_robust_run_fits_its_denoised_copies_too(tmp_path, front, capsys):
    """A GMM fused into a noise-robust model must have heard the same front-end: `vc-gmm` fits on the run's
    train pairs including data.front_end's noisy-then-denoised copies."""
    from denoise_vc.vc.gmm import JointDensityGMM

    root, checkpoint = front
    settings = [f"data.front_end.denoiser={checkpoint}", f"data.front_end.noise={root / 'noise'}"]
    settings += ["data.front_end.copies=1", "solver.epochs=1", "vocoder=world"]
    assert main(["vc-train", *vc_overrides(tmp_path, *settings)]) == 0
    capsys.readouterr()
    run = tmp_path / "vc_run"
    assert main(["vc-gmm", "--vc", str(run / "best.pth"), "--mixtures", "1", "--max-iter", "10"]) == 0
    printed = capsys.readouterr().out
    assert "on 8 train pairs" in printed and "(4 of them noisy-then-denoised copies" in printed
    assert JointDensityGMM.load(run / "gmm.pt").meta["train_pairs"] == 8  # written beside the checkpoint

import json

import numpy as np
import pytest
import soundfile as sf
from vc_tiny import VC_TINY

from denoise_vc.checkpoint import save_checkpoint
from denoise_vc.cli import main
from denoise_vc.config import compose_config, model_args, to_plain
from denoise_vc.solvers.factory import build_denoiser
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render


@pytest.fixture(scope="module")
def vc_run(tmp_path_factory):
    """vc-prepare then vc-train through the CLI on the tiny generated corpus; returns the run folder."""
    tmp = tmp_path_factory.mktemp("vc_cli")
    common = [f"data.prepared_dir={tmp / 'prep'}", *VC_TINY]
    assert main(["vc-prepare", *common]) == 0
    assert main(["vc-train", f"run_dir={tmp / 'run'}", *common]) == 0
    return tmp


def _speech(path, seed, rate=16000):
    sf.write(path, render(make_script(seed, 3), BUILTIN_SPEAKERS["m1"], rate, seed), rate)


def test_convert_files_and_folders_end_to_end(vc_run, tmp_path, capsys):
    ckpt = vc_run / "run" / "best.pth"
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    _speech(inputs / "a.wav", 1, 22050)
    _speech(inputs / "sub" / "b.wav", 2)
    before = {p: p.read_bytes() for p in inputs.rglob("*.wav")}
    assert main(["convert", str(inputs), "-o", str(tmp_path / "out"), "--vc", str(ckpt)]) == 0
    for rel in ("a.wav", "sub/b.wav"):
        wave, rate = sf.read(tmp_path / "out" / rel)
        assert rate == 16000 and len(wave) > 0.3 * rate and np.isfinite(wave).all() and np.abs(wave).max() > 1e-4
    assert {p: p.read_bytes() for p in inputs.rglob("*.wav")} == before  # inputs untouched
    assert main(["convert", str(inputs / "a.wav"), "-o", str(tmp_path / "one"), "--vc", str(ckpt)]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["a.wav"]

    assert main(["vc-evaluate", "--vc", str(ckpt), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "source->target" in out and "converted->target" in out
    results = json.loads((tmp_path / "m.json").read_text())["results"]
    assert results["source"]["mcd"] > 5 and np.isfinite(results["converted"]["mcd"])


def _tiny_denoiser(overrides, path):
    """An untrained tiny wave_unet saved as a denoiser checkpoint (the pipeline, not its quality, is tested)."""
    cfg = compose_config(overrides)
    model = build_denoiser(cfg.model, 0)
    name, args = model_args(cfg.model)
    payload = {"kind": "denoiser", "model": {"name": name, "args": args}, "state_dict": model.state_dict()}
    save_checkpoint(payload | {"config": to_plain(cfg), "meta": {"sample_rate": 16000}}, path)
    return str(path)


def test_convert_with_a_denoiser_first(vc_run, tiny_overrides, tmp_path):
    denoiser = _tiny_denoiser(tiny_overrides, tmp_path / "denoiser.pth")
    _speech(tmp_path / "noisy.wav", 3)
    args = ["convert", str(tmp_path / "noisy.wav"), "-o", str(tmp_path / "out"), "--vc", str(vc_run / "run/best.pth")]
    assert main([*args, "--denoiser", denoiser]) == 0
    wave, rate = sf.read(tmp_path / "out" / "noisy.wav")
    assert rate == 16000 and np.isfinite(wave).all() and len(wave) > 0
    # the checkpoints cannot be swapped: each one is refused as the wrong kind
    assert main(["convert", str(tmp_path / "noisy.wav"), "-o", str(tmp_path / "x"), "--vc", denoiser]) == 1
    assert not (tmp_path / "x").exists()


def test_convert_takes_the_shipped_denoiser_by_name(vc_run, tmp_path, capsys):
    """`--denoiser default` is the shipped model, as for vc-slice and data.front_end.denoiser (the note that
    `convert` prints for a noise-robust model suggests exactly that value)."""
    _speech(tmp_path / "noisy.wav", 4)
    args = ["convert", str(tmp_path / "noisy.wav"), "--vc", str(vc_run / "run/best.pth")]
    assert main([*args, "-o", str(tmp_path / "out"), "--denoiser", "default"]) == 0
    wave, rate = sf.read(tmp_path / "out" / "noisy.wav")
    assert rate == 16000 and np.isfinite(wave).all() and len(wave) > 0.3 * rate
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "x"), "--denoiser", "nosuch"]) == 1
    assert "--denoiser nosuch: no shipped model named 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_folder_with_bad_files_converts_the_good_ones(vc_run, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _speech(folder / "good.wav", 4)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    code = main(["convert", str(folder), "-o", str(tmp_path / "out"), "--vc", str(vc_run / "run/best.pth")])
    err = capsys.readouterr().err
    assert code == 3 and "broken.wav" in err and "1 of 2 files converted" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]


def _pairs(root, names_src, names_tgt):
    for side, names in (("source", names_src), ("target", names_tgt)):
        (root / side).mkdir(parents=True)
        for i, name in enumerate(names):
            _speech(root / side / name, 10 + i)


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda root: _pairs(root, ["a.wav", "b.wav"], ["a.wav", "c.wav"]), "no partner"),
        (lambda root: (_pairs(root, ["a.wav"], ["a.wav"]), (root / "target" / "a.wav").write_bytes(b"junk")), "a.wav"),
        (lambda root: None, "folder not found"),
    ],
)
def test_vc_prepare_refuses_bad_folders_without_writing(setup, message, tmp_path, capsys):
    root = tmp_path / "corpus"
    setup(root)
    prep = tmp_path / "prep"
    args = [
        "vc-prepare",
        f"data.source={root / 'source'}",
        f"data.target={root / 'target'}",
        f"data.prepared_dir={prep}",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not prep.exists() or not any(prep.rglob("*"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["convert", "missing.wav", "-o", "OUT", "--vc", "nope.pth"], "nope.pth: checkpoint not found"),
        (["vc-evaluate", "--vc", "nope.pth"], "nope.pth: checkpoint not found"),
        (["vc-train", "run_dir=OUT", "data.prepared_dir=OUT", "data.source_speaker=zz"], "not a built-in speaker"),
    ],
)
def test_user_errors_are_one_line(args, message, tmp_path, capsys):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_input_file_is_reported(vc_run, tmp_path, capsys):
    code = main(
        ["convert", str(tmp_path / "gone.wav"), "-o", str(tmp_path / "out"), "--vc", str(vc_run / "run/best.pth")]
    )
    assert code == 1 and "gone.wav: file not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_silent_and_very_short_inputs_convert_to_finite_audio(vc_run, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    sf.write(folder / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(folder / "short.wav", 0.1 * np.random.default_rng(0).standard_normal(400).astype(np.float32), 16000)
    assert main(["convert", str(folder), "-o", str(tmp_path / "out"), "--vc", str(vc_run / "run/best.pth")]) == 0
    for name in ("silent.wav", "short.wav"):
        wave, _ = sf.read(tmp_path / "out" / name)
        assert len(wave) > 0 and np.isfinite(wave).all()

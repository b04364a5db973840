"""`denoise-vc evaluate --noisy DIR [--clean DIR]`: real recordings scored through the `denoise` path, the noisy
input beside the output, per file and the mean; DNSMOS without references. Generated pairs, tiny checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from bad_inputs import tiny_checkpoint

from denoise_vc.cli import main
from denoise_vc.data.mixing import mix
from denoise_vc.data.noises import generate_noise
from denoise_vc.data.synth import speech_like
from denoise_vc.metrics import score_pair

# name -> (SNR of the mix in dB, sample rate); the 22.05 kHz pair goes through both resamplers and PESQ at 16 kHz
PAIRS = {"a": (5.0, 16000), "b": (10.0, 16000), "c": (0.0, 22050)}
METRICS = ("si_sdr", "pesq", "stoi", "estoi")


def _identity(model) -> None:
    """The Wave-U-Net's last 1x1 conv reads the input channel only: output = tanh(input), almost the input."""
    conv = model.out[0]
    conv.weight.zero_()
    conv.weight[0, -1, 0] = 1.0
    conv.bias.zero_()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    for side in ("noisy", "clean"):
        (root / side).mkdir()
    for i, (name, (snr, rate)) in enumerate(PAIRS.items()):
        clean = speech_like(2.5, rate, seed=i)
        clean = 0.1 * clean / np.abs(clean).max()  # quiet enough that tanh(x) is x within -40 dB
        noisy = mix(clean, generate_noise("white", 2.5, rate, seed=10 + i), snr_db=snr)
        sf.write(root / "clean" / f"{name}.wav", clean, rate, subtype="FLOAT")
        sf.write(root / "noisy" / f"{name}.wav", noisy, rate, subtype="FLOAT")
    sf.write(root / "clean" / "orphan.wav", speech_like(1.0, 16000, seed=9), 16000)  # no noisy partner: ignored
    identity = tiny_checkpoint(
        root / "identity.pth",
        model_overrides=["model=wave_unet", "model.levels=3", "model.channels_interval=4"],
        edit=_identity,
    )
    return root, identity, tiny_checkpoint(root / "random.pth")  # an untrained conv AE: not the identity


def _evaluate(root, checkpoint, json_name, *extra):
    out = root / json_name
    args = ["--checkpoint", str(checkpoint), "--noisy", str(root / "noisy"), *extra, "--json", str(out)]
    assert main(["evaluate", *args]) == 0
    return json.loads(out.read_text())


def test_pairs_score_noisy_beside_output_and_the_mean_is_the_mean_of_the_files(data, capsys):
    root, identity, _ = data
    result = _evaluate(root, identity, "identity.json", "--clean", str(root / "clean"))
    table = capsys.readouterr().out
    assert result["mode"] == "reference" and set(result["files"]) == {"a.wav", "b.wav", "c.wav"}
    for header in ("SI-SDR in", "SI-SDR out", "PESQ in", "PESQ out", "STOI in", "STOI out", "ESTOI in", "ESTOIi"):
        assert header in table
    assert "PESQ wb (ITU-T P.862.2) and STOI and ESTOI at 16 kHz (resampled from 22050 Hz" in table
    assert "1 clean file without a noisy partner ignored" in table
    assert [line.split()[0] for line in table.splitlines() if line.split()[:1] in (["a.wav"], ["mean"])] == [
        "a.wav",
        "mean",
    ]
    for name, row in result["files"].items():
        snr, rate = PAIRS[name.removesuffix(".wav")]
        assert row["sample_rate"] == rate and row["seconds"] == pytest.approx(2.5)
        assert row["si_sdr_noisy"] == pytest.approx(snr, abs=0.5)  # the SNR it was mixed at
        assert 1.0 <= row["pesq_noisy"] <= 4.6 and 0.0 < row["stoi_noisy"] <= 1.0 and row["estoi_noisy"] <= 1.0
        for key in METRICS:
            assert row[f"{key}_i"] == pytest.approx(row[key] - row[f"{key}_noisy"])
        if rate == 16000:  # an identity model leaves the input as it was
            assert row["si_sdr"] == pytest.approx(row["si_sdr_noisy"], abs=0.5)
            assert row["pesq"] == pytest.approx(row["pesq_noisy"], abs=0.1)
            assert row["stoi"] == pytest.approx(row["stoi_noisy"], abs=0.01)
    for key, value in result["mean"].items():
        assert value == pytest.approx(np.mean([row[key] for row in result["files"].values()]))
    assert set(result["mean"]) == {f"{k}{s}" for k in METRICS for s in ("", "_noisy", "_i")}


def test_the_scored_output_is_what_denoise_writes(data, tmp_path, capsys):
    root, _, random = data
    result = _evaluate(root, random, "random.json", "--clean", str(root / "clean"))
    assert main(["denoise", str(root / "noisy"), "-o", str(tmp_path), "--checkpoint", str(random)]) == 0
    for name, row in result["files"].items():
        out, rate = sf.read(tmp_path / name, dtype="float32")
        clean, _ = sf.read(root / "clean" / name, dtype="float32")
        noisy, _ = sf.read(root / "noisy" / name, dtype="float32")
        expected = score_pair(out, clean, noisy, rate, extended=True)
        assert row["si_sdr"] < row["si_sdr_noisy"] - 10  # an untrained model: far from its input
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, abs=1e-6), key


def test_dnsmos_without_references(data, tmp_path, capsys):
    root, identity, _ = data
    folder = tmp_path / "noisy"
    folder.mkdir()
    speech = speech_like(3.0, 16000, seed=3)
    speech = 0.1 * speech / np.abs(speech).max()
    sf.write(folder / "speech.wav", speech, 16000)
    sf.write(folder / "speech_in_noise.flac", mix(speech, generate_noise("white", 3.0, 16000, 5), snr_db=0), 16000)
    out = tmp_path / "dnsmos.json"
    assert main(["evaluate", "--checkpoint", str(identity), "--noisy", str(folder), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "DNSMOS P.835" in table and "OVRL in" in table and "BAK out" in table
    result = json.loads(out.read_text())
    assert result["mode"] == "dnsmos" and result["clean"] is None
    files = result["files"]
    for row in files.values():
        for key in ("sig", "bak", "ovrl"):
            assert 1.0 <= row[key] <= 5.0 and 1.0 <= row[f"{key}_noisy"] <= 5.0
            assert row[key] == pytest.approx(row[f"{key}_noisy"], abs=0.15)  # the identity changes nothing
    clean, noisy = files["speech.wav"], files["speech_in_noise.flac"]
    assert clean["ovrl_noisy"] > noisy["ovrl_noisy"] + 0.5 and clean["bak_noisy"] > noisy["bak_noisy"] + 1.0
    assert result["mean"]["ovrl"] == pytest.approx((clean["ovrl"] + noisy["ovrl"]) / 2)


def test_dnsmos_says_in_one_line_what_is_missing(data, monkeypatch, capsys):
    import sys

    from denoise_vc import dnsmos

    root, identity, _ = data
    args = ["evaluate", "--checkpoint", str(identity), "--noisy", str(root / "noisy"), "--json", str(root / "x.json")]
    dnsmos._scorer.cache_clear()
    try:
        monkeypatch.setitem(sys.modules, "speechmos", None)  # as if not installed
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pip install speechmos onnxruntime" in err[0]
        monkeypatch.delitem(sys.modules, "speechmos")
        monkeypatch.setattr(dnsmos, "MODEL_FILES", ("sig_bak_ovr_missing.onnx", "model_v8.onnx"))
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "sig_bak_ovr_missing.onnx: DNSMOS model file missing" in err[0]
    finally:
        dnsmos._scorer.cache_clear()
    assert not (root / "x.json").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--clean", "{root}/clean"], "--clean needs --noisy DIR"),
        (["--noisy", "{root}/noisy", "--gains", "0.5"], "apply to the test set, not to --noisy folders"),
        (["--noisy", "{root}/noisy", "--clean", "{root}/missing"], "clean folder not found"),
        (["--noisy", "{root}/noisy/a.wav", "--clean", "{root}/clean"], "is a file, --noisy takes a folder"),
    ],
)
def test_folder_mode_argument_errors(data, args, message, capsys):
    root, identity, _ = data
    argv = ["evaluate", "--checkpoint", str(identity), *(a.format(root=root) for a in args)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_without_a_checkpoint_the_shipped_default_is_used_or_its_absence_said(data, tmp_path, monkeypatch, capsys):
    import denoise_vc.pretrained as pretrained

    root, _, _ = data
    monkeypatch.setattr(pretrained, "HERE", tmp_path)  # a package with no shipped models
    for argv in (["evaluate"], ["evaluate", "--noisy", str(root / "noisy"), "--clean", str(root / "clean")]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no shipped model named 'default'" in err[0]

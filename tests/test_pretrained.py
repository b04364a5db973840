"""The model shipped with the package: found without --checkpoint, described by `models`, and it helps a real
recording it never heard (LibriSpeech dev-clean speech + a real tap-noise stretch at 5 dB)."""

import json
import zipfile

import numpy as np
import pytest
import soundfile as sf

from denoise_vc.checkpoint import load_checkpoint
from denoise_vc.cli import main
from denoise_vc.errors import CheckpointError
from denoise_vc.metrics import pesq_score, si_sdr, stoi_score
from denoise_vc.pretrained import EXAMPLE_CLEAN, EXAMPLE_NOISY, HERE, resolve_checkpoint, shipped_models


def test_the_default_model_is_installed_small_and_described():
    models = shipped_models()
    assert "default" in models
    card = models["default"]
    assert (HERE / "default.pth").stat().st_size < 3 * 2**20  # a few MB at most
    ckpt = load_checkpoint(HERE / "default.pth")
    assert ckpt["kind"] == "denoiser" and ckpt["meta"]["sample_rate"] == card["sample_rate"] == 16000
    assert "noise_noncommercial" not in json.dumps(ckpt["config"]) and "test-other" not in card["training_data"]
    assert {"0 dB", "15 dB"} <= set(card["metrics"]) and "recipe" in card
    assert resolve_checkpoint(None) == resolve_checkpoint("default") == HERE / "default.pth"
    with pytest.raises(CheckpointError, match="no shipped model named 'nope'"):
        resolve_checkpoint("nope")


def test_models_lists_the_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("default (used when --checkpoint is not given)") and "training data:" in out


def test_denoise_without_a_checkpoint_improves_a_real_recording(tmp_path):
    assert main(["denoise", str(EXAMPLE_NOISY), "-o", str(tmp_path)]) == 0
    denoised, rate = sf.read(tmp_path / EXAMPLE_NOISY.name, dtype="float32")
    clean, _ = sf.read(EXAMPLE_CLEAN, dtype="float32")
    noisy, _ = sf.read(EXAMPLE_NOISY, dtype="float32")
    assert rate == 16000 and denoised.shape == noisy.shape and np.all(np.isfinite(denoised))
    assert pesq_score(denoised, clean, rate) > pesq_score(noisy, clean, rate) + 0.2
    assert stoi_score(denoised, clean, rate) > stoi_score(noisy, clean, rate) + 0.01
    assert si_sdr(denoised, clean) > si_sdr(noisy, clean) + 3.0


def test_the_shipped_model_exports_by_name_for_a_client(tmp_path, capsys):
    """A client bundle of the model that works with no training: `export --checkpoint default`."""
    bundle = tmp_path / "default.zip"
    assert main(["export", "--checkpoint", "default", "-o", str(bundle)]) == 0
    assert main(["export", "--verify", str(bundle)]) == 0
    assert "OK, standalone output matches the package" in capsys.readouterr().out
    with zipfile.ZipFile(bundle) as archive:  # the client gets the card: attribution and real-input scores
        readme = archive.read("README.md").decode()
    card = shipped_models()["default"]
    assert card["licence"] in readme and card["training_data"] in readme
    five = card["metrics"]["5 dB"]
    assert f"| 5 dB | {five['pesq']:.3f} / {five['pesq_noisy']:.3f} |" in readme
    assert main(["export", "--checkpoint", "nope", "-o", str(tmp_path / "x.zip")]) == 1
    assert "no shipped model named 'nope'" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()

"""The joint-density GMM (denoise_vc.vc.gmm): it converts one generated voice into another, its posterior is
scikit-learn's, it saves as plain arrays that load with weights_only=True, and it refuses what it cannot fuse."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
import torch

from denoise_vc.config import compose_config
from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render
from denoise_vc.vc.features import FeatureSettings, clean_wave
from denoise_vc.vc.gmm import JointDensityGMM, mlpg, static_delta
from denoise_vc.vc.metrics import score_conversion
from denoise_vc.vc.vocoders import build_vocoder

RATE = 16000


def _settings() -> FeatureSettings:
    return FeatureSettings.from_config(compose_config(["vocoder=world"], config_name="vc").data)


def _pair(seed: int) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    """m1 and f1 (built-in voices an octave apart with other formants) saying the same words."""
    script = make_script(seed, 5)
    source, target = (render(script, BUILTIN_SPEAKERS[name], RATE, seed) for name in ("m1", "f1"))
    return (source, RATE), (target, RATE)


@pytest.fixture(scope="module")
def fitted() -> JointDensityGMM:
    lines: list[str] = []
    gmm = JointDensityGMM.fit(
        [_pair(seed) for seed in range(6)], _settings(), mixtures=2, max_iter=30, log=lines.append
    )
    assert len(lines) == 3 and all("joint frames" in line for line in lines)  # three alignment rounds
    return gmm


def test_the_gmm_converts_one_voice_towards_another(fitted):
    fs = _settings()
    vocoder = build_vocoder(fs)
    for seed in (100, 101):  # sentences never fitted on
        (source, _), (target, _) = _pair(seed)
        target = clean_wave(target, RATE, fs)
        converted = vocoder(fitted.convert_frames(source, RATE))
        before = score_conversion(clean_wave(source, RATE, fs), target, RATE)
        after = score_conversion(converted, target, RATE)
        assert after["mcd_sptk"] < before["mcd_sptk"] - 3.0, (before, after)  # measured 5.5 and 7.1 dB lower
        assert after["f0_rmse_cents"] < 0.3 * before["f0_rmse_cents"], (before, after)  # the octave is moved


def test_mlpg_solves_the_normal_equations_of_the_static_delta_window():
    """The banded solver against the textbook dense form: o = W y with o_t = [y_t; y_t - y_{t-1}] (y_{-1} = 0),
    y = (W' P W)^-1 W' P mu."""
    rng = np.random.default_rng(0)
    frames, dims = 7, 3
    means = rng.normal(size=(frames, 2 * dims))
    root = rng.normal(size=(frames, 2 * dims, 2 * dims))
    precisions = root @ root.transpose(0, 2, 1) + 0.5 * np.eye(2 * dims)
    w = np.zeros((frames, 2 * dims, frames, dims))
    for t in range(frames):
        w[t, :dims, t] = w[t, dims:, t] = np.eye(dims)
        if t:
            w[t, dims:, t - 1] = -np.eye(dims)
    w = w.reshape(frames * 2 * dims, frames * dims)
    p = scipy.linalg.block_diag(*precisions)
    expected = np.linalg.solve(w.T @ p @ w, w.T @ p @ means.ravel()).reshape(frames, dims)
    assert np.allclose(mlpg(means, precisions), expected, atol=1e-10)
    consistent = static_delta(expected)  # means that are an exact static + delta sequence come back as it
    consistent[0, dims:] = expected[0]
    assert np.allclose(mlpg(consistent, precisions), expected, atol=1e-10)


def test_the_posterior_is_scikit_learns_on_the_source_marginal(fitted):
    from sklearn.mixture import GaussianMixture

    d = fitted.means.shape[1] // 2
    marginal = GaussianMixture(len(fitted.weights), covariance_type="full")
    cov = fitted.covariances[:, :d, :d]
    marginal.weights_, marginal.means_, marginal.covariances_ = fitted.weights, fitted.means[:, :d], cov
    eye = np.eye(d)  # sklearn keeps the upper Cholesky factor of each precision matrix
    marginal.precisions_cholesky_ = np.stack([np.linalg.solve(np.linalg.cholesky(c), eye).T for c in cov])
    (source, _), _ = _pair(100)
    frames = fitted.convert_frames(source, RATE)  # any realistic (T, 2 D) input will do
    sd = static_delta(frames[:, 1 : d // 2 + 1])
    ours = fitted.posterior(sd)
    assert ours.shape == (len(sd), 2) and np.allclose(ours.sum(axis=1), 1.0)
    assert np.allclose(ours, marginal.predict_proba(sd), atol=1e-8)


def test_a_saved_gmm_is_plain_arrays_and_converts_identically(fitted, tmp_path):
    path = fitted.save(tmp_path / "gmm.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == "vc_gmm" and payload["meta"]["mixtures"] == 2
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    loaded = JointDensityGMM.load(path)
    (source, _), _ = _pair(101)
    assert np.array_equal(loaded.convert_frames(source, RATE), fitted.convert_frames(source, RATE))
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file, nothing left behind


def test_the_gmm_refuses_files_and_features_it_cannot_use(fitted, tmp_path):
    fs = _settings()
    fitted.check_fits(fs, "m.pt")  # the features it was fitted with
    with pytest.raises(ConfigError, match="m.pt: the GMM was fitted with other features .*mcep_order 24 vs 30"):
        fitted.check_fits(replace(fs, mcep_order=30), "m.pt")
    with pytest.raises(ConfigError, match="fuses WORLD frames; this VC model uses vocoder=griffin_lim"):
        fitted.check_fits(replace(fs, vocoder="griffin_lim"), "m.pt")
    from denoise_vc.checkpoint import save_checkpoint

    other = save_checkpoint({"kind": "vc", "state_dict": {}}, tmp_path / "vc.pth")
    with pytest.raises(CheckpointError, match="is a 'vc' checkpoint, expected 'vc_gmm'"):
        JointDensityGMM.load(other)
    broken = save_checkpoint({"kind": "vc_gmm", "state_dict": {"weights": torch.ones(2)}}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="b.pt: GMM checkpoint lacks means, covariances"):
        JointDensityGMM.load(broken)
    with pytest.raises(ConfigError, match="too few for 32 full-covariance mixtures"):
        JointDensityGMM.fit([_pair(0)], fs, mixtures=32)


def test_vc_gmm_refuses_a_griffin_lim_model_before_fitting(tmp_path, capsys):
    from bad_inputs import tiny_vc_checkpoint

    from denoise_vc.cli import main

    vc = tiny_vc_checkpoint(tmp_path / "vc.pth")  # log-mel frames: nothing for the GMM's mel-cepstra to fuse with
    assert main(["vc-gmm", "--vc", str(vc)]) == 1
    assert "convert --gmm fuses WORLD frames; this model uses vocoder=griffin_lim" in capsys.readouterr().err
    assert not (tmp_path / "gmm.pt").exists()

"""Joint-density GMM voice conversion (Toda et al. 2007, sprocket's recipe: the VCC 2018 baseline).

Two jobs: the classic peer of `benchmarks/vc_real.py`, and the second opinion `convert --gmm` fuses into the
wGMM's spectra (the two err differently, so their mean converts better than either: NOTE.md, session 18).

Features are the VC frame vectors of `vocoder=world` (mel-cepstrum c0..c_order, band aperiodicity, log-F0,
voiced flag). Training: static c1..c_order plus delta (window [-1, 1, 0], as sprocket) of source and target,
speech frames only (normalised power above -20 dB, sprocket's `extfrm`), DTW on static mel-cepstra, a
full-covariance scikit-learn GaussianMixture on the joint vectors [src; tgt], then two more rounds of
re-aligning the *converted* source with the target and refitting. Conversion: per frame the most likely
component's conditional mean and covariance, then MLPG over static+delta (`mmse`, the posterior-weighted
conditional mean, is the alternative), the GV postfilter with the converted training data's GV, c0 from the
source with sprocket's power correction, aperiodicity and voicing from the source, and log-F0 by the linear
transform of source/target log-F0 mean and standard deviation.

A fitted model is plain arrays (component weights, means, covariances, F0 and GV statistics) saved as a
checkpoint of kind `vc_gmm`, so it loads with `weights_only=True` like every other checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.vc.features import FeatureSettings, clean_wave, frame_count
from denoise_vc.vc.metrics import dtw_pairs
from denoise_vc.vc.vocoders import world_layout
from denoise_vc.vc.world import WorldLayout, analyse, mcep_to_spectrum

KIND = "vc_gmm"
POWER_THRESHOLD_DB = -20.0  # sprocket's speech/silence split on normalised frame power
ALIGN_ROUNDS = 3  # one DTW on the source, two on the converted source
CONVERSIONS = ("mlpg", "mmse")
ARRAYS = ("weights", "means", "covariances", "source_f0", "target_f0", "target_gv", "converted_gv")
MATCHING_SETTINGS = ("sample_rate", "hop_length", "mcep_order")  # what a fusion needs both models to share

Waves = tuple[np.ndarray, int]


def static_delta(x: np.ndarray) -> np.ndarray:
    """(T, 2D) [static | delta], sprocket's delta window d[t] = x[t] - x[t-1] (d[0] = x[1] - x[0])."""
    d = np.empty_like(x)
    d[1:] = x[1:] - x[:-1]
    d[0] = x[1] - x[0] if len(x) > 1 else 0.0
    return np.concatenate([x, d], axis=1)


def mlpg(means: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """(T, D) static sequence y most likely under per-frame Gaussians over [y_t | y_t - y_{t-1}] (means (T, 2D),
    precisions (T, 2D, 2D)): the normal equations (W' P W) y = W' P mu, block-tridiagonal, solved banded.

    The first frame's delta is y_0 itself (the window's y_{-1} term falls off the edge), as sprocket's MLPG."""
    frames, dims = means.shape[0], means.shape[1] // 2
    static, delta = slice(0, dims), slice(dims, 2 * dims)
    p_ss, p_sd = precisions[:, static, static], precisions[:, static, delta]
    p_ds, p_dd = precisions[:, delta, static], precisions[:, delta, delta]
    # o_t = [y_t; y_t - y_{t-1}]: frame t's Gaussian couples y_t with itself and with y_{t-1}
    diagonal = p_ss + p_sd + p_ds + p_dd
    diagonal[:-1] += p_dd[1:]
    lower = -(p_sd + p_dd)[1:]  # block (t + 1, t): rows y_{t+1}, columns y_t
    weighted = np.einsum("tij,tj->ti", precisions, means)  # P_t mu_t
    rhs = weighted[:, static] + weighted[:, delta]
    rhs[:-1] -= weighted[1:, delta]
    # LAPACK's lower banded storage, band[i - j, j] = M[i, j]: row k of the band holds, frame by frame, the k-th
    # sub-diagonal of the diagonal block and then the tail of the block below it
    band = np.zeros((2 * dims, frames, dims))
    for k in range(2 * dims):
        if k < dims:  # the diagonal block's entries (c + k, c)
            band[k, :, : dims - k] = np.diagonal(diagonal, offset=-k, axis1=1, axis2=2)
        if k:  # the lower block's entries (c + k - D, c) of the columns c where they fall inside it
            part = np.diagonal(lower, offset=dims - k, axis1=1, axis2=2)
            start = max(0, dims - k)
            band[k, :-1, start : start + part.shape[1]] = part
    band = band.reshape(2 * dims, frames * dims)
    return scipy.linalg.solveh_banded(band, rhs.ravel(), lower=True).reshape(frames, dims)


def envelope_power(mcep: np.ndarray, layout: WorldLayout) -> np.ndarray:
    """(T,) power of each frame's mel-cepstral envelope (Parseval over the full spectrum: SPTK's mc2e)."""
    sp = mcep_to_spectrum(np.asarray(mcep, np.float64), layout.alpha, layout.fft_size)
    return (sp[:, 0] + sp[:, -1] + 2.0 * sp[:, 1:-1].sum(axis=1)) / layout.fft_size


def speech_frames(vectors: np.ndarray, layout: WorldLayout) -> np.ndarray:
    """(T,) bool: frame power above POWER_THRESHOLD_DB relative to the utterance mean (sprocket's npow)."""
    power = envelope_power(vectors[:, layout.mcep], layout)
    return 10.0 * np.log10(power / power.mean()) > POWER_THRESHOLD_DB


@dataclass
class JointDensityGMM:
    """A fitted joint-density GMM mapping of mel-cepstra plus the log-linear F0 conversion."""

    fs: FeatureSettings
    weights: np.ndarray  # (M,)
    means: np.ndarray  # (M, 4 D): [source static, source delta, target static, target delta]
    covariances: np.ndarray  # (M, 4 D, 4 D)
    source_f0: np.ndarray  # (2,) log-F0 mean and standard deviation over voiced frames
    target_f0: np.ndarray
    target_gv: np.ndarray  # (D,) mean per-utterance variance of the target's c1..c_order
    converted_gv: np.ndarray  # (D,) the same for the converted training sources
    conversion: str = "mlpg"
    gv_postfilter: bool = True
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.conversion not in CONVERSIONS:
            raise ConfigError(f"GMM conversion must be one of {', '.join(CONVERSIONS)}, not {self.conversion!r}")
        for name in ARRAYS:  # what `save` stores, so a loaded model converts bit for bit as the fitted one
            setattr(self, name, np.asarray(getattr(self, name), np.float64))
        self.layout = world_layout(self.fs)
        self._deploy()

    def _deploy(self) -> None:
        """Split the joint density into p(x) and the per-component linear regressions y | x."""
        d = self.means.shape[1] // 2
        cov = self.covariances
        cxx, cxy, cyy = cov[:, :d, :d], cov[:, :d, d:], cov[:, d:, d:]
        self.mean_x, self.mean_y = self.means[:, :d], self.means[:, d:]
        self.regression = np.stack([np.linalg.solve(cxx[m], cxy[m]).T for m in range(len(cov))])
        self.cond_precision = np.linalg.inv(cyy - self.regression @ cxy)
        chol = np.linalg.cholesky(cxx)
        whiten = np.linalg.inv(chol).transpose(0, 2, 1)  # (x - mu) @ whiten[m]: component m's unit coordinates
        self.whiten = whiten.transpose(1, 0, 2).reshape(d, -1)  # (2D, M x 2D): all components in one product
        self.whitened_means = np.einsum("mi,mij->mj", self.mean_x, whiten).reshape(-1)
        self.log_norm = (
            np.log(self.weights) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1) - 0.5 * d * np.log(2 * np.pi)
        )

    # -- fitting -------------------------------------------------------------------------------------
    @staticmethod
    def fit(
        pairs: Sequence[tuple[Waves, Waves]],
        fs: FeatureSettings,
        mixtures: int = 32,
        max_iter: int = 100,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        conversion: str = "mlpg",
    ) -> JointDensityGMM:
        """Fit on ((source wave, rate), (target wave, rate)) parallel utterances; `conversion` also re-aligns."""
        from sklearn.mixture import GaussianMixture

        if mixtures < 1 or max_iter < 1:
            raise ConfigError(f"GMM needs mixtures >= 1 and max_iter >= 1, got {mixtures} and {max_iter}")
        if not pairs:
            raise ConfigError("GMM fit: no training pairs")
        layout = world_layout(fs)
        spectral = slice(1, layout.order + 1)
        data = [(source_vectors(*s, fs, layout), source_vectors(*t, fs, layout)) for s, t in pairs]
        src_sd = [static_delta(s[:, spectral].astype(np.float64)) for s, _ in data]
        tgt_sd = [static_delta(t[:, spectral].astype(np.float64))[speech_frames(t, layout)] for _, t in data]
        speech = [speech_frames(s, layout) for s, _ in data]
        dims = layout.order
        frames = sum(int(s.sum()) for s in speech)
        if frames < mixtures * 4 * dims:
            raise ConfigError(f"GMM fit: {frames} speech frames are too few for {mixtures} full-covariance mixtures")
        aligned = [x[m, :dims] for x, m in zip(src_sd, speech, strict=True)]
        f0_statistics = _f0_statistics(data, layout)
        model = None
        for round_ in range(ALIGN_ROUNDS):
            joint = []
            for a, x, m, y in zip(aligned, src_sd, speech, tgt_sd, strict=True):
                path = dtw_pairs(a, y[:, :dims])
                joint.append(np.concatenate([x[m][path[:, 0]], y[path[:, 1]]], axis=1))
            joint = np.concatenate(joint)
            start = time.perf_counter()
            em = GaussianMixture(mixtures, covariance_type="full", max_iter=max_iter, random_state=seed).fit(joint)
            model = JointDensityGMM(
                fs, em.weights_, em.means_, em.covariances_, *f0_statistics, np.ones(dims), np.ones(dims), conversion
            )
            if log:
                state = "converged" if em.converged_ else "not converged"
                log(
                    f"round {round_}: {len(joint)} joint frames, EM {em.n_iter_} iterations ({state}), "
                    f"{time.perf_counter() - start:.0f} s"
                )
            aligned = [model.map_mcep(x)[m] for x, m in zip(src_sd, speech, strict=True)]
        model.target_gv = np.mean([y[:, :dims].var(axis=0) for y in tgt_sd], axis=0)
        model.converted_gv = np.mean([c.var(axis=0) for c in aligned], axis=0)
        model.meta = {"mixtures": mixtures, "max_iter": max_iter, "seed": seed, "train_pairs": len(pairs)}
        return model

    # -- conversion ----------------------------------------------------------------------------------
    def posterior(self, sd: np.ndarray) -> np.ndarray:
        """(T, M) component posteriors of (T, 2D) source static+delta vectors under p(x)."""
        z = sd @ self.whiten - self.whitened_means  # (T, M 2D): every component's whitened frame at once
        log_p = self.log_norm - 0.5 * np.square(z).reshape(len(sd), len(self.weights), -1).sum(axis=2)
        log_p -= log_p.max(axis=1, keepdims=True)
        p = np.exp(log_p)
        return p / p.sum(axis=1, keepdims=True)

    def map_mcep(self, sd: np.ndarray) -> np.ndarray:
        """(T, D) converted static mel-cepstra c1.. of a (T, 2D) static+delta source sequence."""
        posterior = self.posterior(sd)
        dims = sd.shape[1] // 2
        if self.conversion == "mmse":
            means = self.mean_y[None] + np.einsum("mij,tmj->tmi", self.regression, sd[:, None] - self.mean_x[None])
            return np.einsum("tm,tmi->ti", posterior, means)[:, :dims]
        best = posterior.argmax(axis=1)
        mean = self.mean_y[best] + np.einsum("tij,tj->ti", self.regression[best], sd - self.mean_x[best])
        return mlpg(mean, self.cond_precision[best])

    def convert_spectra(self, vectors: np.ndarray) -> np.ndarray:
        """(T, D) converted mel-cepstra c1..c_order (GV postfilter included) of the source's frame vectors: all a
        fusion takes from the GMM."""
        mcep = self.map_mcep(static_delta(np.asarray(vectors, np.float64)[:, 1 : self.layout.order + 1]))
        if not self.gv_postfilter:
            return mcep
        mean = mcep.mean(axis=0)
        return np.sqrt(self.target_gv / self.converted_gv) * (mcep - mean) + mean

    def convert_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Converted (T, frame dims) WORLD frame vectors of the source's (`source_vectors`)."""
        lay = self.layout
        out = np.asarray(vectors, np.float64).copy()
        spectral = slice(1, lay.order + 1)
        mcep = self.convert_spectra(out)
        reference = envelope_power(out[:, lay.mcep], lay)
        out[:, spectral] = mcep
        out[:, 0] += 0.5 * np.log(reference / envelope_power(out[:, lay.mcep], lay))  # sprocket's mod_power
        (mu_x, sd_x), (mu_y, sd_y) = self.source_f0, self.target_f0
        out[:, lay.lf0] = (out[:, lay.lf0] - mu_x) * (sd_y / sd_x) + mu_y
        return out

    def convert_frames(self, wave: np.ndarray, rate: int) -> np.ndarray:
        """Converted WORLD frame vectors of a source-speaker waveform."""
        return self.convert_vectors(source_vectors(wave, rate, self.fs, self.layout))

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from denoise_vc.checkpoint import save_checkpoint

        state = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name), np.float64)) for name in ARRAYS}
        config = {"features": asdict(self.fs), "conversion": self.conversion, "gv_postfilter": self.gv_postfilter}
        return save_checkpoint({"kind": KIND, "state_dict": state, "config": config, "meta": self.meta}, path)

    @staticmethod
    def load(path: str | Path) -> JointDensityGMM:
        from denoise_vc.checkpoint import load_checkpoint

        payload = load_checkpoint(path, kind=KIND)
        state, config = payload["state_dict"], payload.get("config") or {}
        missing = [name for name in ARRAYS if name not in state] + [k for k in ("features",) if k not in config]
        if missing:
            raise CheckpointError(f"{path}: GMM checkpoint lacks {', '.join(missing)}")
        try:
            fs = FeatureSettings(**config["features"])
            arrays = {name: state[name].numpy() for name in ARRAYS}
            return JointDensityGMM(
                fs, **arrays, conversion=config.get("conversion", "mlpg"),
                gv_postfilter=bool(config.get("gv_postfilter", True)), meta=dict(payload.get("meta") or {}),
            )  # fmt: skip
        except (TypeError, ValueError, np.linalg.LinAlgError) as exc:
            raise CheckpointError(f"{path}: not a usable GMM checkpoint ({str(exc).splitlines()[0][:120]})") from None

    def check_fits(self, fs: FeatureSettings, where: str) -> None:
        """Refuse a GMM whose frames cannot be fused with a VC model's (other rate, hop or order)."""
        if fs.vocoder != "world":
            raise ConfigError(f"{where}: the GMM fuses WORLD frames; this VC model uses vocoder={fs.vocoder}")
        mine, theirs = asdict(self.fs), asdict(fs)
        differ = [f"{key} {mine[key]} vs {theirs[key]}" for key in MATCHING_SETTINGS if mine[key] != theirs[key]]
        if differ:
            raise ConfigError(f"{where}: the GMM was fitted with other features ({'; '.join(differ)}); refit it")


def source_vectors(wave: np.ndarray, rate: int, fs: FeatureSettings, layout: WorldLayout) -> np.ndarray:
    """WORLD frame vectors of a cleaned waveform: exactly the wGMM's source frames (`vocoders.acoustic_frames`)."""
    x = clean_wave(wave, rate, fs)
    return analyse(x, fs, layout, frame_count(x, fs))


def _f0_statistics(data: list[tuple[np.ndarray, np.ndarray]], layout: WorldLayout) -> tuple[np.ndarray, np.ndarray]:
    def stats(side: int) -> np.ndarray:
        lf0 = np.concatenate([u[side][u[side][:, layout.voiced] > 0.5, layout.lf0] for u in data]).astype(np.float64)
        if not len(lf0):
            raise ConfigError(f"GMM fit: no voiced frame in the {('source', 'target')[side]} utterances")
        return np.array([lf0.mean(), lf0.std()])

    return stats(0), stats(1)

"""Joint-density GMM voice conversion (Toda et al. 2007): sprocket's recipe, the VCC2018 baseline, as a peer.

Features are the repo's WORLD frame vectors (`denoise_vc.vc.world`, 5 ms hop, mel-cepstrum c0..c24).
Training (train pairs only): static c1..c24 plus delta (window [-1, 1, 0], as sprocket) of source and target,
speech frames only (normalised power above -20 dB, sprocket's `extfrm`), DTW on static mel-cepstra, a
full-covariance scikit-learn GaussianMixture on the joint vectors [src; tgt], then two more rounds of
re-aligning the *converted* source with the target and refitting. Conversion: per frame the most likely
component's conditional mean and covariance, then MLPG over static+delta (sprocket's `mlpg`; `mmse`, the
posterior-weighted conditional mean, is the alternative), the GV postfilter with the converted training data's
GV, c0 from the source with sprocket's power correction, band aperiodicity and voicing from the source, and
log-F0 by the linear transform of source/target log-F0 mean and standard deviation. Synthesis: `World`.

    python benchmarks/gmm_vc.py --source ../shared/data/speech/vcc2016/SF1 \
        --target ../shared/data/speech/vcc2016/TF1 [--mixtures 32] [--limit-train N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

from denoise_vc.vc.features import FeatureSettings, clean_wave  # noqa: E402
from denoise_vc.vc.world import World, WorldLayout, analyse  # noqa: E402

ORDER = 24
POWER_THRESHOLD_DB = -20.0  # sprocket's default speech/silence split on normalised frame power
DELTA_WINDOW = (-1.0, 1.0, 0.0)  # sprocket's delta window: d[t] = x[t] - x[t-1]
ALIGN_ROUNDS = 3  # one DTW on the source, two on the converted source


def static_delta(x: np.ndarray) -> np.ndarray:
    """(T, 2D) [static | delta] with sprocket's window and edge handling."""
    d = np.empty_like(x)
    d[1:] = x[1:] - x[:-1]
    d[0] = x[1] - x[0] if len(x) > 1 else 0.0
    return np.concatenate([x, d], axis=1)


def delta_matrix(frames: int, dims: int) -> scipy.sparse.csr_matrix:
    """W (2 D T, D T): maps a frame-major static sequence to frame-major [static | delta] vectors."""
    t = np.arange(frames)
    d = np.arange(dims)
    rows_s = (2 * dims * t[:, None] + d).ravel()
    cols = (dims * t[:, None] + d).ravel()
    rows, cols_all, vals = [rows_s], [cols], [np.ones(len(cols))]
    for offset, weight in zip((-1, 0, 1), DELTA_WINDOW, strict=True):
        if weight == 0.0:
            continue
        c = cols + offset * dims
        ok = (c >= 0) & (c < frames * dims)
        rows.append((rows_s + dims)[ok])
        cols_all.append(c[ok])
        vals.append(np.full(ok.sum(), weight))
    shape = (2 * dims * frames, dims * frames)
    return scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols_all))), shape)


def envelope_power(mcep: np.ndarray, layout: WorldLayout) -> np.ndarray:
    """(T,) power of each frame's mel-cepstral envelope (Parseval: what SPTK's mc2e gives, much faster)."""
    import pysptk

    sp = pysptk.mc2sp(np.ascontiguousarray(mcep, dtype=np.float64), layout.alpha, layout.fft_size)
    return (sp[:, 0] + sp[:, -1] + 2.0 * sp[:, 1:-1].sum(axis=1)) / layout.fft_size


def normalised_power(mcep: np.ndarray, layout: WorldLayout) -> np.ndarray:
    """(T,) frame power in dB relative to the utterance mean (sprocket's npow)."""
    power = envelope_power(mcep, layout)
    return 10.0 * np.log10(power / power.mean())


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of the Euclidean (= mel-cepstral distortion) DTW path between two sequences."""
    import librosa

    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean", backtrack=True)
    path = path[::-1]
    return path[:, 0], path[:, 1]


@dataclass
class Analysed:
    """WORLD frame vectors of one cleaned utterance and its speech-frame mask."""

    vectors: np.ndarray
    speech: np.ndarray

    @property
    def mcep(self) -> np.ndarray:
        return self.vectors[:, 1 : ORDER + 1].astype(np.float64)


class JointDensityGMM:
    """Joint-density GMM mapping of mel-cepstra plus log-linear F0 conversion, on WORLD features."""

    def __init__(
        self,
        fs: FeatureSettings,
        mixtures: int = 32,
        max_iter: int = 100,
        random_state: int = 0,
        conversion: str = "mlpg",
        gv_postfilter: bool = True,
        verbose: bool = False,
    ) -> None:
        if conversion not in ("mlpg", "mmse"):
            raise ValueError("conversion must be 'mlpg' or 'mmse'")
        self.fs = fs
        self.layout = WorldLayout.for_settings(fs, order=ORDER)
        self.vocoder = World(fs, self.layout)
        self.mixtures, self.max_iter, self.random_state = mixtures, max_iter, random_state
        self.conversion, self.gv_postfilter = conversion, gv_postfilter
        self.verbose = verbose
        self.fit_log: list[str] = []

    # -- features ------------------------------------------------------------------------------------
    def analyse(self, wave: np.ndarray, rate: int) -> Analysed:
        x = clean_wave(wave, rate, self.fs)
        vectors = analyse(x, self.fs, self.layout, 1 + len(x) // self.fs.hop_length)
        npow = normalised_power(vectors[:, self.layout.mcep], self.layout)
        return Analysed(vectors, npow > POWER_THRESHOLD_DB)

    # -- training ------------------------------------------------------------------------------------
    def fit(self, pairs: list[tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]]) -> JointDensityGMM:
        """Train on ((source wave, rate), (target wave, rate)) parallel utterances."""
        from sklearn.mixture import GaussianMixture

        data = [(self.analyse(*s), self.analyse(*t)) for s, t in pairs]
        self._fit_f0(data)
        src_sd = [static_delta(s.mcep)[s.speech] for s, _ in data]
        tgt_sd = [static_delta(t.mcep)[t.speech] for _, t in data]
        dims = ORDER
        aligned_src = [x[:, :dims] for x in src_sd]
        for round_ in range(ALIGN_ROUNDS):
            joint = []
            for a, x, y in zip(aligned_src, src_sd, tgt_sd, strict=True):
                i, j = dtw_path(a, y[:, :dims])
                joint.append(np.concatenate([x[i], y[j]], axis=1))
            joint = np.concatenate(joint)
            start = time.perf_counter()
            self.gmm = GaussianMixture(
                self.mixtures, covariance_type="full", max_iter=self.max_iter, random_state=self.random_state
            ).fit(joint)
            self._deploy()
            self._log(
                f"round {round_}: {len(joint)} joint frames, EM {self.gmm.n_iter_} iterations "
                f"({'converged' if self.gmm.converged_ else 'not converged'}), {time.perf_counter() - start:.0f} s"
            )
            converted = [self._map(static_delta(s.mcep)) for s, _ in data]
            aligned_src = [c[s.speech] for c, (s, _) in zip(converted, data, strict=True)]
        tgt_static = [y[:, :dims] for y in tgt_sd]
        self.target_gv = np.mean([y.var(axis=0) for y in tgt_static], axis=0)
        self.converted_gv = np.mean([c.var(axis=0) for c in aligned_src], axis=0)
        return self

    def _log(self, line: str) -> None:
        self.fit_log.append(line)
        if self.verbose:
            print(f"# {line}", flush=True)

    def _fit_f0(self, data: list[tuple[Analysed, Analysed]]) -> None:
        lay = self.layout

        def stats(side: int) -> tuple[float, float]:
            lf0 = np.concatenate([u[side].vectors[u[side].vectors[:, lay.voiced] > 0.5, lay.lf0] for u in data])
            return float(lf0.mean()), float(lf0.std())

        self.src_f0, self.tgt_f0 = stats(0), stats(1)

    def _deploy(self) -> None:
        """Split the joint GMM into p(x) and the per-component linear regressions y | x."""
        from sklearn.mixture import GaussianMixture
        from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

        d = self.gmm.means_.shape[1] // 2
        cov = self.gmm.covariances_
        cxx, cxy, cyx, cyy = cov[:, :d, :d], cov[:, :d, d:], cov[:, d:, :d], cov[:, d:, d:]
        self.mean_x, self.mean_y = self.gmm.means_[:, :d], self.gmm.means_[:, d:]
        self.regression = np.stack([cyx[m] @ np.linalg.inv(cxx[m]) for m in range(len(cov))])
        self.cond_precision = np.linalg.inv(cyy - self.regression @ cxy)
        self.px = GaussianMixture(len(cov), covariance_type="full")
        self.px.weights_, self.px.means_, self.px.covariances_ = self.gmm.weights_, self.mean_x, cxx
        self.px.precisions_cholesky_ = _compute_precision_cholesky(cxx, "full")

    # -- conversion ----------------------------------------------------------------------------------
    def _map(self, sd: np.ndarray) -> np.ndarray:
        """(T, D) converted static mel-cepstra c1.. of a (T, 2D) static+delta source sequence."""
        posterior = self.px.predict_proba(sd)
        if self.conversion == "mmse":
            means = self.mean_y[None] + np.einsum("mij,tmj->tmi", self.regression, sd[:, None] - self.mean_x[None])
            return np.einsum("tm,tmi->ti", posterior, means)[:, : sd.shape[1] // 2]
        best = posterior.argmax(axis=1)
        mean = self.mean_y[best] + np.einsum("tij,tj->ti", self.regression[best], sd - self.mean_x[best])
        precision = self.cond_precision[best]
        frames, dims = len(sd), sd.shape[1] // 2
        w = delta_matrix(frames, dims)
        wd = w.T @ scipy.sparse.block_diag(precision, format="csr")
        y = scipy.sparse.linalg.spsolve((wd @ w).tocsc(), wd @ mean.ravel())
        return y.reshape(frames, dims)

    def convert_features(self, source: Analysed) -> np.ndarray:
        """Converted WORLD frame vectors of an analysed source utterance."""
        lay = self.layout
        out = source.vectors.astype(np.float64).copy()
        mcep = self._map(static_delta(source.mcep))
        if self.gv_postfilter:
            mean = mcep.mean(axis=0)
            mcep = np.sqrt(self.target_gv / self.converted_gv) * (mcep - mean) + mean
        ref = envelope_power(out[:, lay.mcep], lay)
        out[:, 1 : ORDER + 1] = mcep
        out[:, 0] += 0.5 * np.log(ref / envelope_power(out[:, lay.mcep], lay))  # sprocket's mod_power
        (mu_x, sd_x), (mu_y, sd_y) = self.src_f0, self.tgt_f0
        out[:, lay.lf0] = (out[:, lay.lf0] - mu_x) * (sd_y / sd_x) + mu_y
        return out

    def convert(self, wave: np.ndarray, rate: int) -> np.ndarray:
        """Converted waveform at fs.sample_rate of a source-speaker waveform."""
        return self.vocoder(self.convert_features(self.analyse(wave, rate)))


# -- CLI ---------------------------------------------------------------------------------------------
def _settings(source: str, target: str):
    from denoise_vc.config import compose_config

    overrides = [f"data.source={Path(source).resolve()}", f"data.target={Path(target).resolve()}"]
    return compose_config([*overrides, "data.hop_length=80"], config_name="vc")


def _table(rows: dict[str, dict[str, float]]) -> str:
    keys = sorted({k for r in rows.values() for k in r})
    lines = [f"{'system':<22}" + "".join(f"{k:>15}" for k in keys)]
    for name, row in rows.items():
        lines.append(f"{name:<22}" + "".join(f"{row.get(k, float('nan')):>15.3f}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--mixtures", type=int, default=32)
    parser.add_argument("--limit-train", type=int, default=0, help="use only the first N train pairs (0: all)")
    parser.add_argument("--limit-test", type=int, default=0, help="score only the first N test pairs (0: all)")
    parser.add_argument("--conversion", choices=("mlpg", "mmse"), default="mlpg")
    parser.add_argument("--no-gv", action="store_true", help="skip the GV postfilter")
    parser.add_argument("--save-dir", help="write converted test waveforms here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from denoise_vc.audio import write_audio_atomic
    from denoise_vc.vc.corpus import build_pairs
    from denoise_vc.vc.metrics import score_conversion, summarise

    cfg = _settings(args.source, args.target)
    fs = FeatureSettings.from_config(cfg.data)
    pairs = build_pairs(cfg.data, int(cfg.seed))
    train = [p for p in pairs if p.split == "train"]
    test = [p for p in pairs if p.split == "test"]
    train = train[: args.limit_train] if args.limit_train else train
    test = test[: args.limit_test] if args.limit_test else test

    model = JointDensityGMM(
        fs, mixtures=args.mixtures, conversion=args.conversion, gv_postfilter=not args.no_gv, verbose=True
    )
    start = time.perf_counter()
    model.fit([(p.source(), p.target()) for p in train])
    fit_s = time.perf_counter() - start

    rows: dict[str, list[dict[str, float]]] = {"source->target": [], "vocoded target": [], "gmm converted": []}
    convert_s = audio_s = 0.0
    for pair in test:
        (src, src_rate), (tgt, tgt_rate) = pair.source(), pair.target()
        clean_src, clean_tgt = clean_wave(src, src_rate, fs), clean_wave(tgt, tgt_rate, fs)
        t0 = time.perf_counter()
        converted = model.convert(src, src_rate)
        convert_s += time.perf_counter() - t0
        audio_s += len(clean_src) / fs.sample_rate
        frames = 1 + len(clean_tgt) // fs.hop_length
        vocoded = model.vocoder(analyse(clean_tgt, fs, model.layout, frames))
        rows["source->target"].append(score_conversion(clean_src, clean_tgt, fs.sample_rate))
        rows["vocoded target"].append(score_conversion(vocoded, clean_tgt, fs.sample_rate))
        rows["gmm converted"].append(score_conversion(converted, clean_tgt, fs.sample_rate))
        if args.save_dir:
            write_audio_atomic(Path(args.save_dir) / f"{pair.name}.wav", converted[None], fs.sample_rate)

    print(f"# joint-density GMM VC: {Path(args.source).name} -> {Path(args.target).name}")
    print(
        f"# {len(train)} train pairs, {len(test)} test pairs, {args.mixtures} mixtures, full covariance, "
        f"{args.conversion}{'' if args.no_gv else ' + GV postfilter'}, one thread"
    )
    print(f"# fit {fit_s:.1f} s (analysis + 3 x (DTW + EM)); conversion RTF {convert_s / audio_s:.4f}")
    print(f"# medians over test utterances (score_conversion at {fs.sample_rate} Hz)")
    print(_table({name: summarise(r) for name, r in rows.items()}))


if __name__ == "__main__":
    main()

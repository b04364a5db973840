"""Where the converted-to-target MCD comes from: the predicted frames, or their trip through WORLD.

For a vc_real.py pair folder (its wGMM run and GMM peer gmm_32.pt; builtin or a folder corpus), per test pair:
  frames     MCD (SPTK c1-c24, DTW, the target's speech frames) of each system's mel-cepstra *before*
             synthesis against the target recording's analysis;
  waveform   the benchmark's MCD: the frames through WORLD, analysed again (`score_conversion`);
  swaps      GMM frames with the wGMM's F0 and voicing (then also its band aperiodicity), matched to the source
             timing by DTW; and the wGMM's spectra on the source timing with the GMM's other columns;
  fusion     the wGMM's frames with c1-c24 replaced by (1 - w) x its own + w x the GMM's, the GMM's frames
             matched onto the wGMM's timing by DTW (`denoise_vc.vc.fusion`, w = 0.5, 0.7): whether the two
             systems' errors cancel;
  cross-check (skip with --no-cross-check)
             one step of analysis-by-synthesis on the envelope (synthesise, re-analyse with CheapTrick at the
             intended F0, add the difference to the mel-cepstrum) for the target's own frames and the wGMM's,
             scored by the benchmark's CheapTrick-based MCD and by a periodogram mel-cepstrum (pysptk.mcep of
             Blackman-windowed 64 ms frames) that shares no analysis with WORLD: a gain the second estimator
             does not see is the first analyser's, not the waveform's (also for the GMM and the w=0.5 fusion);
             and DNSMOS P.835 OVRL of each output, a no-reference quality opinion that reads no cepstrum.
Prints medians over the pairs (NOTE.md, session 18).

    python benchmarks/vc_breakdown.py runs/vc_d3/builtin --test-utterances 32
    python benchmarks/vc_breakdown.py runs/vc_lskg/espeak --no-cross-check
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import librosa
import numpy as np
import pysptk
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

from denoise_vc.dnsmos import dnsmos  # noqa: E402
from denoise_vc.vc.corpus import build_pairs  # noqa: E402
from denoise_vc.vc.features import clean_wave  # noqa: E402
from denoise_vc.vc.fusion import fuse_frames, matching_frames  # noqa: E402
from denoise_vc.vc.gmm import JointDensityGMM  # noqa: E402
from denoise_vc.vc.metrics import (  # noqa: E402
    WorldFeatures,
    dtw_pairs,
    mel_cepstral_distortion,
    score_conversion,
    speech_path,
    world_features,
)
from denoise_vc.vc.pipeline import Converter  # noqa: E402
from denoise_vc.vc.vocoders import acoustic_frames, spectral_columns, world_layout  # noqa: E402
from denoise_vc.vc.world import f0_of, load_pyworld, spectrum_to_mcep  # noqa: E402

PERIODOGRAM_FRAME = 1024
SPEECH_RANGE_DB = 30.0
FUSION_WEIGHTS = (0.5, 0.7)


def frame_mcd(frames: np.ndarray, target: WorldFeatures, columns: slice) -> float:
    """MCD of predicted frames' c1..c24 against the target's analysis, on the target's speech frames."""
    a = frames[:, columns].astype(np.float64)
    return mel_cepstral_distortion(a, target.sptk, speech_path(a, target.sptk, target.speech))


def refine_envelope(frames: np.ndarray, converter: Converter) -> np.ndarray:
    """One analysis-by-synthesis step: mcep + (mcep - CheapTrick mcep of the synthesised waveform)."""
    pyworld = load_pyworld()
    layout, fs = world_layout(converter.fs), converter.fs
    out = np.asarray(frames, np.float64).copy()
    times = np.arange(len(out)) * fs.hop_s
    wave = converter.vocoder(out).astype(np.float64)
    envelope = pyworld.cheaptrick(wave, f0_of(out, layout), times, fs.sample_rate, f0_floor=fs.f0_floor,
                                  fft_size=layout.fft_size)  # fmt: skip
    again = spectrum_to_mcep(np.maximum(envelope, 1e-16), layout.order, layout.alpha)
    out[:, layout.mcep] += out[:, layout.mcep] - again
    return out


def periodogram_mcd(estimate: np.ndarray, reference: np.ndarray, rate: int) -> float:
    """MCD from pysptk.mcep of windowed frames (no WORLD analysis), DTW, reference frames within 30 dB."""

    def mcep(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hop = round(0.005 * rate)
        x = np.pad(np.asarray(wave, np.float64), PERIODOGRAM_FRAME // 2)
        frames = librosa.util.frame(x, frame_length=PERIODOGRAM_FRAME, hop_length=hop).T
        frames = frames * np.blackman(PERIODOGRAM_FRAME)
        frames = frames[np.sqrt(np.mean(frames**2, axis=1)) > 1e-4]
        alpha = pysptk.util.mcepalpha(rate)
        coded = np.array([pysptk.mcep(f, order=24, alpha=alpha, etype=1, eps=1e-8, min_det=0.0) for f in frames])
        return coded[:, 1:], 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)

    a, _ = mcep(estimate)
    b, power = mcep(reference)
    path = dtw_pairs(a, b)
    return mel_cepstral_distortion(a, b, path[power[path[:, 1]] > power.max() - SPEECH_RANGE_DB])


def breakdown(folder: Path, test_utterances: int, cross_check: bool) -> dict[str, list[float]]:
    converter = Converter(folder / "run" / "best.pth")
    gmm = JointDensityGMM.load(folder / "gmm_32.pt")
    fs, layout = converter.fs, world_layout(converter.fs)
    spectral = spectral_columns(fs)  # c1..c24, as the GMM peer's order
    data = OmegaConf.merge(converter.cfg.data, {"builtin": {"utterances": {"test": test_utterances}}})
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    def vocode(frames: np.ndarray) -> np.ndarray:
        return np.clip(converter.vocoder(frames), -1.0, 1.0)

    for pair in (p for p in build_pairs(data, int(converter.cfg.seed)) if p.split == "test"):
        target = clean_wave(*pair.target(), fs)
        analysed = world_features(target, fs.sample_rate)
        source = pair.source()
        wgmm = converter.convert_frames(*source).astype(np.float64)
        peer = gmm.convert_frames(*source)
        matched = matching_frames(peer, wgmm, spectral)  # each source-timed GMM frame's wGMM frame
        with_f0 = peer.copy()
        with_f0[:, [layout.lf0, layout.voiced]] = wgmm[matched][:, [layout.lf0, layout.voiced]]
        with_bap = with_f0.copy()
        with_bap[:, layout.bap] = wgmm[matched][:, layout.bap]
        spectra = peer.copy()
        spectra[:, spectral] = wgmm[matched][:, spectral]
        fused = {weight: fuse_frames(wgmm, peer, spectral, weight) for weight in FUSION_WEIGHTS}
        add("frames: wgmm", frame_mcd(wgmm, analysed, spectral))
        add("frames: gmm", frame_mcd(peer, analysed, spectral))
        for name, frames in (("wgmm", wgmm), ("gmm", peer), ("gmm + wgmm F0/voicing", with_f0),
                             ("gmm + wgmm F0/voicing/aperiodicity", with_bap),
                             ("wgmm spectra on the source timing", spectra),
                             *((f"wgmm fused with gmm spectra, w={w}", f) for w, f in fused.items())):  # fmt: skip
            add(f"waveform: {name}", score_conversion(vocode(frames), target, fs.sample_rate)["mcd_sptk"])
        if not cross_check:
            continue
        own = acoustic_frames(target, fs)
        checked = {"target through WORLD": own, "target through WORLD + refine": refine_envelope(own, converter),
                   "wgmm": wgmm, "wgmm + refine": refine_envelope(wgmm, converter), "gmm": peer,
                   "wgmm fused with gmm spectra, w=0.5": fused[0.5]}  # fmt: skip
        for name, frames in checked.items():
            wave = vocode(frames)
            add(f"cheaptrick MCD: {name}", score_conversion(wave, target, fs.sample_rate)["mcd_sptk"])
            add(f"periodogram MCD: {name}", periodogram_mcd(wave, target, fs.sample_rate))
            add(f"DNSMOS OVRL (no reference, higher is better): {name}", dnsmos(wave, fs.sample_rate)["ovrl"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a vc_real.py pair folder (run/best.pth, gmm_32.pt)")
    parser.add_argument("--test-utterances", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-cross-check", action="store_true", help="skip the refine and periodogram rows (slow)")
    args = parser.parse_args()
    for needed in (args.folder / "run" / "best.pth", args.folder / "gmm_32.pt"):
        if not needed.exists():
            parser.error(f"{needed} does not exist: give a folder vc_real.py wrote (with the GMM fitted)")
    torch.set_num_threads(args.threads)
    seed = int(OmegaConf.load(args.folder / "run" / "config.yaml").seed)
    print(header("VC MCD breakdown: predicted frames vs their trip through WORLD", seed))
    rows = breakdown(args.folder, args.test_utterances, not args.no_cross_check)
    print(f"{args.folder}: {len(next(iter(rows.values())))} test pairs, medians (dB)")
    print("| row | median |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.median(values):.3f} |")


if __name__ == "__main__":
    main()

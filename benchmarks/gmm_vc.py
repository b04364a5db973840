"""Joint-density GMM voice conversion (Toda et al. 2007) alone: sprocket's recipe, the VCC2018 baseline, as a peer.

The model is the package's `denoise_vc.vc.gmm.JointDensityGMM` (what `denoise-vc vc-gmm` fits for `convert
--gmm`); this script fits it on a source/target folder pair's train split and scores the test split. Features:
WORLD frame vectors (`denoise_vc.vc.world`, 5 ms hop, mel-cepstrum c0..c24); MLPG (or `mmse`), GV postfilter,
c0 with sprocket's power correction, log-linear F0; synthesis with `World`.

    python benchmarks/gmm_vc.py --source ../shared/data/speech/vcc2016/SF1 \
        --target ../shared/data/speech/vcc2016/TF1 [--mixtures 32] [--limit-train N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from denoise_vc.vc.features import FeatureSettings, clean_wave  # noqa: E402
from denoise_vc.vc.gmm import JointDensityGMM  # noqa: E402
from denoise_vc.vc.world import World, analyse  # noqa: E402


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

    start = time.perf_counter()
    model = JointDensityGMM.fit(
        [(p.source(), p.target()) for p in train], fs, args.mixtures, log=print, conversion=args.conversion
    )
    model.gv_postfilter = not args.no_gv
    fit_s = time.perf_counter() - start
    vocoder = World(fs, model.layout)

    rows: dict[str, list[dict[str, float]]] = {"source->target": [], "vocoded target": [], "gmm converted": []}
    convert_s = audio_s = 0.0
    for pair in test:
        (src, src_rate), (tgt, tgt_rate) = pair.source(), pair.target()
        clean_src, clean_tgt = clean_wave(src, src_rate, fs), clean_wave(tgt, tgt_rate, fs)
        t0 = time.perf_counter()
        converted = vocoder(model.convert_frames(src, src_rate))
        convert_s += time.perf_counter() - t0
        audio_s += len(clean_src) / fs.sample_rate
        frames = 1 + len(clean_tgt) // fs.hop_length
        vocoded = vocoder(analyse(clean_tgt, fs, model.layout, frames))
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

"""Denoising quality of a trained denoiser next to the noisy input and peer methods.

Datasets: the built-in speech-like test set; real VCTK speech (held-out speaker p228) mixed with the
real noise recordings in ../shared/data/noise; the real 0 dB babble pair. Levels are noise gains
(SNR = -20 log10(gain) dB). Peers: spectral gating (noisereduce) and RNNoise (pyrnnoise), where
installed, run on the same files with the same resampler and metric code.

    python benchmarks/denoise_quality.py --train-minutes 20            # train the default model first
    python benchmarks/denoise_quality.py --checkpoint runs/x/best.pth  # or score an existing one
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import babble_pair, header, rnnoise, spectral_gating, vctk_noise_mixtures  # noqa: E402

from denoise_vc.checkpoint import load_model  # noqa: E402
from denoise_vc.config import apply_overrides, compose_config, resolve_paths  # noqa: E402
from denoise_vc.data.mixing import mix  # noqa: E402
from denoise_vc.inference import WindowPlan, enhance_array  # noqa: E402
from denoise_vc.metrics import mean_scores, score_pair  # noqa: E402
from denoise_vc.solvers.factory import build_eval_set, build_solver  # noqa: E402

GAINS = (0.3, 0.5, 0.6, 1.0)


def train(run_dir: str, minutes: float, overrides: list[str]) -> Path:
    cfg = resolve_paths(
        compose_config(
            [
                f"run_dir={run_dir}",
                f"solver.max_minutes={minutes}",
                "solver.epochs=1000",
                "solver.progress=false",
                *overrides,
            ]
        )
    )
    started = time.monotonic()
    summary = build_solver(cfg).fit()
    print(
        f"# trained {summary['epochs']} epochs in {(time.monotonic() - started) / 60:.1f} min "
        f"({summary['stop_reason']}); best valid SI-SDRi {summary['best']['valid_si_sdr_i']:.2f} dB"
    )
    return Path(cfg.run_dir) / "best.pth"


def systems(model, plan: WindowPlan):
    yield "noisy input", lambda x, sr: x
    yield "denoise-vc", lambda x, sr: enhance_array(model, x, plan)
    yield "spectral gating", spectral_gating
    yield "RNNoise", rnnoise


def score(dataset: str, items, rate: int, model, plan) -> list[dict]:
    """items: (level, clean, noisy) triples; returns one row per (level, system)."""
    rows = []
    by_level: dict[str, list] = {}
    for level, clean, noisy in items:
        by_level.setdefault(level, []).append((clean, noisy))
    for name, fn in systems(model, plan):
        for level, pairs in by_level.items():
            scores = []
            for clean, noisy in pairs:
                out = fn(noisy, rate)
                if out is None:
                    break
                scores.append(score_pair(out, clean, noisy, rate))
            if scores:
                rows.append({"dataset": dataset, "level": level, "system": name, **mean_scores(scores)})
    return rows


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--train-minutes", type=float, default=20.0)
    parser.add_argument("--run-dir", default="runs/bench_quality")
    parser.add_argument("--real-items", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="training config overrides")
    args = parser.parse_args()

    print(header("denoise quality", args.seed))
    checkpoint = Path(args.checkpoint) if args.checkpoint else train(args.run_dir, args.train_minutes, args.overrides)
    model, ckpt = load_model(checkpoint)
    cfg = resolve_paths(apply_overrides(ckpt["config"], []))
    rate = int(cfg.data.sample_rate)
    inf = cfg.inference
    plan = WindowPlan.for_model(model, inf, rate)
    print(
        f"# checkpoint {checkpoint} · model {ckpt['model']['name']} {ckpt['model']['args']} · "
        f"loss {cfg.loss.name} · epoch {ckpt['meta']['epoch']}"
    )

    test = build_eval_set(cfg, "test", int(cfg.data.test_segment_length), int(cfg.data.test_items))
    builtin = [
        (f"{g:g}", np.array(test.clean[i]), mix(test.clean[i], test.noise[i], gain=g))
        for g in GAINS
        for i in range(len(test))
    ]
    real = vctk_noise_mixtures(rate, args.real_items, args.seed)
    vctk = [(f"{g:g}", clean, mix(clean, noise, gain=g)) for g in GAINS for _, clean, noise in real]
    clean, noisy = babble_pair(rate)
    own = "built-in speech" if cfg.data.clean == "builtin_speech" else f"test split of data={cfg.data.name}"
    rows = (
        score(own, builtin, rate, model, plan)
        + score("VCTK p228 + real noise", vctk, rate, model, plan)
        + score("real babble pair", [("0 dB", clean, noisy)], rate, model, plan)
    )

    print("\n| data | gain | system | SI-SDR (dB) | SI-SDRi (dB) | PESQ wb | STOI |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['level']} | {r['system']} | {fmt(r['si_sdr'])} | {fmt(r['si_sdr_i'])} | "
            f"{fmt(r['pesq'])} | {fmt(r['stoi'])} |"
        )
    print(
        f"\n# {len(test)} built-in segments of {cfg.data.test_segment_length / rate:.1f} s; "
        f"{len(real)} VCTK utterances; PESQ wide-band (P.862.2) at {rate} Hz; STOI (not ESTOI)"
    )


if __name__ == "__main__":
    main()

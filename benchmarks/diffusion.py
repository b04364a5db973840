"""Flow/bridge diffusion denoiser vs Wave-U-Net at equal training time, by number of sampler steps.

    python benchmarks/diffusion.py --minutes 7 --threads 1

Trains a Wave-U-Net and the diffusion model (same U-Net depth and width, same data, loss and seed) for
`--minutes` of wall time each, then scores the Wave-U-Net once and the diffusion model's EMA weights at
1, 2, 4, 8, 16 and 30 sampler steps (deterministic and, at --stochastic-steps, stochastic) on: the built-in
speech test set at gain 1 (0 dB), real VCTK speech (p228) mixed with the real noise recordings of
../shared/data at gain 0.5 (6 dB), and the real 0 dB babble pair. SI-SDR, PESQ wide-band and STOI (not
ESTOI) are medians over items; real-time factor = enhancement seconds / audio seconds over all items
(model loading excluded), on the shared CPU at the stated thread count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import babble_pair, header, vctk_noise_mixtures  # noqa: E402

from denoise_vc.checkpoint import load_model  # noqa: E402
from denoise_vc.config import apply_overrides, compose_config, resolve_paths  # noqa: E402
from denoise_vc.data.mixing import mix  # noqa: E402
from denoise_vc.inference import WindowPlan, enhance_array  # noqa: E402
from denoise_vc.metrics import score_pair  # noqa: E402
from denoise_vc.solvers.factory import build_eval_set, build_solver  # noqa: E402

STEPS = (1, 2, 4, 8, 16, 30)
RATE = 16000  # the speech data's rate (configs/data/speech.yaml)


def train(model: str, minutes: float, root: Path, common: list[str]) -> tuple[Path, dict]:
    run_dir = root / model
    cfg = resolve_paths(
        compose_config(
            [
                f"run_dir={run_dir}",
                f"model={model}",
                f"solver.max_minutes={minutes}",
                "solver.epochs=1000",
                "solver.progress=false",
                "solver.plot_every=0",
                *common,
            ]
        )
    )
    started = time.monotonic()
    summary = build_solver(cfg).fit()
    summary["train_s"] = time.monotonic() - started
    return run_dir / "best.pth", summary


def datasets(checkpoint: Path, builtin_items: int, real_items: int, seed: int) -> dict[str, list]:
    """name -> [(clean, noisy)] for the three test sets."""
    cfg = resolve_paths(apply_overrides(load_model(checkpoint)[1]["config"], []))
    rate = int(cfg.data.sample_rate)
    test = build_eval_set(cfg, "test", int(cfg.data.test_segment_length), int(cfg.data.test_items))
    builtin = [(np.array(test.clean[i]), mix(test.clean[i], test.noise[i], gain=1.0)) for i in range(builtin_items)]
    vctk = [(clean, mix(clean, noise, gain=0.5)) for _, clean, noise in vctk_noise_mixtures(rate, real_items, seed)]
    babble = [babble_pair(rate)]
    return {"built-in speech, 0 dB": builtin, "VCTK p228 + real noise, 6 dB": vctk, "real babble pair, 0 dB": babble}


def score(model, plan: WindowPlan, items: list, rate: int) -> dict[str, float | None]:
    rows, seconds = [], 0.0
    for clean, noisy in items:
        started = time.perf_counter()
        with torch.no_grad():
            out = enhance_array(model, noisy, plan, batch_windows=1)
        seconds += time.perf_counter() - started
        rows.append(score_pair(out, clean, noisy, rate))
    audio_s = sum(len(noisy) for _, noisy in items) / rate
    return medians(rows) | {"rtf": seconds / audio_s}


def medians(rows: list[dict]) -> dict[str, float | None]:
    out = {}
    for key in ("si_sdr", "si_sdr_i", "pesq", "stoi"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def noisy_scores(items: list, rate: int) -> dict[str, float | None]:
    return medians([score_pair(noisy, clean, noisy, rate) for clean, noisy in items]) | {"rtf": None}


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=7.0, help="training wall time per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--builtin-items", type=int, default=8)
    parser.add_argument("--real-items", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--stochastic-steps", type=int, nargs="*", default=[4, 8])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="keep the runs in this folder (default: a temp folder)")
    parser.add_argument("overrides", nargs="*", help="training overrides for both models (e.g. model.levels=8)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common = ["model.levels=8", "data.valid_items=16", f"seed={args.seed}", *args.overrides]
    print(header(f"diffusion vs Wave-U-Net, {args.minutes:g} min training each", args.seed))
    print(f"# common overrides: {' '.join(common)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        trained = {name: train(name, args.minutes, root, common) for name in ("wave_unet", "diffusion")}
        for name, (_, summary) in trained.items():
            print(
                f"# {name}: {summary['epochs']} epochs, {summary['best'].get('step', '?')} steps to best, "
                f"{summary['train_s'] / 60:.1f} min; best valid SI-SDRi {summary['best']['valid_si_sdr_i']:.2f} dB"
            )
        sets = datasets(trained["wave_unet"][0], args.builtin_items, args.real_items, args.seed)
        systems = [("wave_unet", "wave_unet", 1, False)]
        systems += [("diffusion det.", "diffusion", n, False) for n in args.steps]
        systems += [("diffusion stoch.", "diffusion", n, True) for n in args.stochastic_steps]
        models = {name: load_model(ckpt) for name, (ckpt, _) in trained.items()}
        rows = [(data_name, "noisy input", 0, noisy_scores(items, RATE)) for data_name, items in sets.items()]
        for label, name, steps, stochastic in systems:
            model, ckpt = models[name]
            if name == "diffusion":
                model.steps, model.stochastic = steps, stochastic
            plan = WindowPlan.for_model(model, apply_overrides(ckpt["config"], []).inference, RATE)
            for data_name, items in sets.items():
                torch.manual_seed(args.seed)
                rows.append((data_name, label, steps, score(model, plan, items, RATE)))
            print(f"# scored {label} {steps}", flush=True)
    print("\n| data | system | network passes | SI-SDR (dB) | SI-SDRi (dB) | PESQ wb | STOI | RTF |")
    print("|---|---|---|---|---|---|---|---|")
    for data_name, label, steps, r in sorted(rows, key=lambda row: list(sets).index(row[0])):
        print(
            f"| {data_name} | {label} | {steps} | {fmt(r['si_sdr'])} | {fmt(r['si_sdr_i'])} | {fmt(r['pesq'])} | "
            f"{fmt(r['stoi'])} | {fmt(r['rtf'])} |"
        )
    print(
        f"\n# medians over {args.builtin_items} built-in segments, {args.real_items} VCTK utterances, 1 babble pair; "
        f"PESQ wide-band (P.862.2) at 16 kHz; STOI (not ESTOI); RTF with {args.threads} thread(s) on a shared CPU"
    )


if __name__ == "__main__":
    main()

"""Ablation: model x loss x curriculum at a fixed CPU budget per run, scored at several noise gains.

    python benchmarks/ablation.py --minutes 3 --data speech
    python benchmarks/ablation.py --minutes 2 --data heartbeat --models wave_unet transformer_unet --losses l1 peak_l1

Each run trains from scratch for `--minutes` of wall time (same seed, same data) and is evaluated on
the fixed test set: SI-SDRi, PESQ (wb) and STOI for speech; SI-SDRi, R-peak amplitude error and peak F1
for heartbeat data. Curricula: none (constant gain), stepped (0 -> 1 over the first 60 % of the
budget's expected epochs), ramp (linear, same span).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

from denoise_vc.checkpoint import load_model  # noqa: E402
from denoise_vc.config import compose_config, resolve_paths  # noqa: E402
from denoise_vc.evaluation import evaluate_levels  # noqa: E402
from solvers.factory import build_eval_set, build_solver  # noqa: E402

GAINS = (0.3, 0.5, 0.6, 1.0)
CURRICULA = {
    "none": [],
    "stepped": [
        "curriculum=stepped",
        "curriculum.gain.milestones=[0,1,2,3,4]",
        "curriculum.gain.values=[0.0,0.25,0.5,0.75,1.0]",
    ],
    "ramp": ["curriculum=ramp", "curriculum.gain.start_epoch=0", "curriculum.gain.end_epoch=5"],
}


def run_one(model: str, loss: str, curriculum: str, data: str, minutes: float, root: Path) -> dict:
    run_dir = root / f"{model}-{loss}-{curriculum}"
    cfg = resolve_paths(
        compose_config(
            [
                f"run_dir={run_dir}",
                f"model={model}",
                f"loss={loss}",
                f"data={data}",
                *CURRICULA[curriculum],
                f"solver.max_minutes={minutes}",
                "solver.epochs=1000",
                "solver.progress=false",
                "solver.plot_every=0",
            ]
        )
    )
    started = time.monotonic()
    summary = build_solver(cfg).fit()
    train_s = time.monotonic() - started
    net, _ = load_model(run_dir / "best.pth")
    test = build_eval_set(cfg, "test", int(cfg.data.test_segment_length), int(cfg.data.test_items))
    results = evaluate_levels(net, test, [(g, None) for g in GAINS], full=True, peaks=bool(cfg.data.peaks))
    return {
        "model": model,
        "loss": loss,
        "curriculum": curriculum,
        "epochs": summary["epochs"],
        "train_s": train_s,
        "levels": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--data", default="speech", choices=["speech", "heartbeat"])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["wave_unet", "transformer_unet", "pixelshuffle_ae", "pixelshuffle_transformer_ae"],
    )
    parser.add_argument("--losses", nargs="+", default=["l1", "peak_l1", "wavelet", "combined", "mrstft"])
    parser.add_argument("--curricula", nargs="+", default=list(CURRICULA))
    parser.add_argument("--json", help="also write all results here")
    args = parser.parse_args()
    print(header(f"ablation on {args.data}, {args.minutes:g} min per run", 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for loss in args.losses:
                for curriculum in args.curricula:
                    rows.append(run_one(model, loss, curriculum, args.data, args.minutes, Path(tmp)))
                    r = rows[-1]
                    print(f"# done {model} {loss} {curriculum}: {r['epochs']} epochs", flush=True)
    keys = ["si_sdr_i", "pesq", "stoi"] if args.data == "speech" else ["si_sdr_i", "r_amp_error", "peak_f1"]
    head = " | ".join(f"{k} @{g:g}" for g in GAINS for k in keys)
    print(f"\n| model | loss | curriculum | epochs | {head} |")
    print("|" + "---|" * (4 + len(GAINS) * len(keys)))
    for r in rows:
        cells = []
        for g in GAINS:
            level = r["levels"][f"{g:g}"]
            cells += ["n/a" if level.get(k) is None else f"{level[k]:.2f}" for k in keys]
        print(f"| {r['model']} | {r['loss']} | {r['curriculum']} | {r['epochs']} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

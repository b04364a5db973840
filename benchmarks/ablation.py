"""Ablation: model x loss x curriculum at a fixed CPU budget per run, scored at several noise gains.

    python benchmarks/ablation.py --cpu-seconds 60 --data speech --json speech.json
    python benchmarks/ablation.py --cpu-seconds 30 --data ecg --curricula none --json ecg.json
    python benchmarks/ablation.py --report speech.json other.json     # merge result files into one table
    python benchmarks/ablation.py --data speech --skip-done speech.json --json rest.json  # only the missing cells
    python benchmarks/ablation.py --data ecg --seed 1 --curricula none --json seed1.json  # run-to-run spread

The budget is CPU seconds, not wall seconds, so runs are comparable on a machine shared with other work:
for each (model, loss) one calibration epoch is timed with `time.process_time` (torch on one thread;
the data are generated and cached first, so that cost is not counted as training),
and every run of that pair then gets `budget / epoch_cpu` epochs (at least 3). The curricula are laid
over those epochs: stepped 0 -> 0.25 -> 0.5 -> 0.75 -> 1.0 at evenly spaced milestones over the first
60 %, ramp linear from 0 to the target over the same 60 %, then the target. Every run uses the same
seed and data (`--seed` changes the training draws, validation set and initial weights, never the test
set); the best checkpoint (chosen on validation at the target gain) is scored on the test set: SI-SDRi,
PESQ (wb) and STOI for speech; SI-SDRi, R-peak amplitude error and peak F1 for heartbeat and ECG data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

from denoise_vc.checkpoint import load_model  # noqa: E402
from denoise_vc.config import compose_config, resolve_paths  # noqa: E402
from denoise_vc.evaluation import evaluate_levels  # noqa: E402
from denoise_vc.solvers.factory import build_eval_set, build_solver  # noqa: E402

GAINS = (0.3, 0.5, 0.6, 1.0)
MODELS = ("wave_unet", "transformer_unet", "pixelshuffle_ae", "pixelshuffle_transformer_ae")
LOSSES = ("l1", "peak_l1", "wavelet", "combined", "mrstft")
CURRICULA = ("none", "stepped", "ramp")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = {  # smaller epochs than the defaults, so a short budget still spans several epochs for the curricula
    "speech": ["data=speech", "data.items_per_epoch=32", "data.valid_items=16", "data.test_items=8"],
    "heartbeat": ["data=heartbeat", "data.items_per_epoch=64", "data.valid_items=16", "data.test_items=8"],
    "ecg": [
        "data=ecg",
        f"data.clean={SHARED / 'ecg' / 'mitdb_100'}",
        f"data.noise={SHARED / 'ecg' / 'nstdb_noise'}",
        "data.items_per_epoch=64",
        "data.valid_items=16",
        "data.test_items=12",
    ],
}
METRICS = {"speech": ["si_sdr_i", "pesq", "stoi"]}
PEAK_METRICS = ["si_sdr_i", "r_amp_error", "r_f1"]


def curriculum_overrides(name: str, epochs: int) -> list[str]:
    span = max(1, round(0.6 * epochs))
    if name == "none":
        return []
    if name == "stepped":
        milestones = [round(i * span / 4) for i in range(5)]
        return [
            "curriculum=stepped",
            f"curriculum.gain.milestones=[{','.join(map(str, milestones))}]",
            "curriculum.gain.values=[0.0,0.25,0.5,0.75,1.0]",
        ]
    if name == "ramp":
        return ["curriculum=ramp", "curriculum.gain.start_epoch=0", f"curriculum.gain.end_epoch={span}"]
    raise SystemExit(f"unknown curriculum {name!r}")


def config(run_dir: Path, model: str, loss: str, data: str, epochs: int, extra: list[str], seed: int = 0):
    return resolve_paths(
        compose_config(
            [
                f"run_dir={run_dir}",
                f"seed={seed}",
                f"model={model}",
                f"loss={loss}",
                *DATA[data],
                f"solver.epochs={epochs}",
                "solver.progress=false",
                "solver.plot_every=0",
                "solver.resume=false",
                *extra,
            ]
        )
    )


def cpu_fit(cfg) -> tuple[dict, float]:
    started = time.process_time()
    summary = build_solver(cfg).fit()
    return summary, time.process_time() - started


def run_one(model: str, loss: str, curriculum: str, data: str, epochs: int, root: Path, seed: int) -> dict:
    run_dir = root / f"{model}-{loss}-{curriculum}"
    cfg = config(run_dir, model, loss, data, epochs, curriculum_overrides(curriculum, epochs), seed)
    summary, cpu_s = cpu_fit(cfg)
    net, _ = load_model(run_dir / "best.pth")
    test_cfg = config(run_dir, model, loss, data, epochs, [], seed=0)  # one test set for every run and seed
    test = build_eval_set(test_cfg, "test", int(cfg.data.test_segment_length), int(cfg.data.test_items))
    results = evaluate_levels(
        net, test, [(g, None) for g in GAINS], full=True, peaks=bool(cfg.data.peaks), band_hz=cfg.data.get("band_hz")
    )
    return {
        "data": data,
        "model": model,
        "loss": loss,
        "curriculum": curriculum,
        "seed": seed,
        "epochs": summary["epochs"],
        "best_epoch": summary["best"]["epoch"] if summary["best"] else None,
        "cpu_s": cpu_s,
        "levels": results,
    }


def table(rows: list[dict]) -> str:
    data = rows[0]["data"]
    keys = METRICS.get(data, PEAK_METRICS)
    head = " | ".join(f"{k} @{g:g}" for g in GAINS for k in keys)
    lines = [f"| model | loss | curriculum | epochs | CPU s | {head} |", "|" + "---|" * (5 + len(GAINS) * len(keys))]
    noisy = rows[0]["levels"]
    lines.append(
        "| noisy input (SI-SDR, not SI-SDRi) | | | | | "
        + " | ".join(f"{noisy[f'{g:g}']['si_sdr_noisy']:.2f}" if k == "si_sdr_i" else "" for g in GAINS for k in keys)
        + " |"
    )
    for r in rows:
        cells = []
        for g in GAINS:
            level = r["levels"][f"{g:g}"]
            cells += ["n/a" if level.get(k) is None else f"{level[k]:.2f}" for k in keys]
        lines.append(
            f"| {r['model']} | {r['loss']} | {r['curriculum']} | {r['epochs']} | {r['cpu_s']:.0f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def grid_order(rows: list[dict]) -> list[dict]:
    """Rows of several result files in the grid's order (model, then loss, then curriculum), not run order."""
    order = {name: i for i, name in enumerate([*MODELS, *LOSSES, *CURRICULA])}
    return sorted(rows, key=lambda r: tuple(order.get(r[f], len(order)) for f in ("model", "loss", "curriculum")))


def pivot(rows: list[dict]) -> str:
    """One line per model x loss, one column per curriculum: SI-SDRi at gain 1.0 and a second figure (STOI
    for speech, R-peak amplitude error for peak data), so the whole grid reads at a glance."""
    second, label = ("stoi", "STOI") if rows[0]["data"] in METRICS else ("r_amp_error", "R-amp err")
    curricula = [c for c in CURRICULA if any(r["curriculum"] == c for r in rows)]
    cell = {(r["model"], r["loss"], r["curriculum"]): r["levels"]["1"] for r in rows}
    lines = [
        "| model | loss | " + " | ".join(f"{c}: SI-SDRi / {label}" for c in curricula) + " |",
        "|" + "---|" * (2 + len(curricula)),
    ]
    for model, loss in dict.fromkeys((r["model"], r["loss"]) for r in rows):
        levels = [cell.get((model, loss, c)) for c in curricula]
        cells = ["" if lv is None else f"{lv['si_sdr_i']:+.2f} / {lv[second]:.2f}" for lv in levels]
        lines.append(f"| {model} | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_spread(rows: list[dict]) -> str:
    """SI-SDRi at gain 1.0 of every cell run with more than one seed: the run-to-run noise that any
    difference in the grid has to beat."""
    runs: dict[tuple, list[float]] = {}
    for r in rows:
        runs.setdefault((r["model"], r["loss"], r["curriculum"]), []).append(r["levels"]["1"]["si_sdr_i"])
    lines = []
    for (model, loss, curriculum), values in runs.items():
        if len(values) > 1:
            values_text = ", ".join(f"{v:+.2f}" for v in values)
            spread = max(values) - min(values)
            lines.append(f"seed spread {model} {loss} {curriculum}: {values_text} (range {spread:.2f} dB)")
    return "\n".join(lines)


def marginals(rows: list[dict]) -> str:
    """Mean SI-SDRi at gain 1.0 per model, per loss and per curriculum, each over the matched runs only: the
    (other two factors) combinations that were run at every level of the factor, so a reduced grid compares
    like with like."""
    factors = ("model", "loss", "curriculum")
    out = []
    for factor in factors:
        others = [f for f in factors if f != factor]
        levels = sorted({r[factor] for r in rows}, key=[r[factor] for r in rows].index)
        by_key: dict[tuple, dict[str, float]] = {}
        for r in rows:
            by_key.setdefault(tuple(r[o] for o in others), {})[r[factor]] = r["levels"]["1"]["si_sdr_i"]
        matched = [v for v in by_key.values() if len(v) == len(levels)]
        if len(levels) < 2 or not matched:
            continue
        cells = ", ".join(f"{lv} {sum(v[lv] for v in matched) / len(matched):+.2f}" for lv in levels)
        out.append(f"mean SI-SDRi @1.0 by {factor} over {len(matched)} matched {'/'.join(others)} pairs: {cells}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="CPU budget per run")
    parser.add_argument("--data", default="speech", choices=list(DATA))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--curricula", nargs="+", default=list(CURRICULA))
    parser.add_argument("--json", help="write all results here (updated after every run)")
    parser.add_argument("--report", nargs="+", help="only print the table of these result files")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the segments and the weights")
    parser.add_argument("--skip-done", nargs="+", default=[], help="skip the cells already in these result files")
    args = parser.parse_args()
    if args.report:
        every = grid_order([r for f in args.report for r in json.loads(Path(f).read_text())])
        data_sets = sorted({r["data"] for r in every})
        if len(data_sets) > 1:
            raise SystemExit(f"--report: the files mix data sets ({', '.join(data_sets)}); report one at a time")
        rows = [r for r in every if r.get("seed", 0) == 0]  # the grid; other seeds only measure the spread
        print(table(rows))
        print(marginals(rows))
        print(pivot(rows))
        print(seed_spread(every))
        return
    torch.set_num_threads(1)
    print(header(f"ablation on {args.data}, {args.cpu_seconds:g} CPU s per run, torch 1 thread", args.seed))
    done_rows = [r for f in args.skip_done for r in json.loads(Path(f).read_text())]
    done = {(r["data"], r["model"], r["loss"], r["curriculum"], r.get("seed", 0)) for r in done_rows}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for loss in args.losses:
                todo = [c for c in args.curricula if (args.data, model, loss, c, args.seed) not in done]
                if not todo:
                    continue
                calibration = config(Path(tmp) / "calibrate", model, loss, args.data, 1, [], args.seed)
                build_solver(calibration)  # builds and caches the corpora, which must not count as an epoch
                _, epoch_cpu = cpu_fit(calibration)
                epochs = max(3, round(args.cpu_seconds / epoch_cpu))
                print(f"# {model} {loss}: calibration epoch {epoch_cpu:.1f} CPU s -> {epochs} epochs", flush=True)
                for curriculum in todo:
                    rows.append(run_one(model, loss, curriculum, args.data, epochs, Path(tmp), args.seed))
                    r = rows[-1]
                    print(
                        f"# done {model} {loss} {curriculum}: {r['epochs']} epochs, {r['cpu_s']:.0f} CPU s, "
                        f"SI-SDRi @1.0 {r['levels']['1']['si_sdr_i']:+.2f} dB",
                        flush=True,
                    )
                    if args.json:
                        Path(args.json).write_text(json.dumps(rows, indent=1))
    if rows:
        print(table(rows))
        print(marginals(rows))


if __name__ == "__main__":
    main()

"""Ray Tune throughput: trials per minute for a small sweep on this machine, and Ray's overhead against
running the very same trials in a plain Python loop.

    python benchmarks/tune.py [--trials 4] [--epochs 2]

The trials differ only in learning rate (a grid), so the loop and the sweep train identical models.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

from denoise_vc.config import compose_config, resolve_paths, to_plain  # noqa: E402
from denoise_vc.solvers.factory import build_solver  # noqa: E402
from denoise_vc.tune import run_sweep, trial_config  # noqa: E402

TRIAL = [
    "model.levels=6",
    "model.channels_interval=12",
    "loss=l1",
    "data.segment_length=8192",
    "data.items_per_epoch=256",
    "data.valid_items=8",
    "data.builtin.utterances.train=6",
    "data.builtin.utterances.valid=2",
    "data.builtin.noise_s=8",
    "solver.plot_every=0",
    "solver.progress=false",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    print(header("Ray Tune throughput", 0))
    lrs = [round(3e-4 * 1.6**i, 6) for i in range(args.trials)]
    common = [*TRIAL, f"solver.epochs={args.epochs}", "tune.scheduler=fifo", "tune.num_samples=1"]
    space = {"solver.lr": f"grid({lrs})"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_paths(compose_config([f"run_dir={tmp}/loop", *common]))
        started = time.monotonic()
        for i, lr in enumerate(lrs):
            build_solver(trial_config(to_plain(cfg), {"solver.lr": lr}, f"{tmp}/loop/{i}")).fit()
        rows.append(("plain loop, 1 at a time", time.monotonic() - started))
        for cpus, label in (
            (2, "Ray Tune, 1 trial at a time (2 CPUs each)"),
            (1, "Ray Tune, 2 trials at a time (1 CPU each)"),
        ):
            cfg = resolve_paths(compose_config([f"run_dir={tmp}/ray{cpus}", *common, f"tune.resources.cpu={cpus}"]))
            cfg.tune.space = space
            started = time.monotonic()
            run_sweep(cfg)
            rows.append((label, time.monotonic() - started))
    base = rows[0][1]
    print(f"\n{args.trials} trials x {args.epochs} epochs (Wave-U-Net 6 levels x 12 ch, 256 segments of 8192/epoch)\n")
    print("| runner | wall time (s) | trials/min | vs plain loop |")
    print("|---|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {args.trials / seconds * 60:.2f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()

"""Robustness: every `denoise-vc` command against every bad input it takes, plus long-file memory.

    python benchmarks/robustness.py [--minutes 30] [--skip-memory]

The inputs and the verdict come from tests/bad_inputs.py (the table tests/test_bad_inputs.py
also runs). A crash is a traceback, an exception escaping the CLI or an exit code other than 0 (ok),
1 (refused) and 3 (some files of a folder failed). The memory rows denoise a long generated file in a
fresh process with an untrained tiny model (conv_ae, 3 levels, 4 channels) and report its peak resident
memory before and after: the increase is what the file's length cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the bad-input table is test code
from common import header  # noqa: E402
from memory import BOUND_MB_PER_CHANNEL  # noqa: E402

SEED = 0


def run_matrix(scratch: Path) -> tuple[dict[str, Counter], list[str]]:
    from bad_inputs import matrix, problems, run_case, tiny_checkpoint, tiny_vc_checkpoint

    checkpoint, vc_checkpoint = tiny_checkpoint(scratch / "good.pth"), tiny_vc_checkpoint(scratch / "vc.pth")
    tally: dict[str, Counter] = {}
    failures = []
    for i, (command, case) in enumerate(matrix()):
        outcome = run_case(command, case, scratch / f"case{i}", checkpoint, vc_checkpoint)
        found = problems(command, case, outcome)
        row = tally.setdefault(command.name, Counter())
        row["tried"] += 1
        row["correct outputs"] += outcome.kind == "ok" and not found
        row["clear refusals"] += outcome.kind in ("refuse", "partial") and not found
        row["crashes"] += outcome.kind == "crash"
        row["partial files left"] += len(outcome.leftovers)
        row["inputs modified"] += len(outcome.inputs_changed)
        row["other problems"] += bool(found) and outcome.kind != "crash"
        failures += [f"{command.name} / {case.name}: {p}" for p in found]
    return tally, failures


def measure_memory(scratch: Path, minutes: float, rate: int, channels: int) -> dict:
    """Peak memory of denoising a long generated file, in a fresh process."""
    from bad_inputs import tiny_checkpoint, write_long_wav

    long = write_long_wav(scratch / f"long_{rate}_{channels}.wav", minutes, rate, channels)
    checkpoint = tiny_checkpoint(scratch / "memory.pth")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(Path(__file__).resolve().parents[1] / "tests" / "memory.py"),
        str(checkpoint),
        str(long),
        str(scratch / f"out{rate}"),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    model_rate_mb = result["audio_s"] * 16000 * channels * 4 / 2**20
    return {**result, "rate": rate, "channels": channels, "model_rate_mb": model_rate_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(header("robustness: bad inputs per command, long-file memory", SEED))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        tally, failures = run_matrix(scratch / "matrix")
        columns = [
            "tried",
            "correct outputs",
            "clear refusals",
            "crashes",
            "partial files left",
            "inputs modified",
            "other problems",
        ]
        print(f"\n{'command':<10}" + "".join(f"{c:>20}" for c in columns))
        total = Counter()
        for name, row in tally.items():
            total.update(row)
            print(f"{name:<10}" + "".join(f"{row[c]:>20}" for c in columns))
        print(f"{'all':<10}" + "".join(f"{total[c]:>20}" for c in columns))
        print("targets: crashes 0, partial files left 0, inputs modified 0, other problems 0")
        for line in failures:
            print(f"  PROBLEM {line}")

        if not args.skip_memory:
            print(
                "\nlong files, tiny conv_ae at 16 kHz, 1 thread, fresh process each (a tenth of the length, then all):"
            )
            print(
                f"{'file':<24}{'float32 at 16k':>16}{'peak before':>13}{'peak after':>12}{'increase':>10}"
                f"{'bound':>8}{'RTF':>8}"
            )
            for rate, channels in ((16000, 1), (44100, 2)):
                bound = BOUND_MB_PER_CHANNEL * channels
                for minutes in (args.minutes / 10, args.minutes):  # the same increase: bounded, not small
                    m = measure_memory(scratch / f"mem{rate}_{minutes:g}", minutes, rate, channels)
                    name = f"{minutes:g} min {rate} Hz x{channels}"
                    print(
                        f"{name:<24}{m['model_rate_mb']:>13.0f} MB{m['peak_before_mb']:>10.0f} MB"
                        f"{m['peak_after_mb']:>9.0f} MB{m['increase_mb']:>7.1f} MB{bound:>5} MB"
                        f"{m['seconds'] / m['audio_s']:>8.4f}"
                    )
            print("peak = VmHWM (peak RSS) of the denoising process after a 1 s warm-up file (before) and the")
            print("long file (after); the increase does not grow with the file's length")


if __name__ == "__main__":
    main()

"""ECG denoisers on hearts and noise stretches they never trained on, scored as clinicians score ECG.

    python benchmarks/ecg_real.py --checkpoint ecg=runs/ecg/best.pth [--minutes 3] [--threads 2]
    python benchmarks/ecg_real.py --checkpoint pair=runs/a/best.pth+runs/b/best.pth   # the mean of two models
    python benchmarks/ecg_real.py --checkpoint ecg=runs/ecg/best.pth --r-amp-detail   # R-amp per test record
    python benchmarks/ecg_real.py --checkpoint ecg=runs/ecg/best.pth --draws 4   # 4 noise offsets per record

Clean: the MIT-BIH Arrhythmia records of preset=ecg's test split (split_by=record, seed 0: whole records no
model here trained or selected on), lead MLII at 360 Hz in mV, the first `--minutes` of each. Noise: the real
muscle artefact (`ma`) and baseline wander (`bw`) of the MIT-BIH Noise Stress Test Database, their last 10 %
(training reads the first 80 %, validation the next 10 %), added at -6, 0 and 6 dB (ma) and 0 dB (bw); SNR is
the power ratio of the clean lead and the noise over the whole stretch, both about their means. `--draws N` mixes
every record again at N - 1 further offsets of the same test stretch (3 min, as long as each record's cut), so an
F1 that moves by a few beats rests on N times as many beat-noise pairings. A last condition
(`clean`) hands each system the clean lead itself: what it does to a lead with nothing to remove (do no harm),
with the band SNR of each record, since one record's damage hides in the mean.

Systems: the noisy input, a 0.5-40 Hz zero-phase band-pass (4th-order Butterworth), neurokit2's `ecg_clean`
(its default method) and each checkpoint through `denoise`'s own windowed path. One detector for all of them
(neurokit2 `ecg_peaks`), matched one to one against the cardiologists' beat annotations within 150 ms (wfdb
`compare_annotations`); R-amp = mean relative error of each annotated beat's R amplitude above its local
isoelectric level; band SNR over 0.5-40 Hz in dB. RTF = processing seconds / signal seconds on `--threads`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, header  # noqa: E402
from real_speech import ModelSystem  # noqa: E402

from denoise_vc.audio import load_audio  # noqa: E402
from denoise_vc.config import compose_config  # noqa: E402
from denoise_vc.data.mixing import gain_for_snr  # noqa: E402
from denoise_vc.data.sources import build_corpus, time_bounds  # noqa: E402
from denoise_vc.ecg_metrics import band_filter, ecg_scores, r_amplitude_deviations  # noqa: E402

RATE = 360
SEED = 0
CONDITIONS = [("ma", -6.0), ("ma", 0.0), ("ma", 6.0), ("bw", 0.0)]
NOISE_DIR = SHARED_DATA / "ecg" / "nstdb_noise"


def test_records(minutes: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean lead, annotated beats) of every test record, cut to `minutes`."""
    cfg = compose_config(["preset=ecg", f"data.clean={SHARED_DATA / 'ecg' / 'mitdb'}", f"data.noise={NOISE_DIR}"])
    corpus = build_corpus(cfg.data, "test", SEED)
    n = int(minutes * 60 * RATE)
    return [(clean[:n].astype(np.float64), beats[beats < n]) for clean, beats in zip(corpus.clean, corpus.beats)]


def noise_stretch(name: str, split: str = "test") -> np.ndarray:
    """The NSTDB noise record `name`, cut to `split`'s stretch in time (the test stretch unless told)."""
    x = load_audio(NOISE_DIR / f"{name}.hea", RATE, channel=0)[0][0].astype(np.float64)
    lo, hi = time_bounds(len(x), split, {"valid": 0.1, "test": 0.1})
    return x[lo:hi]


def test_mixes(records: list, noise: np.ndarray, noise_name: str, snr_db: float, draws: int = 1) -> list[np.ndarray]:
    """Each test record plus `noise` at `snr_db` from the benchmark's fixed random offsets for this condition;
    with `draws` > 1, every record again at further offsets (record by record, draw after draw: the first
    draw's mixtures are always the same)."""
    rng = np.random.default_rng([SEED, int(snr_db * 10) + 100, len(noise_name)])
    return [mix_at(clean, noise, snr_db, int(rng.integers(len(noise)))) for _ in range(draws) for clean, _ in records]


def mix_at(clean: np.ndarray, noise: np.ndarray, snr_db: float, offset: int) -> np.ndarray:
    """`clean` plus the noise from `offset` on at `snr_db`, both powers taken about their means."""
    segment = np.resize(np.roll(noise, -offset), clean.size)
    segment = segment - segment.mean()
    return clean + gain_for_snr(clean - clean.mean(), segment, snr_db) * segment


def neurokit_clean(noisy: np.ndarray, rate: int) -> np.ndarray:
    import neurokit2 as nk

    return np.asarray(nk.ecg_clean(noisy, sampling_rate=rate), dtype=np.float64)


def r_amp_summary(deviations: np.ndarray) -> str:
    """One record's R-amplitude errors in %: whether the mean hides a few bad beats, or a bias."""
    if deviations.size == 0:
        return "no beat with an R wave"
    errors = 100 * np.abs(deviations)
    return (
        f"{deviations.size} beats, R-amp mean {errors.mean():.1f} median {np.median(errors):.1f} "
        f"p90 {np.percentile(errors, 90):.1f} bias {100 * deviations.mean():+.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of each test record")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--draws", type=int, default=1, help="noise offsets per record and noisy condition (more beats behind each F1)"
    )
    parser.add_argument("--json", default=None, help="write every row here too")
    parser.add_argument(
        "--r-amp-detail", action="store_true", help="also the R-amplitude error per record: mean, median, bias, p90"
    )
    args = parser.parse_args()
    if args.draws < 1:
        parser.error(f"--draws must be at least 1, got {args.draws}")
    torch.set_num_threads(args.threads)
    systems = {
        "noisy": lambda x, r: x,
        "bandpass": lambda x, r: band_filter(x, r),
        "neurokit2": neurokit_clean,
    }
    for item in args.checkpoint:
        name, _, paths = item.partition("=")
        models = [ModelSystem(path) for path in paths.split("+")]  # A+B: the mean of the models' outputs
        for path, model in zip(paths.split("+"), models):
            if model.rate != RATE:
                raise SystemExit(f"{path}: trained at {model.rate} Hz, this benchmark is at {RATE} Hz")
        systems[name] = lambda x, r, ms=models: np.mean(
            [m(x.astype(np.float32), r) for m in ms], axis=0, dtype=np.float64
        )
    records = test_records(args.minutes)
    noises = {name: noise_stretch(name) for name in {n for n, _ in CONDITIONS}}
    print(header("ECG denoising on held-out MIT-BIH records + held-out NSTDB noise", SEED))
    seconds = sum(c.size for c, _ in records) / RATE
    beats = sum(len(b) for _, b in records)
    print(f"# {len(records)} test records x {args.minutes:g} min = {seconds / 60:.1f} min, {beats} annotated beats")
    if args.draws > 1:
        print(f"# each noisy condition at {args.draws} noise offsets per record: {args.draws * beats} beats scored")
    print(f"{'noise':<9} {'system':<12} {'R Se':>6} {'R PP':>6} {'R F1':>6} {'R-amp %':>8} {'bandSNR':>8} {'RTF':>7}")
    rows = []
    conditions = [(name, snr, test_mixes(records, noises[name], name, snr, args.draws)) for name, snr in CONDITIONS]
    conditions.append(("clean", None, [clean for clean, _ in records]))
    for noise_name, snr, mixes in conditions:
        label = f"{noise_name} {snr:+3.0f} dB" if snr is not None else f"{noise_name:<9}"
        for system, fn in systems.items():
            if snr is None and system == "noisy":  # the identity on a clean lead scores nothing
                continue
            scores, elapsed, detail = [], 0.0, []
            for (clean, annotated), noisy in zip(records * (len(mixes) // len(records)), mixes):
                start = time.perf_counter()
                out = fn(noisy, RATE)
                elapsed += time.perf_counter() - start
                scores.append(ecg_scores(out, clean, RATE, annotated))
                if args.r_amp_detail:
                    detail.append(r_amplitude_deviations(out, clean, annotated, RATE))
            mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
            rtf = elapsed / (seconds * len(mixes) / len(records))
            rows.append({"noise": noise_name, "snr_db": snr, "system": system, "rtf": rtf, **mean})
            print(
                f"{label} {system:<12} {mean['r_se']:>6.3f} {mean['r_pp']:>6.3f} "
                f"{mean['r_f1']:>6.3f} {100 * mean['r_amp_error']:>8.1f} {mean['band_snr']:>8.2f} {rtf:>7.4f}",
                flush=True,
            )
            if snr is None:
                print("    band SNR per record: " + " / ".join(f"{row['band_snr']:.1f}" for row in scores))
            for index, deviations in enumerate(detail):
                draw = f", draw {index // len(records)}" if args.draws > 1 else ""
                print(f"    record {index % len(records)}{draw}: {r_amp_summary(deviations)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

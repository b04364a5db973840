"""Scoring a denoiser: on a fixed set of segments at one or several noise levels, or on folders of real
recordings (noisy/clean pairs matched by name, or noisy files alone with DNSMOS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from denoise_vc.audio import AUDIO_SUFFIXES, audio_info, load_audio
from denoise_vc.data.datasets import FixedSet, level_name
from denoise_vc.errors import AudioFileError
from denoise_vc.metrics import mean_scores, pesq_mode, quality_note, quality_rate, score_pair, si_sdr


@torch.inference_mode()
def denoise_batches(model: nn.Module, noisy: np.ndarray, batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Run the model on (N, T) segments in batches; returns (N, T) float32."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(noisy), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(noisy[start : start + batch_size]))[:, None].to(device)
        out.append(model(x)[:, 0].float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros_like(noisy)


def noisy_at(dataset: FixedSet, gain: float | None, snr_db: float | None) -> np.ndarray:
    view = dataset.at(gain=gain, snr_db=snr_db)
    return np.stack([view[i][0][0].numpy() for i in range(len(view))])


def evaluate_levels(
    model: nn.Module,
    dataset: FixedSet,
    levels: list[tuple[float | None, float | None]],
    full: bool = True,
    peaks: bool = False,
    batch_size: int = 8,
    device: str = "cpu",
    band_hz=None,
    plan=None,
    plots: str | Path | None = None,
) -> dict[str, dict[str, float | None]]:
    """Mean metrics per level `(gain, snr_db)`; `full=False` computes SI-SDR only (fast, for validation).
    With `peaks` (ECG), the clinical scores too, against the segments' annotated beats where the data has them.
    With an inference `plan`, each segment runs through `denoise`'s sliding windows (e.g. 5 s, stitched by
    cross-fades) instead of in one piece; `plots` (a folder) gets one figure of the first segment per level."""
    from denoise_vc.inference import enhance_array

    results = {}
    for gain, snr_db in levels:
        noisy = noisy_at(dataset, gain, snr_db)
        if plan is None:
            denoised = denoise_batches(model, noisy, batch_size, device)
        else:
            with torch.inference_mode():
                denoised = np.stack([enhance_array(model.eval(), x, plan, device) for x in noisy])
        if plots:
            _plot_level(Path(plots), level_name(gain, snr_db), dataset, noisy, denoised, peaks)
        rows = []
        for est, ref, nsy, known in zip(denoised, dataset.clean, noisy, dataset.beats):
            if full:
                rows.append(score_pair(est, ref, nsy, dataset.sample_rate, peaks=peaks, beats=known, band_hz=band_hz))
            else:
                rows.append({"si_sdr": si_sdr(est, ref), "si_sdr_noisy": si_sdr(nsy, ref)})
        results[level_name(gain, snr_db)] = mean_scores(rows)
    return results


def _plot_level(folder: Path, level: str, dataset: FixedSet, noisy: np.ndarray, denoised: np.ndarray, peaks: bool):
    from denoise_vc.plots import plot_beats, plot_example

    title = f"test segment 0 at noise level {level}"
    if peaks:
        plot_beats(folder / f"beats_{level}.png", dataset.clean[0], noisy[0], denoised[0], dataset.sample_rate,
                   dataset.beats[0], title)  # fmt: skip
    else:
        plot_example(dataset.clean[0], noisy[0], denoised[0], dataset.sample_rate, folder / f"example_{level}.png",
                     title)  # fmt: skip


COLUMNS = [
    ("si_sdr_noisy", "SI-SDR in"),
    ("si_sdr", "SI-SDR out"),
    ("si_sdr_i", "SI-SDRi"),
    ("pesq_noisy", "PESQ in"),
    ("pesq", "PESQ out"),
    ("stoi_noisy", "STOI in"),
    ("stoi", "STOI out"),
    ("r_f1_noisy", "R F1 in"),
    ("r_f1", "R F1 out"),
    ("r_se", "R Se out"),
    ("r_pp", "R PP out"),
    ("r_amp_error_noisy", "R-amp in"),
    ("r_amp_error", "R-amp out"),
    ("band_snr_noisy", "bandSNR in"),
    ("band_snr", "bandSNR out"),
]
# Folder evaluation: every metric of the noisy input (in) beside the output's (out) and the improvement.
FILE_COLUMNS = [
    (f"{key}{suffix}", f"{title}{label}")
    for key, title in (("si_sdr", "SI-SDR"), ("pesq", "PESQ"), ("stoi", "STOI"), ("estoi", "ESTOI"))
    for suffix, label in (("_noisy", " in"), ("", " out"), ("_i", "i"))
]
DNSMOS_COLUMNS = [
    (f"{key}{suffix}", f"{key.upper()}{label}")
    for key in ("sig", "bak", "ovrl")
    for suffix, label in (("_noisy", " in"), ("", " out"), ("_i", "i"))
]


def format_rows(rows: dict[str, dict], columns: list[tuple[str, str]], label: str) -> list[str]:
    """Plain-text table lines, one per row (a level, a file, the mean), of the columns any row has."""
    present = [(k, h) for k, h in columns if any(k in r for r in rows.values())]
    width = max([len(label), *map(len, rows)])
    header = f"{label:>{width}} " + " ".join(f"{h:>10}" for _, h in present)
    lines = [header, "-" * len(header)]
    for name, row in rows.items():
        cells = [f"{'n/a':>10}" if row.get(key) is None else f"{row[key]:>10.3f}" for key, _ in present]
        lines.append(f"{name:>{width}} " + " ".join(cells))
    return lines


def format_table(results: dict[str, dict[str, float | None]], sample_rate: int) -> str:
    """A plain-text table with one row per level; the last line says how PESQ/STOI were computed or why not."""
    lines = format_rows(results, COLUMNS, "level")
    lines.append(f"SI-SDR in dB; in = noisy input, out = denoised; {quality_note([sample_rate])}")
    if any("r_f1" in row for row in results.values()):
        lines.append(
            "R peaks: neurokit2 detector vs the annotated beats (else the detector on the clean signal), one-to-one"
            " within 150 ms (wfdb compare_annotations); R-amp = mean relative R-amplitude error; band SNR in dB"
            " over the data's band (data.band_hz)"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- folders of real recordings

LENGTH_TOLERANCE_S = 0.010  # a pair whose lengths differ by more is refused; within it the longer one is trimmed
META_KEYS = ("sample_rate", "seconds", "pesq_mode")  # per-file facts that are not averaged


@dataclass(frozen=True)
class FilePair:
    name: str  # the noisy file's path below its folder, as `denoise` names its output there
    noisy: Path
    clean: Path | None  # None: no reference (DNSMOS)
    sample_rate: int


def audio_files(folder: str | Path, role: str) -> dict[str, Path]:
    """Name (path below `folder` without its suffix) -> file, for every .wav/.flac/.ogg below `folder`: the
    files `denoise` takes from a folder."""
    folder = Path(folder)
    if not folder.exists():
        raise AudioFileError(f"{folder}: {role} folder not found")
    if not folder.is_dir():
        raise AudioFileError(f"{folder}: is a file, --{role} takes a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise AudioFileError(f"{folder}: no .wav/.flac/.ogg files")
    found: dict[str, Path] = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            raise AudioFileError(f"{path}: same name as {found[key]}; pairs are matched by name, keep one of them")
        found[key] = path
    return found


def pair_folders(noisy_dir: str | Path, clean_dir: str | Path | None = None) -> tuple[list[FilePair], list[Path]]:
    """(pairs, clean files without a noisy partner) of two folders matched by file name (path without suffix).

    Refused with a one-line error naming the file: a noisy file without a clean partner, folders with no name in
    common, an empty or missing folder, an unreadable or empty file, a pair at two sample rates or whose lengths
    differ by more than LENGTH_TOLERANCE_S. Only headers are read here; samples are checked when they are read.
    """
    noisy_dir = Path(noisy_dir)
    noisy = audio_files(noisy_dir, "noisy")
    clean = audio_files(clean_dir, "clean") if clean_dir is not None else {}
    if clean_dir is not None:
        if not noisy.keys() & clean.keys():
            raise AudioFileError(
                f"{noisy_dir} and {clean_dir}: no file names in common (e.g. {next(iter(noisy))!r} and "
                f"{next(iter(clean))!r}); noisy and clean files are matched by name"
            )
        lonely = [key for key in noisy if key not in clean]
        if lonely:
            more = f" ({len(lonely) - 1} more noisy files have none)" if len(lonely) > 1 else ""
            raise AudioFileError(f"{noisy[lonely[0]]}: no clean partner named {lonely[0]!r} in {clean_dir}{more}")
    pairs = []
    for key, path in noisy.items():
        info = _header(path)
        partner = clean.get(key)
        if partner is not None:
            ref = _header(partner)
            if ref.samplerate != info.samplerate:
                raise AudioFileError(
                    f"{path}: {info.samplerate} Hz but its clean partner {partner} is {ref.samplerate} Hz; "
                    "a pair must share one sample rate"
                )
            if abs(info.frames - ref.frames) > round(LENGTH_TOLERANCE_S * info.samplerate):
                raise AudioFileError(
                    f"{path}: {info.frames / info.samplerate:.3f} s but its clean partner {partner} is "
                    f"{ref.frames / ref.samplerate:.3f} s; a pair's lengths may differ by at most "
                    f"{LENGTH_TOLERANCE_S * 1000:.0f} ms"
                )
        pairs.append(FilePair(path.relative_to(noisy_dir).as_posix(), path, partner, int(info.samplerate)))
    extra = [path for key, path in clean.items() if key not in noisy]
    return pairs, extra


def _header(path: Path):
    info = audio_info(path)
    if info.frames == 0:
        raise AudioFileError(f"{path}: contains no samples")
    return info


def _mono(path: Path, rate: int) -> np.ndarray:
    """A file as the metrics take it: channels averaged, at its own rate (checked against the pair's)."""
    x, got = load_audio(path, mono=True)
    if got != rate:
        raise AudioFileError(f"{path}: {got} Hz, expected {rate} Hz")
    return x[0]


def score_folder(pairs: list[FilePair], denoised_dir: str | Path, progress: bool = False) -> dict[str, dict]:
    """Per file: SI-SDR, PESQ, STOI and ESTOI of the noisy input and of `denoised_dir/<name>` (what `denoise` wrote
    for it) against the clean partner, at the clean file's rate (PESQ/STOI at `quality_rate`), and the improvement.
    Multi-channel files are scored on their channel mean; a pair's few extra samples (within tolerance) are cut."""
    from tqdm import tqdm

    rows = {}
    for pair in tqdm(pairs, desc="scoring", unit="file", disable=not progress):
        noisy, clean = _mono(pair.noisy, pair.sample_rate), _mono(pair.clean, pair.sample_rate)
        output = _mono(Path(denoised_dir) / pair.name, pair.sample_rate)
        n = min(len(noisy), len(clean), len(output))
        scores = score_pair(output[:n], clean[:n], noisy[:n], pair.sample_rate, extended=True)
        rate = quality_rate(pair.sample_rate)
        rows[pair.name] = {
            "sample_rate": pair.sample_rate,
            "seconds": n / pair.sample_rate,
            "pesq_mode": None if rate is None else pesq_mode(rate),
            **scores,
        }
    return rows


def dnsmos_folder(pairs: list[FilePair], denoised_dir: str | Path, progress: bool = False) -> dict[str, dict]:
    """Per file: DNSMOS P.835 SIG, BAK and OVRL of the noisy input and of what `denoise` wrote for it, and the
    improvement; no reference needed. Multi-channel files are scored on their channel mean."""
    from tqdm import tqdm

    from denoise_vc.dnsmos import dnsmos

    rows = {}
    for pair in tqdm(pairs, desc="DNSMOS", unit="file", disable=not progress):
        noisy = _mono(pair.noisy, pair.sample_rate)
        output = _mono(Path(denoised_dir) / pair.name, pair.sample_rate)
        before, after = dnsmos(noisy, pair.sample_rate), dnsmos(output, pair.sample_rate)
        row: dict = {"sample_rate": pair.sample_rate, "seconds": len(noisy) / pair.sample_rate}
        for key in ("sig", "bak", "ovrl"):
            row[f"{key}_noisy"], row[key], row[f"{key}_i"] = before[key], after[key], after[key] - before[key]
        rows[pair.name] = row
    return rows


def mean_of_files(rows: dict[str, dict]) -> dict[str, float | None]:
    """The mean of every metric over the files where it is defined."""
    return mean_scores([{k: v for k, v in row.items() if k not in META_KEYS} for row in rows.values()])


def format_folder_table(rows: dict[str, dict], mean: dict, dnsmos: bool = False, extra_clean: int = 0) -> str:
    """One row per file and the mean, under a header line that says what was measured and how."""
    rates = {row["sample_rate"] for row in rows.values()}
    if dnsmos:
        note = (
            "DNSMOS P.835 (no reference; 1-5, higher is better): SIG speech, BAK background, OVRL overall, "
            "at 16 kHz" + _resampled(rates) + "; in = noisy input, out = denoised, i = out - in"
        )
    else:
        note = (
            f"in = noisy input, out = denoised, i = out - in; SI-SDR in dB at each file's rate; "
            f"{quality_note(rates, extended=True)}"
        )
        if len({row.get("pesq_mode") for row in rows.values()} - {None}) > 1:
            note += "; the mean PESQ mixes wb and nb files"
        if extra_clean:
            note += f"; {extra_clean} clean file{'s' * (extra_clean != 1)} without a noisy partner ignored"
    lines = [note, *format_rows({**rows, "mean": mean}, DNSMOS_COLUMNS if dnsmos else FILE_COLUMNS, "file")]
    lines.insert(len(lines) - 1, "-" * len(lines[1]))
    return "\n".join(lines)


def _resampled(rates: set[int]) -> str:
    moved = sorted(r for r in rates if r != 16000)
    return f" (resampled from {', '.join(map(str, moved))} Hz with soxr HQ)" if moved else ""

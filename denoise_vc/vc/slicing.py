"""RVC-style training-data preparation: cut recordings at silences, split into short overlapping chunks,
normalise their loudness, write them at the model rate and at 16 kHz, and extract their F0.

The layout under the output folder (what `denoise-vc vc-slice` writes):

    wavs/<name>.wav        chunk at the model rate (`rate`, default 40 kHz like RVC's 40k models), PCM 16
    wavs16k/<name>.wav     the same chunk at 16 kHz (content encoders such as HuBERT expect that rate)
    f0/<name>.npy          F0 in Hz per 10 ms frame of the 16 kHz chunk (float32, 0 = unvoiced)
    f0_coarse/<name>.npy   the same as RVC's 1..255 log-scale code (int64), 0 for unvoiced frames
    manifest.json          per input: its path, size, mtime, the settings fingerprint and its chunk names

`<name>` is `<input's relative path, '/' -> '__', no suffix>_<segment>_<chunk>`. A run is resumable and
idempotent: an input whose file and settings match its manifest record (and whose outputs all exist) is
skipped; one that changed is redone and its old chunks removed. Every file is written to a temp file and
renamed into place, and the manifest is rewritten after each input, so a killed run loses at most the input
it was on. The inputs are only read.

Rules, chosen so that the counts are predictable:
- silence: 20 ms frames whose RMS (40 ms window) is more than `threshold_db` below the file's loudest frame
  (or below -100 dBFS: digital silence) are silent; a silent run of at least `min_silence_s` is cut out,
  leaving up to `keep_silence_s` beside the speech on each side (like RVC's Slicer); leading and trailing
  silence is trimmed to `keep_silence_s` whatever its length.
- chunks: a segment of L seconds becomes n = ceil((L - overlap) / (chunk - overlap)) chunks (1 if L <= chunk)
  of *equal* length (L + (n - 1) overlap) / n <= chunk, neighbours overlapping by exactly `overlap_s`. So there
  is no short last piece to merge or keep: every chunk of a split segment lasts at least (chunk + overlap) / 2.
  Segments shorter than `min_chunk_s` are dropped (and counted).
- loudness: RVC's rule, per chunk: mix 75 % of the chunk peak-normalised to 0.9 with 25 % of the chunk as it
  is; a chunk whose result would still exceed 0.99 (an input louder than full scale) is scaled down to a peak
  of 0.99, so nothing ever clips.
- F0: pyworld harvest (default; robust) or dio (fast), each refined by stonemask, 50..1100 Hz, on the 16 kHz
  chunk at 10 ms frames; the coarse code maps mel(f0) = 1127 ln(1 + f0 / 700) linearly from [mel(50 Hz),
  mel(1100 Hz)] to [1, 255], rounds and clips to 1..255; unlike RVC (which writes 1) unvoiced frames get 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from denoise_vc.audio import load_audio, resample, write_audio_atomic
from denoise_vc.errors import AudioFileError, ConfigError
from denoise_vc.paths import write_atomically
from denoise_vc.vc.features import load_pyworld

FORMAT_VERSION = 1  # bump when the algorithm changes what a chunk holds: every input is then redone
F0_RATE = 16000
F0_PERIOD_MS = 10.0
F0_MIN_HZ = 50.0
F0_MAX_HZ = 1100.0
F0_METHODS = ("harvest", "dio")
SILENCE_FLOOR_DB = -100.0  # frames quieter than this are silent whatever the loudest frame is
PEAK, ALPHA, CEILING = 0.9, 0.75, 0.99  # RVC's loudness rule, plus a ceiling so nothing clips
FOLDERS = {"wavs": ".wav", "wavs16k": ".wav", "f0": ".npy", "f0_coarse": ".npy"}
MANIFEST = "manifest.json"

Denoise = Callable[[np.ndarray, int], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class SliceSettings:
    """Everything that decides what a chunk holds; its fingerprint keys the manifest. The defaults here are the
    only ones (the CLI passes through what the user set)."""

    rate: int = 40000
    chunk_s: float = 4.0
    overlap_s: float = 0.3
    min_silence_s: float = 0.3
    threshold_db: float = -40.0
    keep_silence_s: float = 0.1
    min_chunk_s: float = 0.5
    hop_s: float = 0.02
    f0: str = "harvest"
    denoiser: str | None = None  # the denoiser's identity (path, size, mtime), None for none

    def check(self) -> None:
        """ConfigError naming the option (as the CLI spells it) for a value out of range, before any work."""

        def bad(name: str, value, rule: str) -> ConfigError:
            return ConfigError(f"--{name.replace('_', '-')} {value}: must be {rule}")

        if not (isinstance(self.rate, int) and 8000 <= self.rate <= 384000):
            raise bad("rate", self.rate, "an integer sample rate in [8000, 384000] Hz")
        limits = {
            "chunk_s": (0.5, 600.0, "in [0.5, 600] s"),
            "min_silence_s": (1e-3, 600.0, "in (0, 600] s"),
            "keep_silence_s": (0.0, 600.0, "in [0, 600] s"),
            "min_chunk_s": (0.0, 600.0, "in [0, 600] s"),
            "hop_s": (1e-3, 1.0, "in [0.001, 1] s"),
            "threshold_db": (-200.0, -1e-9, "negative dB, at least -200"),
        }
        for name, (lo, hi, rule) in limits.items():
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
                raise bad(name, value, f"a finite number {rule}")
        if not (math.isfinite(self.overlap_s) and 0 <= self.overlap_s < self.chunk_s):
            raise bad("overlap_s", self.overlap_s, f"a finite number in [0, --chunk-s {self.chunk_s}) s")
        if self.f0 not in F0_METHODS:
            raise bad("f0", self.f0, " or ".join(F0_METHODS))

    def fingerprint(self) -> str:
        payload = json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- silence


def frame_db(wave: np.ndarray, rate: int, hop_s: float) -> np.ndarray:
    """(frames,) RMS in dBFS of frame i = samples [i hop, (i + 1) hop), measured over a window of two hops
    centred on it (edges: over the samples that exist), so a frame's level does not hinge on one period."""
    x = np.asarray(wave, dtype=np.float64)
    hop = max(1, int(round(hop_s * rate)))
    n_frames = -(-len(x) // hop)
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    centre = np.arange(n_frames) * hop + hop // 2
    lo = np.clip(centre - hop, 0, len(x))
    hi = np.clip(centre + hop, 0, len(x))
    mean = (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(np.maximum(mean, 1e-20))


def speech_segments(wave: np.ndarray, rate: int, settings: SliceSettings) -> list[tuple[int, int]]:
    """[(start, end) samples] of speech between the silences `settings` cuts out (see the module notes);
    empty for a silent file."""
    n = len(wave)
    hop = max(1, int(round(settings.hop_s * rate)))
    db = frame_db(wave, rate, settings.hop_s)
    if len(db) == 0:
        return []
    silent = db < max(db.max() + settings.threshold_db, SILENCE_FLOOR_DB)
    if silent.all():
        return []
    keep = int(round(settings.keep_silence_s * rate))
    min_silence = settings.min_silence_s * rate
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    start, segments = 0, []
    for s, e in zip(edges[::2], edges[1::2]):
        a, b = int(s) * hop, min(int(e) * hop, n)  # the silent run, in samples
        if a == 0:  # leading silence
            start = max(0, b - keep)
        elif b == n:  # trailing silence
            segments.append((start, min(n, a + keep)))
            start = n
        elif b - a >= min_silence:
            side = min(keep, (b - a) // 2)
            segments.append((start, a + side))
            start = b - side
    if start < n:
        segments.append((start, n))
    return [(a, b) for a, b in segments if b > a]


# ---------------------------------------------------------------------------------------------- chunks


def chunk_bounds(length: int, rate: int, chunk_s: float, overlap_s: float) -> list[tuple[int, int]]:
    """[(start, end)] of the fewest equal chunks of at most `chunk_s` that cover `length` samples with neighbours
    overlapping by `overlap_s` (to the sample): n = ceil((L - overlap) / (chunk - overlap)), 1 if L <= chunk."""
    chunk = int(math.floor(chunk_s * rate))
    overlap = int(round(overlap_s * rate))
    if length <= chunk:
        return [(0, length)]
    n = math.ceil((length - overlap) / (chunk - overlap))
    size = min(chunk, -(-(length + (n - 1) * overlap) // n))
    starts = [round(k * (length - size) / (n - 1)) for k in range(n)]
    return [(s, s + size) for s in starts]


def normalise_loudness(chunk: np.ndarray) -> np.ndarray:
    """RVC's rule: 75 % of the chunk peak-normalised to 0.9 plus 25 % of it as it is; then at most 0.99 peak."""
    peak = float(np.max(np.abs(chunk))) if len(chunk) else 0.0
    if peak <= 0:
        return np.asarray(chunk, dtype=np.float32).copy()
    out = chunk * (PEAK * ALPHA / peak) + (1 - ALPHA) * chunk
    top = float(np.max(np.abs(out)))
    if top > CEILING:
        out = out * (CEILING / top)
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------- F0


def extract_f0(wave16k: np.ndarray, method: str = "harvest") -> np.ndarray:
    """(frames,) F0 in Hz (float32, 0 = unvoiced) of 16 kHz audio at 10 ms frames, WORLD harvest or dio refined
    by stonemask (as RVC does)."""
    pyworld = load_pyworld()
    x = np.asarray(wave16k, dtype=np.float64)
    estimate = {"harvest": pyworld.harvest, "dio": pyworld.dio}[method]
    f0, times = estimate(x, F0_RATE, f0_floor=F0_MIN_HZ, f0_ceil=F0_MAX_HZ, frame_period=F0_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, F0_RATE)
    return np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0).astype(np.float32)


def _mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def coarse_f0(f0: np.ndarray) -> np.ndarray:
    """RVC's coarse pitch: mel(f0) mapped linearly from [mel(50), mel(1100)] to [1, 255], rounded, clipped to
    1..255 (int64); 0 where f0 is 0 (unvoiced), where RVC writes 1."""
    f0 = np.asarray(f0, dtype=np.float64)
    lo, hi = _mel(F0_MIN_HZ), _mel(F0_MAX_HZ)
    code = np.clip(np.rint((_mel(np.maximum(f0, 0.0)) - lo) * 254.0 / (hi - lo) + 1.0), 1, 255)
    return np.where(f0 > 0, code, 0).astype(np.int64)


# ---------------------------------------------------------------------------------------------- files


def chunk_prefix(rel: str | Path) -> str:
    """The name stem of an input's chunks: its path relative to the input folder, '/' -> '__', no suffix, so
    inputs in different subfolders never share names."""
    rel = Path(rel)
    return "__".join((*rel.parent.parts, rel.stem)) if rel.parent != Path(".") else rel.stem


def _owned(prefix: str) -> re.Pattern:
    """Output names (and temp names of a killed run) that belong to `prefix`: exactly two integers follow it, so
    input `a` never claims `a_1`'s `a_1_0_0`."""
    return re.compile(rf"^\.?{re.escape(prefix)}_\d+_\d+(\.wav|\.npy)(\..*)?$")


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.exists():
        return {"format": FORMAT_VERSION, "inputs": {}}
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("inputs"), dict):
            raise ValueError("no 'inputs' table")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable manifest ({exc}); delete it to redo every input") from None
    return manifest


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True)
    write_atomically(out / MANIFEST, lambda tmp: Path(tmp).write_text(text))


def _identity(src: Path) -> dict[str, Any]:
    stat = src.stat()
    return {"path": str(src.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def up_to_date(record: dict[str, Any] | None, src: Path, settings: SliceSettings, out: Path) -> bool:
    """Whether `record` (the manifest's entry) still describes `src` under `settings` and its outputs exist."""
    if not record or not src.is_file():
        return False
    if {k: record.get(k) for k in ("path", "size", "mtime_ns")} != _identity(src):
        return False
    if record.get("settings") != settings.fingerprint():
        return False
    names = record.get("chunks") or []
    return all((out / folder / f"{name}{ext}").is_file() for name in names for folder, ext in FOLDERS.items())


def remove_outputs(out: Path, prefix: str, keep: set[str] = frozenset()) -> int:
    """Delete `prefix`'s chunk files (and leftover temp files) except the names in `keep`; how many."""
    owned, removed = _owned(prefix), 0
    for folder in FOLDERS:
        directory = out / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            leftover = path.name.startswith(".")  # a temp file of a killed run
            if owned.match(path.name) and (leftover or path.stem not in keep):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


@dataclass
class SliceResult:
    chunks: list[str]
    segments: int
    dropped: int  # segments shorter than min_chunk_s
    seconds: float  # audio written at the model rate


def slice_wave(
    wave: np.ndarray, rate: int, prefix: str, out: Path, settings: SliceSettings, denoise: Denoise | None = None
) -> SliceResult:
    """Denoise (optional), resample to the model rate, cut, chunk, normalise, write both rates and the F0."""
    if denoise is not None:
        wave, rate = denoise(wave, rate)
    wave = resample(np.asarray(wave, dtype=np.float32), rate, settings.rate)
    rate = settings.rate
    names, dropped, seconds = [], 0, 0.0
    segments = speech_segments(wave, rate, settings)
    for s, (a, b) in enumerate(segments):
        if b - a < settings.min_chunk_s * rate:
            dropped += 1
            continue
        for c, (x, y) in enumerate(chunk_bounds(b - a, rate, settings.chunk_s, settings.overlap_s)):
            name = f"{prefix}_{s}_{c}"
            chunk = normalise_loudness(wave[a + x : a + y])
            low = resample(chunk, rate, F0_RATE)
            f0 = extract_f0(low, settings.f0)
            write_audio_atomic(out / "wavs" / f"{name}.wav", chunk, rate, subtype="PCM_16")
            write_audio_atomic(out / "wavs16k" / f"{name}.wav", low, F0_RATE, subtype="PCM_16")
            _save_npy(out / "f0" / f"{name}.npy", f0)
            _save_npy(out / "f0_coarse" / f"{name}.npy", coarse_f0(f0))
            names.append(name)
            seconds += len(chunk) / rate
    return SliceResult(names, len(segments), dropped, seconds)


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    write_atomically(path, write)


def slice_file(
    src: Path,
    prefix: str,
    out: Path,
    settings: SliceSettings,
    manifest: dict[str, Any],
    denoise: Denoise | None = None,
) -> SliceResult | None:
    """Slice one input unless the manifest says it is done (None then); record it in the manifest (saved)."""
    src, out = Path(src), Path(out)
    inputs = manifest["inputs"]
    if up_to_date(inputs.get(prefix), src, settings, out):
        return None
    identity = _identity(src) if src.is_file() else None
    wave, rate = load_audio(src)  # raises AudioFileError for missing or unreadable files
    if identity is None:
        raise AudioFileError(f"{src}: not a regular file")
    result = slice_wave(wave[0], rate, prefix, out, settings, denoise)
    remove_outputs(out, prefix, keep=set(result.chunks))  # an earlier run's chunks this one did not write
    inputs[prefix] = {
        **identity,
        "settings": settings.fingerprint(),
        "chunks": result.chunks,
        "segments": result.segments,
        "dropped": result.dropped,
        "seconds": round(result.seconds, 3),
    }
    save_manifest(out, manifest)
    return result


def check_output_folder(out: Path, inputs: list[str | Path]) -> None:
    """ConfigError when `out` is an input folder or lies inside one (its outputs would become inputs), when an
    input lies inside `out`, or when `out` is a file."""
    target = Path(out).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"-o {out}: is an existing file; vc-slice writes into an output folder")
    for raw in inputs:
        src = Path(raw).expanduser().resolve()
        if src.is_dir() and (target == src or src in target.parents):
            raise ConfigError(f"-o {out}: lies inside the input folder {raw}; choose an output folder outside it")
        if target in src.parents:
            raise ConfigError(f"{raw}: lies inside the output folder {out}; choose another output folder")


def output_names_taken(prefix: str, src: Path, claimed: dict[str, Path]) -> str | None:
    """A problem line when another input of this run already uses `prefix` (e.g. a.wav and a.flac)."""
    other = claimed.get(prefix)
    if other is not None and os.path.realpath(other) != os.path.realpath(src):
        return f"{src}: its chunk names {prefix}_* are already those of {other}; rename one of them"
    return None

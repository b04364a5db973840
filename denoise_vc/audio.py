"""Audio I/O: load any supported file as float32 (channels, time) at a chosen rate, write atomically.

Inputs are never modified; every returned array is a fresh copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from denoise_vc.errors import AudioFileError
from denoise_vc.paths import write_atomically

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MAT_SUFFIX = ".mat"
WFDB_SUFFIX = ".hea"  # a PhysioNet WFDB record is named by its header; the samples sit in the .dat it lists
SUPPORTED_SUFFIXES = AUDIO_SUFFIXES + (MAT_SUFFIX, WFDB_SUFFIX)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (the resampler librosa uses by default)."""
    if orig_sr == target_sr:
        return np.array(x, dtype=np.float32, copy=True)
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] == 0:
        return x.copy()
    if x.ndim == 1:
        return soxr.resample(x, orig_sr, target_sr, quality="HQ").astype(np.float32)
    # soxr wants (time, channels)
    out = soxr.resample(np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T).reshape(*x.shape[:-1], -1).astype(np.float32)


def _check_finite(x: np.ndarray, path: Path) -> None:
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise AudioFileError(f"{path}: {bad} samples are NaN or Inf")


def load_mat(path: Path, variable: str | None = None) -> np.ndarray:
    """Load a 1-D or 2-D numeric array from a MATLAB file as (channels, time)."""
    return mat_signal(path, read_mat_variables(path), variable)[1]


def read_mat_variables(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a MATLAB file (scipy's `__header__`-style entries left out)."""
    from scipy.io import loadmat

    try:
        content = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for bad files
        raise AudioFileError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    return {k: v for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray)}


def mat_signal(path: Path, arrays: dict[str, np.ndarray], variable: str | None = None) -> tuple[str, np.ndarray]:
    """(name, (channels, time) float32) of the signal among a MATLAB file's variables: `variable`, or the only
    numeric array."""
    if variable is not None:
        if variable not in arrays:
            raise AudioFileError(f"{path}: no variable {variable!r} (found: {', '.join(sorted(arrays)) or 'none'})")
        name = variable
    else:
        numeric = {k: v for k, v in arrays.items() if is_signal_variable(v)}
        if len(numeric) != 1:
            raise AudioFileError(
                f"{path}: holds {len(numeric)} numeric array variables ({', '.join(sorted(numeric)) or 'none'}); "
                "name the signal with data.mat_variable (denoise: --mat-variable)"
            )
        name = next(iter(numeric))
    array = arrays[name]
    if array.dtype.kind not in "fiu":
        raise AudioFileError(f"{path}: variable is not numeric (dtype {array.dtype})")
    array = np.squeeze(np.asarray(array, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2:
        if array.shape[0] > array.shape[1]:  # MATLAB data is usually (time, channels)
            array = array.T
    else:
        raise AudioFileError(f"{path}: variable has {array.ndim} dimensions, expected 1 or 2")
    return name, np.ascontiguousarray(array)


def is_signal_variable(value) -> bool:
    """A MATLAB variable that can hold a signal: a numeric array of more than one value (a scalar such as `fs`
    beside the recording is not one)."""
    return isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and value.size > 1


def load_wfdb(path: Path) -> tuple[np.ndarray, int]:
    """A PhysioNet WFDB record (any storage format wfdb reads, e.g. MIT-BIH's 212) as (channels, time) in its
    physical units (mV for ECG), with the record's own sample rate."""
    record = read_wfdb_record(path)
    return np.ascontiguousarray(record.p_signal.T, dtype=np.float32), int(round(record.fs))


def read_wfdb_record(path: Path):
    """wfdb's Record of `path` (its .hea) in physical units, with its header fields (gains, formats, ...)."""
    import wfdb

    try:
        record = wfdb.rdrecord(str(path.with_suffix("")), physical=True)
    except Exception as exc:  # wfdb raises many types for missing .dat files and bad headers
        raise AudioFileError(f"{path}: not a readable WFDB record ({_short(exc)})") from None
    if record.p_signal is None or record.p_signal.size == 0:
        raise AudioFileError(f"{path}: WFDB record holds no samples")
    return record


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """soundfile's header info, with a one-line error for missing or unreadable files."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: file not found")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a directory, expected an audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if info.format == "WAV":
        _check_wav_complete(path)
    return info


def _check_wav_complete(path: Path) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (an interrupted copy or recording):
    libsndfile would quietly read the part that is there. A size of 0 or 0xFFFFFFFF (a writer that never
    went back to fill it in) is accepted."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as handle:
        if handle.read(12)[8:12] != b"WAVE":
            return
        while handle.tell() + 8 <= size:
            chunk, length = struct.unpack("<4sI", handle.read(8))
            if chunk == b"data":
                present = size - handle.tell()
                if length not in (0, 0xFFFFFFFF) and length > present:
                    raise AudioFileError(
                        f"{path}: truncated, the header declares {length} bytes of samples but {present} are present"
                    )
                return
            handle.seek(length + (length & 1), 1)


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    mono: bool = True,
    mat_variable: str | None = None,
    mat_sample_rate: int | None = None,
    channel: int | list[int] | None = None,
) -> tuple[np.ndarray, int]:
    """Load `path` as float32 (channels, time); keep one `channel` (or a list of them, in that order) or mix to
    mono, resample when asked.

    `.mat` files carry no rate: `mat_sample_rate` (or `sample_rate`) says what it is. Picking a channel
    matters for multi-lead ECG, where averaging leads would mix different projections of the heart.
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: file not found")
    if path.suffix.lower() == MAT_SUFFIX:
        x = load_mat(path, mat_variable)
        sr = int(mat_sample_rate or sample_rate or 0)
        if sr <= 0:
            raise AudioFileError(f"{path}: .mat files need data.mat_sample_rate")
    elif path.suffix.lower() == WFDB_SUFFIX:
        x, sr = load_wfdb(path)
    else:
        audio_info(path)
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioFileError(f"{path}: cannot decode audio ({_short(exc)})") from None
        x = np.ascontiguousarray(data.T)
    if x.shape[-1] == 0:
        raise AudioFileError(f"{path}: contains no samples")
    _check_finite(x, path)
    if channel is not None:
        picked = [channel] if isinstance(channel, int) else list(channel)
        for c in picked:
            if not -x.shape[0] <= c < x.shape[0]:
                raise AudioFileError(f"{path}: has {x.shape[0]} channels, channel {c} does not exist")
        x = x[picked]
    elif mono and x.shape[0] > 1:
        x = x.mean(axis=0, keepdims=True)
    if sample_rate is not None and sr != sample_rate:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return x.astype(np.float32, copy=False), int(sr)


def write_audio_atomic(path: str | Path, x: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    """Write (channels, time) or (time,) audio to a temp file beside `path`, then rename it into place."""
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    data = x.T if x.ndim == 2 else x
    return write_atomically(path, lambda tmp: sf.write(tmp, data, sample_rate, subtype=subtype), path.suffix or ".wav")


def list_audio_files(root: str | Path, suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES) -> list[Path]:
    """Every supported file below `root` (recursively), sorted so splits are reproducible."""
    root = Path(root)
    if not root.exists():
        raise AudioFileError(f"{root}: file or folder not found")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

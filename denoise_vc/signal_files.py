"""Biosignal files that `denoise` writes back in their own format and units: MATLAB `.mat` (the same variable,
orientation and other variables), PhysioNet WFDB records (`.hea` + `.dat`, the same storage format, gains,
baselines, units and signal names, via wfdb) and CSV (the same delimiter, header and time column).

Audio files (wav/flac/ogg) stream through `inference.enhance_file`; these formats are read whole, which suits
biosignals (an hour of ECG at 1 kHz is 14 MB of float32).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoise_vc.audio import MAT_SUFFIX, WFDB_SUFFIX, mat_signal, read_mat_variables, read_wfdb_record
from denoise_vc.errors import AudioFileError
from denoise_vc.paths import honour_umask, write_atomically

CSV_SUFFIX = ".csv"
SIGNAL_SUFFIXES = (MAT_SUFFIX, WFDB_SUFFIX, CSV_SUFFIX)
TIME_COLUMNS = ("time", "t", "time_s", "seconds", "timestamp")
RATE_VARIABLES = ("fs", "Fs", "FS", "sample_rate", "sampling_rate", "sr")


@dataclass
class SignalFile:
    """A signal read from `path` as float (channels, time) in its own units, and how to write one like it."""

    path: Path
    data: np.ndarray
    sample_rate: int | None  # None: the file does not say (a .mat without fs, a CSV without a time column)
    writer: Callable[[Path, np.ndarray], None]

    def write_like(self, dst: str | Path, data: np.ndarray) -> Path:
        """Write `data` (same shape as `self.data`) to `dst` in this file's format; nothing appears at `dst`
        until it is complete."""
        dst = Path(dst)
        if dst.resolve() == self.path.resolve():
            raise AudioFileError(f"{self.path}: output would overwrite the input; choose another output folder")
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.writer(dst, np.asarray(data, dtype=np.float64).reshape(self.data.shape))
        return dst


def read_signal(path: str | Path, mat_variable: str | None = None) -> SignalFile:
    """A .mat (its only signal variable, or `mat_variable`), WFDB (.hea) or .csv file, with its writer."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == MAT_SUFFIX:
        return _read_mat(path, mat_variable)
    if suffix == WFDB_SUFFIX:
        return _read_wfdb(path)
    if suffix == CSV_SUFFIX:
        return read_csv(path)
    raise AudioFileError(f"{path}: not a .mat, .hea or .csv signal file")


# -- MATLAB ---------------------------------------------------------------------------------------------------
def _read_mat(path: Path, variable: str | None) -> SignalFile:
    from scipy.io import savemat

    variables = read_mat_variables(path)
    name, data = mat_signal(path, variables, variable)  # names the file and the problem for ambiguous files
    original = variables[name]
    rate = next((float(np.squeeze(variables[k])) for k in RATE_VARIABLES if k in variables), None)

    def write(dst: Path, out: np.ndarray) -> None:
        shaped = out if original.ndim == 2 and original.shape[0] == out.shape[0] else out.T
        replaced = dict(variables, **{name: shaped.reshape(original.shape).astype(np.result_type(original, 1.0))})
        write_atomically(dst, lambda tmp: savemat(tmp, replaced))

    return SignalFile(path, data.astype(np.float64), None if rate is None else int(round(rate)), write)


# -- WFDB -----------------------------------------------------------------------------------------------------
def _read_wfdb(path: Path) -> SignalFile:
    import wfdb

    header = read_wfdb_record(path)  # samples and the header fields they are written back with

    def write(dst: Path, out: np.ndarray) -> None:
        """A record named like `dst` beside it, digitised with the input's gains and baselines (values beyond the
        storage format's range are held at its limits rather than wrapped)."""
        fmt = list(header.fmt)
        gain = np.asarray(header.adc_gain, dtype=np.float64)
        baseline = np.asarray(header.baseline, dtype=np.float64)
        digital = np.round(out.T * gain + baseline)
        lo, hi = _digital_range(fmt)
        digital = np.clip(digital, lo + 1, hi).astype(np.int64)  # the lowest value marks a missing sample
        with tempfile.TemporaryDirectory(prefix=f".{dst.stem}.", dir=dst.parent) as tmp:
            wfdb.wrsamp(
                dst.stem, fs=header.fs, units=list(header.units), sig_name=list(header.sig_name),
                d_signal=digital, fmt=fmt, adc_gain=list(header.adc_gain), baseline=list(header.baseline),
                comments=list(header.comments or []), write_dir=tmp,
            )  # fmt: skip
            written = sorted(Path(tmp).iterdir(), key=lambda p: p.suffix == WFDB_SUFFIX)  # the header goes last
            for part in written:
                honour_umask(part)
                os.replace(part, dst.parent / part.name)

    return SignalFile(path, header.p_signal.T.astype(np.float64), int(round(header.fs)), write)


def _digital_range(fmts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    bits = {"80": 8, "16": 16, "212": 12, "310": 10, "311": 10, "24": 24, "32": 32, "61": 16, "160": 16}
    width = np.array([bits.get(str(f), 16) for f in fmts])
    return -(2 ** (width - 1)), 2 ** (width - 1) - 1


# -- CSV ------------------------------------------------------------------------------------------------------
def read_csv(path: Path) -> SignalFile:
    """Numeric columns, each one channel; an optional header row; a column named time/t/timestamp/... is kept
    as it is and gives the sample rate."""
    text = path.read_text()
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t ")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r and any(c.strip() for c in r)]
    if not rows:
        raise AudioFileError(f"{path}: CSV holds no rows")
    header = None if all(is_number(c) for c in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    if not body:
        raise AudioFileError(f"{path}: CSV holds a header but no data rows")
    width = len(header) if header else len(body[0])
    bad = next((i for i, r in enumerate(body) if len(r) != width), None)
    if bad is not None:
        row = bad + 1 + bool(header)
        raise AudioFileError(f"{path}: CSV row {row} has {len(body[bad])} columns, not {width}")
    try:
        table = np.array([[float(c) for c in r] for r in body], dtype=np.float64)
    except ValueError:
        raise AudioFileError(f"{path}: CSV has non-numeric values below its header") from None
    time_col = next((i for i, name in enumerate(header or []) if name.lower() in TIME_COLUMNS), None)
    channels = [i for i in range(table.shape[1]) if i != time_col]
    if not channels:
        raise AudioFileError(f"{path}: CSV has no signal column besides its time column")
    if not np.all(np.isfinite(table[:, channels])):
        raise AudioFileError(f"{path}: CSV holds NaN or Inf samples")
    rate = None
    if time_col is not None and table.shape[0] > 1:
        step = float(np.median(np.diff(table[:, time_col])))
        if step <= 0:
            raise AudioFileError(f"{path}: the time column {header[time_col]!r} does not increase")
        rate = int(round(1.0 / step))

    def write(dst: Path, out: np.ndarray) -> None:
        result = table.copy()
        result[:, channels] = out.T

        def put(tmp: str) -> None:
            with open(tmp, "w", newline="") as handle:
                writer = csv.writer(handle, delimiter=delimiter)
                if header:
                    writer.writerow(header)
                writer.writerows([[f"{v:.9g}" for v in row] for row in result])

        write_atomically(dst, put)

    return SignalFile(path, np.ascontiguousarray(table[:, channels].T), rate, write)


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

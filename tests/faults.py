"""Fault injection for tests, named in `solver.callbacks` (so Ray workers, which import it through
PYTHONPATH, run it too): fail once after a chosen epoch, leaving a marker so the retry goes on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

EPOCH = "DENOISE_VC_TEST_FAIL_EPOCH"
MARKER = "DENOISE_VC_TEST_FAIL_MARKER"


def fail_once(solver, row: dict) -> None:
    """After epoch $DENOISE_VC_TEST_FAIL_EPOCH, the first time only: keep a copy of that epoch's last.pth
    beside the marker file $DENOISE_VC_TEST_FAIL_MARKER, write the marker, raise."""
    marker = Path(os.environ[MARKER])
    if row["epoch"] != int(os.environ[EPOCH]):
        return
    try:  # created atomically: of trials running side by side, exactly one fails
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    shutil.copyfile(solver.run_dir / "last.pth", marker.with_suffix(".pth"))
    os.write(handle, b"failed once\n")
    os.close(handle)
    raise RuntimeError(f"injected failure after epoch {row['epoch']}")


def arm(monkeypatch, epoch: int, marker: Path) -> str:
    """Set the environment (inherited by a Ray started afterwards) and return the override to use."""
    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv(EPOCH, str(epoch))
    monkeypatch.setenv(MARKER, str(marker))
    return "solver.callbacks=[faults:fail_once]"

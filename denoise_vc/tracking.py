"""Experiment logging behind one small interface; the local-files backend is always on."""

from __future__ import annotations

import json
import time
from pathlib import Path


class ExperimentLogger:
    """What every backend implements: scalars by step, files (plots, audio, checkpoints) by name."""

    def log_scalars(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_file(self, name: str, path: str | Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalFileLogger(ExperimentLogger):
    """Appends scalars to `metrics.jsonl` and an index of logged files to `files.jsonl` in the run dir."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, record: dict) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def log_scalars(self, metrics: dict[str, float], step: int) -> None:
        self._append("metrics.jsonl", {"step": step, "time": time.time(), **metrics})

    def log_file(self, name: str, path: str | Path) -> None:
        self._append("files.jsonl", {"name": name, "path": str(Path(path).resolve()), "time": time.time()})


class LoggerGroup(ExperimentLogger):
    """Fans every call out to several backends."""

    def __init__(self, loggers: list[ExperimentLogger]) -> None:
        self.loggers = loggers

    def log_scalars(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_scalars(metrics, step)

    def log_file(self, name: str, path: str | Path) -> None:
        for logger in self.loggers:
            logger.log_file(name, path)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def build_logger(cfg, run_dir: str | Path) -> LoggerGroup:
    """Local files always, plus the backends named in `logger.backends` (none built in yet)."""
    from denoise_vc.errors import ConfigError

    backends = list((cfg or {}).get("backends") or [])
    unknown = [b for b in backends if b != "local"]
    if unknown:
        raise ConfigError(f"unknown logger backend(s) {', '.join(unknown)}; available: local")
    return LoggerGroup([LocalFileLogger(run_dir)])

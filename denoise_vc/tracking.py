"""Experiment logging behind one small interface: local files (always on), TensorBoard, neptune.

Every backend gets the same calls: scalars by step, and files by name (PNG plots become images, WAV
samples become audio, anything else such as the final checkpoint is recorded by path).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from denoise_vc.errors import ConfigError


class ExperimentLogger:
    """What every backend implements."""

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


class TensorBoardLogger(ExperimentLogger):
    """Event files under `<run_dir>/tensorboard` for a live dashboard (`tensorboard --logdir runs`)."""

    def __init__(self, run_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("logger=tensorboard needs the tensorboard package (pip install tensorboard)") from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.step = 0

    def log_scalars(self, metrics: dict[str, float], step: int) -> None:
        self.step = step
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_file(self, name: str, path: str | Path) -> None:
        path = Path(path)
        if path.suffix == ".png":
            import matplotlib.image

            self.writer.add_image(name, matplotlib.image.imread(path)[..., :3], self.step, dataformats="HWC")
        elif path.suffix == ".wav":
            import soundfile as sf
            import torch

            audio, rate = sf.read(path, dtype="float32", always_2d=True)
            self.writer.add_audio(name, torch.from_numpy(audio[:, 0]), self.step, sample_rate=rate)
        else:
            self.writer.add_text(name, str(path.resolve()), self.step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class NeptuneLogger(ExperimentLogger):
    """neptune runs in offline, debug or async mode (for a self-hosted server; neptune.ai's hosted service
    closed in 2026). Offline data lands in `<run_dir>/neptune` unless NEPTUNE_DATA_DIRECTORY is set."""

    MODES = ("offline", "debug", "async", "sync", "read-only")

    def __init__(self, run_dir: str | Path, cfg) -> None:
        mode = (cfg or {}).get("mode") or os.environ.get("NEPTUNE_MODE") or "offline"
        if mode not in self.MODES:
            raise ConfigError(f"logger.neptune.mode must be one of {', '.join(self.MODES)}, not {mode!r}")
        token = os.environ.get("NEPTUNE_API_TOKEN")
        if mode in ("async", "sync") and not token:
            raise ConfigError(
                f"logger.neptune.mode={mode} needs NEPTUNE_API_TOKEN for your neptune server; "
                "use mode=offline to log locally"
            )
        try:
            import neptune
        except ImportError:
            raise ConfigError("logger=neptune needs the neptune package (pip install 'denoise-vc[neptune]')") from None
        os.environ.setdefault("NEPTUNE_DATA_DIRECTORY", str(Path(run_dir).resolve() / "neptune"))
        self.mode = mode
        self.run = neptune.init_run(
            project=(cfg or {}).get("project") or "local/denoise-vc",
            mode=mode,
            api_token=token,
            capture_hardware_metrics=False,
            capture_stdout=False,
            capture_stderr=False,
        )
        self.step = 0

    def log_scalars(self, metrics: dict[str, float], step: int) -> None:
        self.step = step
        for key, value in metrics.items():
            self.run[f"metrics/{key}"].append(value, step=step)

    def log_file(self, name: str, path: str | Path) -> None:
        path = Path(path)
        if path.suffix in (".png", ".wav"):
            self.run[f"files/{name}"].upload(str(path))
        else:
            self.run[f"files/{name}"] = str(path.resolve())

    def close(self) -> None:
        self.run.stop()


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


BACKENDS = ("local", "tensorboard", "neptune")


def build_logger(cfg, run_dir: str | Path) -> LoggerGroup:
    """Local files always, plus the backends named in `logger.backends`."""
    backends = list((cfg or {}).get("backends") or [])
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown logger backend(s) {', '.join(unknown)}; available: {', '.join(BACKENDS)}")
    loggers: list[ExperimentLogger] = [LocalFileLogger(run_dir)]
    if "tensorboard" in backends:
        loggers.append(TensorBoardLogger(run_dir))
    if "neptune" in backends:
        loggers.append(NeptuneLogger(run_dir, (cfg or {}).get("neptune")))
    return LoggerGroup(loggers)

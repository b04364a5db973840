"""Schedules over epochs: progressive noise gain and progressive peak weight.

constant: always the target. stepped: `values[i]` from epoch `milestones[i]` on. ramp: `start` until
`start_epoch`, then linear or cosine to the target at `end_epoch`, the target after. Validation always
uses the target, so the best checkpoint is the best at the level that matters.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from denoise_vc.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    kind: str = "constant"
    milestones: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    start: float = 0.0
    start_epoch: int = 0
    end_epoch: int = 0
    shape: str = "linear"

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "stepped", "ramp"):
            raise ConfigError(f"curriculum kind must be constant, stepped or ramp, not {self.kind!r}")
        if self.kind == "stepped":
            if not self.values or len(self.milestones) != len(self.values):
                raise ConfigError("stepped curriculum needs as many milestones as values")
            if list(self.milestones) != sorted(self.milestones):
                raise ConfigError("stepped curriculum milestones must increase")
        if self.kind == "ramp":
            if self.end_epoch <= self.start_epoch:
                raise ConfigError("ramp curriculum needs end_epoch > start_epoch")
            if self.shape not in ("linear", "cosine"):
                raise ConfigError(f"ramp shape must be linear or cosine, not {self.shape!r}")

    def value(self, epoch: int, target: float) -> float:
        """The scheduled value at `epoch` (0-based) for a run whose final value is `target`."""
        if self.kind == "constant":
            return float(target)
        if self.kind == "stepped":
            i = bisect.bisect_right(self.milestones, epoch) - 1
            return float(self.values[0] if i < 0 else self.values[i])
        if epoch <= self.start_epoch:
            return float(self.start)
        if epoch >= self.end_epoch:
            return float(target)
        progress = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        if self.shape == "cosine":
            progress = 0.5 * (1 - math.cos(math.pi * progress))
        return float(self.start + (target - self.start) * progress)


def schedule_from_config(cfg) -> Schedule | None:
    """A Schedule from a config mapping, or None for 'no schedule'."""
    if cfg is None:
        return None
    fields = dict(cfg)
    try:
        return Schedule(**{k: (list(v) if k in ("milestones", "values") else v) for k, v in fields.items()})
    except TypeError as exc:
        raise ConfigError(f"curriculum: {exc}") from None

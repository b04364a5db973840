"""Enhancing recordings of any length in bounded memory, without clicks at window boundaries.

The signal is cut into windows of `window` samples; each window carries `context` extra samples on
both sides that the model sees but whose output is thrown away, and consecutive windows overlap by
`crossfade` samples that are blended with complementary linear ramps. Files are streamed: blocks
are read, resampled to the model's rate (soxr's streaming resampler), enhanced, resampled back and
written to a temporary file that replaces the output only when complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn as nn

from denoise_vc.audio import audio_info
from denoise_vc.errors import AudioFileError, ConfigError, InferenceError
from denoise_vc.paths import honour_umask


@dataclass(frozen=True)
class WindowPlan:
    window: int
    context: int
    crossfade: int

    @property
    def hop(self) -> int:
        return self.window - 2 * self.context - self.crossfade

    @property
    def lead(self) -> int:
        """Zeros put before the signal so its first sample sits where window weights are already 1."""
        return self.context + self.crossfade

    @staticmethod
    def from_seconds(window_s: float, context_s: float, crossfade_s: float, sample_rate: int) -> WindowPlan:
        plan = WindowPlan(
            int(round(window_s * sample_rate)),
            int(round(context_s * sample_rate)),
            max(1, int(round(crossfade_s * sample_rate))),
        )
        if plan.hop < plan.crossfade or plan.context < 0:
            raise ConfigError(
                f"inference window {window_s}s is too short for context {context_s}s and crossfade {crossfade_s}s"
            )
        return plan

    @staticmethod
    def for_model(model: nn.Module, inference_cfg, sample_rate: int) -> WindowPlan:
        """The configured plan, with the window stretched to a length the model takes without padding."""
        plan = WindowPlan.from_seconds(
            float(inference_cfg.window_s), float(inference_cfg.context_s), float(inference_cfg.crossfade_s), sample_rate
        )
        if hasattr(model, "valid_length"):
            plan = WindowPlan(int(model.valid_length(plan.window)), plan.context, plan.crossfade)
        return plan

    def weights(self) -> np.ndarray:
        """0 over the context, ramp up over the cross-fade, 1, ramp down, 0: shifted copies sum to 1."""
        w = np.zeros(self.window, dtype=np.float32)
        ramp = (np.arange(self.crossfade, dtype=np.float32) + 0.5) / self.crossfade
        c, f = self.context, self.crossfade
        w[c : c + f] = ramp
        w[c + f : self.window - c - f] = 1.0
        w[self.window - c - f : self.window - c] = ramp[::-1]
        return w


class StreamingEnhancer:
    """Push (channels, n) blocks in, get enhanced samples out; `finish()` returns the rest.

    Output length equals input length exactly; channels are enhanced as one batch.
    """

    def __init__(
        self,
        model: nn.Module,
        plan: WindowPlan,
        channels: int,
        device: str | torch.device = "cpu",
        batch_windows: int = 4,
    ) -> None:
        self.model, self.plan, self.channels = model, plan, channels
        self.device, self.batch_windows = torch.device(device), max(1, batch_windows)
        self.weights = plan.weights()
        self.tail_weights = self.weights.copy()
        self.tail_weights[plan.context + plan.crossfade :] = 1.0  # the last window has no successor to fade into
        self.valid_length = getattr(model, "valid_length", lambda n: n)
        self.windows_done = 0
        self.buffer = np.zeros((channels, plan.lead), dtype=np.float32)  # padded input not yet consumed
        self.accumulator = np.zeros((channels, plan.window), dtype=np.float32)
        self.to_skip = plan.lead  # leading output samples that belong to the zero padding
        self.total_in = 0
        self.total_out = 0
        self.finished = False

    @torch.inference_mode()
    def _run(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.concatenate(windows)).to(self.device)[:, None]
        out = self.model(batch)[:, 0].float().cpu().numpy()
        return [out[i * self.channels : (i + 1) * self.channels] for i in range(len(windows))]

    def _drain(self, final: bool) -> Iterator[np.ndarray]:
        plan = self.plan
        while True:
            count = (self.buffer.shape[1] - plan.window) // plan.hop + 1 if self.buffer.shape[1] >= plan.window else 0
            if count <= 0 or (count < self.batch_windows and not final):
                return
            count = min(count, self.batch_windows)
            windows = [self.buffer[:, k * plan.hop : k * plan.hop + plan.window] for k in range(count)]
            for enhanced in self._run(windows):
                self.windows_done += 1
                self.accumulator += enhanced * self.weights
                ready = self.accumulator[:, : plan.hop].copy()
                self.accumulator = np.concatenate(
                    [self.accumulator[:, plan.hop :], np.zeros((self.channels, plan.hop), np.float32)], axis=1
                )
                yield from self._emit(ready)
            self.buffer = self.buffer[:, count * plan.hop :]

    def _emit(self, ready: np.ndarray) -> Iterator[np.ndarray]:
        if self.to_skip:
            cut = min(self.to_skip, ready.shape[1])
            ready, self.to_skip = ready[:, cut:], self.to_skip - cut
        remaining = self.total_in - self.total_out
        ready = ready[:, :remaining] if self.finished else ready
        if ready.shape[1]:
            self.total_out += ready.shape[1]
            yield ready

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32).reshape(self.channels, -1)
        self.total_in += block.shape[1]
        self.buffer = np.concatenate([self.buffer, block], axis=1)
        return self._join(self._drain(final=False))

    def finish(self) -> np.ndarray:
        """Flush the tail. Full windows run while the rest needs one; the last stretch runs through a
        window cut to what is left (rounded up to a length the model takes), weighted 1 after its
        cross-fade in, so a short file or a file's end costs no full window of zeros."""
        self.finished = True
        plan, parts = self.plan, []
        full_limit = plan.window - plan.context - plan.crossfade  # longer tails need a full window
        while self.total_out < self.total_in:
            remaining = plan.lead + self.total_in - self.windows_done * plan.hop  # real samples from here on
            if remaining > full_limit:
                if self.buffer.shape[1] < plan.window:
                    self.buffer = np.pad(self.buffer, ((0, 0), (0, plan.window - self.buffer.shape[1])))
                parts += list(self._drain(final=True))
                continue
            if remaining <= plan.context and self.windows_done:  # already final: weight 1 from the last window
                parts += list(self._emit(self.accumulator[:, :remaining].copy()))
                break
            length = min(plan.window, int(self.valid_length(remaining)))
            segment = np.zeros((self.channels, length), np.float32)
            segment[:, :remaining] = self.buffer[:, :remaining]
            self.accumulator[:, :length] += self._run([segment])[0] * self.tail_weights[:length]
            parts += list(self._emit(self.accumulator[:, :remaining].copy()))
        assert self.total_out == self.total_in, (self.total_out, self.total_in)
        return self._join(iter(parts))

    def _join(self, parts: Iterator[np.ndarray]) -> np.ndarray:
        chunks = list(parts)
        return np.concatenate(chunks, axis=1) if chunks else np.zeros((self.channels, 0), np.float32)


def enhance_array(
    model: nn.Module, x: np.ndarray, plan: WindowPlan, device: str | torch.device = "cpu", batch_windows: int = 4
) -> np.ndarray:
    """Enhance an in-memory (channels, time) or (time,) array; same shape out."""
    squeeze = x.ndim == 1
    x2 = np.atleast_2d(np.asarray(x, dtype=np.float32))
    streamer = StreamingEnhancer(model, plan, x2.shape[0], device, batch_windows)
    out = np.concatenate([streamer.push(x2), streamer.finish()], axis=1)
    return out[0] if squeeze else out


def _resampler(src: int, dst: int, channels: int):
    return None if src == dst else soxr.ResampleStream(src, dst, channels, dtype="float32", quality="HQ")


def _resample_chunk(stream, block: np.ndarray, last: bool) -> np.ndarray:
    """(channels, n) through a soxr stream (which wants (n, channels))."""
    if stream is None:
        return block
    out = stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
    return np.ascontiguousarray(out.reshape(-1, block.shape[0]).T)


def enhance_file(
    model: nn.Module,
    model_rate: int,
    src: str | Path,
    dst: str | Path,
    plan: WindowPlan,
    device: str | torch.device = "cpu",
    block_s: float = 10.0,
    batch_windows: int = 4,
) -> Path:
    """Stream `src` through the model into `dst` at the source's rate, channels and length.

    Memory is bounded by a few windows and one read block, whatever the file's length. The output
    appears only when complete (temp file + rename); `dst` may not be `src`.
    """
    src, dst = Path(src), Path(dst)
    info = audio_info(src)
    if info.frames == 0:
        raise AudioFileError(f"{src}: contains no samples")
    if dst.resolve() == src.resolve():
        raise AudioFileError(f"{src}: output would overwrite the input; choose another output folder")
    channels, rate = info.channels, info.samplerate
    to_model, from_model = _resampler(rate, model_rate, channels), _resampler(model_rate, rate, channels)
    streamer = StreamingEnhancer(model, plan, channels, device, batch_windows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix, dir=dst.parent)
    honour_umask(tmp)
    os.close(fd)
    written = 0
    bounded = _subtype(info) not in FLOAT_SUBTYPES  # integer PCM would wrap around; float keeps physical units
    try:
        with (
            sf.SoundFile(str(src)) as reader,
            sf.SoundFile(tmp, "w", rate, channels, subtype=_subtype(info), format=info.format) as writer,
        ):

            def write(enhanced: np.ndarray, last: bool) -> None:
                nonlocal written
                out = _resample_chunk(from_model, enhanced, last)
                out = out[:, : max(0, info.frames - written)]
                writer.write(np.clip(out.T, -1.0, 1.0) if bounded else out.T)
                written += out.shape[1]

            for block in reader.blocks(blocksize=max(1, int(block_s * rate)), dtype="float32", always_2d=True):
                block = block.T
                if not np.all(np.isfinite(block)):
                    raise AudioFileError(f"{src}: contains NaN or Inf samples")
                write(streamer.push(_resample_chunk(to_model, block, last=False)), last=False)
            tail = _resample_chunk(to_model, np.zeros((channels, 0), np.float32), last=True)
            write(np.concatenate([streamer.push(tail), streamer.finish()], axis=1), last=True)
            if written < info.frames:  # resampler rounding: pad the last few samples
                writer.write(np.zeros((info.frames - written, channels), np.float32))
        os.replace(tmp, dst)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, sf.LibsndfileError):
            raise AudioFileError(f"{src}: cannot decode audio ({str(exc).splitlines()[0][:120]})") from None
        if isinstance(exc, RuntimeError | ValueError):
            raise model_failure(src, exc) from None
        raise
    return dst


def enhance_signal_file(
    model: nn.Module,
    model_rate: int,
    src: str | Path,
    dst: str | Path,
    plan: WindowPlan,
    device: str | torch.device = "cpu",
    batch_windows: int = 4,
    rate: int | None = None,
    mat_variable: str | None = None,
) -> Path:
    """A .mat, WFDB or CSV biosignal through the model into `dst`, in the source's format, units and length.

    The rate is the file's own (WFDB header, a .mat's `fs`, a CSV time column), else `rate`, else the model's.
    Nothing is clipped: values leave at the input's physical scale."""
    from denoise_vc.audio import resample
    from denoise_vc.signal_files import read_signal

    signal = read_signal(src, mat_variable)
    x = signal.data.astype(np.float32)
    if x.shape[-1] == 0:
        raise AudioFileError(f"{src}: contains no samples")
    if not np.all(np.isfinite(x)):
        raise AudioFileError(f"{src}: contains NaN or Inf samples")
    file_rate = int(signal.sample_rate or rate or model_rate)
    try:
        out = enhance_array(model, resample(x, file_rate, model_rate), plan, device, batch_windows)
    except (RuntimeError, ValueError) as exc:
        raise model_failure(src, exc) from None
    out = resample(out, model_rate, file_rate)
    out = np.pad(out, ((0, 0), (0, max(0, x.shape[-1] - out.shape[-1]))), mode="edge")[:, : x.shape[-1]]
    return signal.write_like(dst, out)


def model_failure(
    src: str | Path,
    exc: Exception,
    doing: str = "denoising",
    advice: str = "lower inference.window_s (--window-s) or use --device cpu",
) -> InferenceError:
    """One line naming the file and what really happened inside the model."""
    first = (str(exc).splitlines() or [""])[0][:160]
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in first.lower():
        return InferenceError(f"{src}: out of GPU memory while {doing}: {advice}")
    return InferenceError(f"{src}: the model failed on this file while {doing} ({type(exc).__name__}: {first})")


FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def _subtype(info) -> str:
    return info.subtype if info.subtype in sf.available_subtypes(info.format) else "FLOAT"

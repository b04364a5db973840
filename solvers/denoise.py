"""The waveform-denoising task: a loss on (denoised, clean), a noise-gain curriculum, SI-SDR validation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from omegaconf import DictConfig

from denoise_vc.audio import write_audio_atomic
from denoise_vc.curriculum import schedule_from_config
from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.data.levels import noise_levels, validation_levels
from denoise_vc.ecg_metrics import detect_r_peaks, r_peak_scores
from denoise_vc.errors import ConfigError
from denoise_vc.evaluation import denoise_batches, noisy_at
from denoise_vc.losses import si_sdr_torch
from denoise_vc.metrics import pesq_mode, pesq_score, stoi_score
from denoise_vc.models.normalized import remove_drift
from denoise_vc.plots import plot_example
from denoise_vc.solvers.base import LEVEL_MARK, Solver
from denoise_vc.tracking import ExperimentLogger


def level_metric(gain: float | None, snr_db: float | None) -> str:
    """SI-SDR at one validation level, named so that every logger accepts it: `si_sdr_at_snr-9`, `..._gain0.3`."""
    return f"si_sdr{LEVEL_MARK}" + (f"snr{snr_db:g}" if snr_db is not None else f"gain{gain:g}")


def valid_mix_weights(solver_cfg, data_cfg) -> dict[str, float]:
    """Checked `solver.valid_metric` (and `solver.valid_mix` weights when it is `mix`); PESQ needs 8 or 16 kHz,
    the R-peak F1 needs heartbeat data (`data.peaks`), and SI-SDR at one level (`si_sdr_at_snr-9`: a finetune
    kept for the noisy end it is for) a level that validation spans."""
    metric = str(solver_cfg.valid_metric)
    choices = ("si_sdr", "si_sdr_i", "loss", "pesq", "stoi", "r_f1", "mix")
    if metric.startswith(f"si_sdr{LEVEL_MARK}"):
        levels = validation_levels(data_cfg)
        labels = [level_metric(*level) for level in levels] if len(levels) > 1 else []
        if metric not in labels:
            known = f"one of {', '.join(labels)}" if labels else "a noise range (data.snr_db or data.gain [low, high])"
            raise ConfigError(f"solver.valid_metric={metric}: validation has no such level; it needs {known}")
    elif metric not in choices:
        raise ConfigError(f"solver.valid_metric must be one of {', '.join(choices)}, got {metric!r}")
    if metric == "r_f1" and not data_cfg.get("peaks"):
        raise ConfigError("solver.valid_metric=r_f1 scores R peaks: it needs ECG or heartbeat data (data.peaks=true)")
    weights = dict(solver_cfg.get("valid_mix") or {}) if metric == "mix" else {}
    if metric == "mix" and (not weights or not set(weights) <= {"si_sdr", "pesq", "stoi"}):
        raise ConfigError(f"solver.valid_mix must weight some of si_sdr, pesq, stoi, got {weights!r}")
    if not all(np.isfinite(float(w)) for w in weights.values()):
        raise ConfigError(f"solver.valid_mix weights must be finite, got {weights!r}")
    sample_rate = int(data_cfg.sample_rate)
    if ("pesq" in weights or metric == "pesq") and pesq_mode(sample_rate) is None:
        raise ConfigError(f"solver.valid_metric uses PESQ, defined at 8 and 16 kHz only; data is {sample_rate} Hz")
    return {k: float(v) for k, v in weights.items()}


def check_stoi_length(weights: dict[str, float], metric: str, data_cfg) -> None:
    """STOI needs about a second of speech (30 frames of 384 ms hop after silence removal)."""
    seconds = int(data_cfg.segment_length) / int(data_cfg.sample_rate)
    if ("stoi" in weights or metric == "stoi") and seconds < 1.0:
        raise ConfigError(
            f"solver.valid_metric uses STOI, which needs >= 1 s segments; data.segment_length is {seconds:.2f} s"
        )


def target_highpass_cycles(data_cfg, model: nn.Module) -> float:
    """The model's own high-pass cut-off (cycles per sample) when `data.highpass_target` asks for the training
    target to be filtered as the model's input is, else 0: the model removes a lead's own drift below that
    cut-off by design, so asking for it back only adds an error no input can explain (on MIT-BIH as large as
    the lead's 0.5-3 Hz content)."""
    if not data_cfg.get("highpass_target"):
        return 0.0
    cycles = float(getattr(model, "highpass_cycles", 0.0))
    if not cycles:
        raise ConfigError("data.highpass_target=true needs data.highpass_hz (the cut-off the model's input gets)")
    return cycles


def reference_beats(valid_set: FixedSet) -> list[np.ndarray]:
    """Each validation segment's beats to score R peaks against, found once: its annotated beats, else the
    detector on its clean signal (as `evaluate` does); refused before training when no segment has any."""
    beats = [
        known if known is not None else detect_r_peaks(clean, valid_set.sample_rate)
        for known, clean in zip(valid_set.beats, valid_set.clean)
    ]
    if not any(len(b) for b in beats):
        raise ConfigError(
            "solver.valid_metric=r_f1: no validation segment has an R peak to score "
            "(annotated, or found on the clean signal)"
        )
    return beats


class DenoiseSolver(Solver):
    kind = "denoiser"
    higher_is_better = {
        "loss": False, "si_sdr": True, "si_sdr_i": True, "pesq": True, "stoi": True, "r_f1": True, "mix": True,
    }  # fmt: skip

    def __init__(
        self,
        cfg: DictConfig,
        model: nn.Module,
        loss: nn.Module,
        train_set: TrainSet,
        valid_set: FixedSet,
        logger: ExperimentLogger,
    ) -> None:
        super().__init__(cfg, model, train_set, logger)
        self.loss_fn = loss.to(self.device)
        self.valid_set = valid_set
        gain, snr_db = noise_levels(cfg.data)
        self.fixed_gain = gain if snr_db is None and not isinstance(gain, tuple) else None
        self.valid_levels = validation_levels(cfg.data)
        self.gain_schedule = schedule_from_config(cfg.curriculum.get("gain"))
        self.peak_schedule = schedule_from_config(cfg.curriculum.get("peak_weight"))
        self.mix_weights = valid_mix_weights(cfg.solver, cfg.data)
        check_stoi_length(self.mix_weights, self.metric, cfg.data)
        self.valid_beats = reference_beats(valid_set) if self.metric == "r_f1" else None
        self.base_peak_weight = float(getattr(loss, "peak_weight", 0.0))
        self.target_cycles = target_highpass_cycles(cfg.data, model)

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        logged = {}
        self.train_set.epoch = epoch
        if self.fixed_gain is not None:  # one gain: the curriculum sets it
            gain = self.gain_schedule.value(epoch, self.fixed_gain) if self.gain_schedule else self.fixed_gain
            self.train_set.gain = gain
            logged["gain"] = gain
        elif self.gain_schedule is not None:  # a range or SNRs: the curriculum scales every item's noise
            self.train_set.noise_scale = self.gain_schedule.value(epoch, 1.0)
            logged["noise_scale"] = self.train_set.noise_scale
        if self.peak_schedule is not None and hasattr(self.loss_fn, "peak_weight"):
            self.loss_fn.peak_weight = self.peak_schedule.value(epoch, self.base_peak_weight)
            logged["peak_weight"] = self.loss_fn.peak_weight
        return logged

    def training_target(self, clean: torch.Tensor) -> torch.Tensor:
        """What the model is asked for: the clean signal, high-passed and put back at its median level as the
        model's input is (`data.highpass_target`), else as it is."""
        if not self.target_cycles:
            return clean
        return remove_drift(clean, self.target_cycles)

    def _compute_loss(self, noisy: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, enabled=self.use_amp):
            denoised = self.model(noisy)
        return self.loss_fn(denoised.float(), target), denoised

    def train_loss(self, batch) -> torch.Tensor:
        noisy, clean = (t.to(self.device, non_blocking=True) for t in batch)
        return self._compute_loss(noisy, self.training_target(clean))[0]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss and SI-SDR (PESQ, STOI or the R-peak F1 when the validation metric uses them) averaged over the
        fixed validation levels (the target level, or points spanning a training range), whatever the curriculum
        does; `mix` is the weighted sum `solver.valid_mix` asks for. With several levels, SI-SDR at each one too
        (`si_sdr_at_snr-9`): a finetune that trades the clean end for the noisy end shows it epoch by epoch."""
        self.model.eval()
        needs = {self.metric} | set(self.mix_weights) if self.metric == "mix" else {self.metric}
        sr = int(self.cfg.data.sample_rate)
        scores: dict[str, list[float]] = {k: [] for k in ("loss", "si_sdr", "si_sdr_noisy", "pesq", "stoi", "r_f1")}
        batch = int(self.cfg.data.batch_size)
        by_level: dict[str, float] = {}
        for gain, snr_db in self.valid_levels:
            first = len(scores["si_sdr"])
            view = self.valid_set.at(gain=gain, snr_db=snr_db)
            for start in range(0, len(view), batch):
                items = [view[i] for i in range(start, min(len(view), start + batch))]
                noisy = torch.stack([i[0] for i in items]).to(self.device)
                clean = self.training_target(torch.stack([i[1] for i in items]).to(self.device))
                loss, denoised = self._compute_loss(noisy, clean)
                scores["loss"] += [float(loss)] * len(items)
                scores["si_sdr"] += si_sdr_torch(denoised.float(), clean).flatten().tolist()
                scores["si_sdr_noisy"] += si_sdr_torch(noisy, clean).flatten().tolist()
                outputs = zip(denoised.float().cpu().numpy()[:, 0], clean.cpu().numpy()[:, 0])
                for index, (est, ref) in enumerate(outputs, start):
                    if "pesq" in needs:
                        scores["pesq"].append(pesq_score(est, ref, sr) or 1.0)
                    if "stoi" in needs:
                        scores["stoi"].append(stoi_score(est, ref, sr) or 0.0)
                    if "r_f1" in needs:  # evaluate's F1; a segment without reference beats has none
                        f1 = r_peak_scores(est, ref, sr, self.valid_beats[index])[2]
                        scores["r_f1"] += [] if f1 is None else [f1]
            if len(self.valid_levels) > 1:
                by_level[level_metric(gain, snr_db)] = float(np.mean(scores["si_sdr"][first:]))
        self.model.train()
        out = {k: float(np.mean(v)) for k, v in scores.items() if v and k != "si_sdr_noisy"}
        out.update(by_level)
        out["si_sdr_i"] = out["si_sdr"] - float(np.mean(scores["si_sdr_noisy"]))
        if self.metric == "mix":
            out["mix"] = sum(weight * out[name] for name, weight in self.mix_weights.items())
        return out

    def after_validation(self, epoch: int) -> None:
        """Plot and write audio for the first validation segment at the target level."""
        sr = int(self.cfg.data.sample_rate)
        gain, snr_db = self.valid_levels[len(self.valid_levels) // 2]
        noisy = noisy_at(self.valid_set, gain, snr_db)[:1]
        denoised = denoise_batches(self.model, noisy, 1, self.device)[0]
        clean = np.asarray(self.valid_set.clean[0])
        png = plot_example(
            clean, noisy[0], denoised, sr, self.run_dir / "plots" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}"
        )
        self.logger.log_file(f"plots/epoch_{epoch:03d}", png)
        for name, signal in (("clean", clean), ("noisy", noisy[0]), ("denoised", denoised)):
            path = write_audio_atomic(self.run_dir / "samples" / f"epoch_{epoch:03d}_{name}.wav", signal, sr)
            self.logger.log_file(f"samples/epoch_{epoch:03d}_{name}", path)

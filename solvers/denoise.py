"""The waveform-denoising task: a loss on (denoised, clean), a noise-gain curriculum, SI-SDR validation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from omegaconf import DictConfig

from denoise_vc.audio import write_audio_atomic
from denoise_vc.curriculum import schedule_from_config
from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.evaluation import denoise_batches, noisy_at
from denoise_vc.losses import si_sdr_torch
from denoise_vc.plots import plot_example
from denoise_vc.solvers.base import Solver
from denoise_vc.tracking import ExperimentLogger


class DenoiseSolver(Solver):
    kind = "denoiser"
    higher_is_better = {"loss": False, "si_sdr": True, "si_sdr_i": True}

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
        self.target_gain = float(cfg.data.gain)
        self.snr_db = cfg.data.get("snr_db")
        self.gain_schedule = schedule_from_config(cfg.curriculum.get("gain"))
        self.peak_schedule = schedule_from_config(cfg.curriculum.get("peak_weight"))
        self.base_peak_weight = float(getattr(loss, "peak_weight", 0.0))

    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        logged = {}
        self.train_set.epoch = epoch
        if self.snr_db is None:
            gain = self.gain_schedule.value(epoch, self.target_gain) if self.gain_schedule else self.target_gain
            self.train_set.gain = gain
            logged["gain"] = gain
        if self.peak_schedule is not None and hasattr(self.loss_fn, "peak_weight"):
            self.loss_fn.peak_weight = self.peak_schedule.value(epoch, self.base_peak_weight)
            logged["peak_weight"] = self.loss_fn.peak_weight
        return logged

    def _compute_loss(self, noisy: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, enabled=self.use_amp):
            denoised = self.model(noisy)
        return self.loss_fn(denoised.float(), clean), denoised

    def train_loss(self, batch) -> torch.Tensor:
        noisy, clean = (t.to(self.device, non_blocking=True) for t in batch)
        return self._compute_loss(noisy, clean)[0]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss and SI-SDR on the validation set at the target level, whatever the curriculum says."""
        self.model.eval()
        view = self.valid_set.at(gain=None if self.snr_db is not None else self.target_gain, snr_db=self.snr_db)
        losses, sdr, sdr_in = [], [], []
        batch = int(self.cfg.data.batch_size)
        for start in range(0, len(view), batch):
            items = [view[i] for i in range(start, min(len(view), start + batch))]
            noisy = torch.stack([i[0] for i in items]).to(self.device)
            clean = torch.stack([i[1] for i in items]).to(self.device)
            loss, denoised = self._compute_loss(noisy, clean)
            losses.append(float(loss) * len(items))
            sdr += si_sdr_torch(denoised.float(), clean).flatten().tolist()
            sdr_in += si_sdr_torch(noisy, clean).flatten().tolist()
        self.model.train()
        si_sdr = float(np.mean(sdr))
        return {"loss": sum(losses) / len(view), "si_sdr": si_sdr, "si_sdr_i": si_sdr - float(np.mean(sdr_in))}

    def after_validation(self, epoch: int) -> None:
        """Plot and write audio for the first validation segment at the target level."""
        sr = int(self.cfg.data.sample_rate)
        noisy = noisy_at(self.valid_set, None if self.snr_db is not None else self.target_gain, self.snr_db)[:1]
        denoised = denoise_batches(self.model, noisy, 1, self.device)[0]
        clean = np.asarray(self.valid_set.clean[0])
        png = plot_example(
            clean, noisy[0], denoised, sr, self.run_dir / "plots" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}"
        )
        self.logger.log_file(f"plots/epoch_{epoch:03d}", png)
        for name, signal in (("clean", clean), ("noisy", noisy[0]), ("denoised", denoised)):
            path = write_audio_atomic(self.run_dir / "samples" / f"epoch_{epoch:03d}_{name}.wav", signal, sr)
            self.logger.log_file(f"samples/epoch_{epoch:03d}_{name}", path)

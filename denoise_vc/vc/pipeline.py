"""denoise (optional) -> features -> convert -> vocode, for arrays, files and a test set.

Everything the conversion needs travels in the VC checkpoint: model spec and weights, the data config
(feature settings, reduction factor, pause rule) and the normalisation statistics (`meta["stats"]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoise_vc.audio import load_audio, write_audio_atomic
from denoise_vc.checkpoint import load_model
from denoise_vc.config import apply_overrides
from denoise_vc.errors import AudioFileError, CheckpointError, ConfigError
from denoise_vc.inference import model_failure
from denoise_vc.vc.dataset import denormalise_frames, normalise_side
from denoise_vc.vc.features import FeatureSettings
from denoise_vc.vc.fusion import check_fusion_weight, fuse_frames
from denoise_vc.vc.gmm import JointDensityGMM
from denoise_vc.vc.prepare import side_features, source_segments
from denoise_vc.vc.retrieval import TargetIndex, check_index_rate
from denoise_vc.vc.stargan_convert import speaker_conversion
from denoise_vc.vc.vocoders import acoustic_frames, build_vocoder, spectral_columns


@dataclass
class Denoiser:
    """A denoiser checkpoint ready for in-memory enhancement at its own rate."""

    model: torch.nn.Module
    rate: int
    plan: Any
    batch_windows: int
    device: torch.device

    @staticmethod
    def load(path: str | Path, device: torch.device) -> Denoiser:
        from denoise_vc.inference import WindowPlan

        model, ckpt = load_model(path, kind="denoiser", device=device)
        rate = int(ckpt["meta"]["sample_rate"])
        inference = apply_overrides(ckpt["config"], []).inference
        return Denoiser(model, rate, WindowPlan.for_model(model, inference, rate), int(inference.batch_windows), device)

    def __call__(self, wave: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
        from denoise_vc.audio import resample
        from denoise_vc.inference import enhance_array

        x = resample(wave, rate, self.rate)
        return enhance_array(self.model, x, self.plan, self.device, self.batch_windows), self.rate


class Converter:
    """A trained VC model (plus optional denoiser) that turns source-speaker audio into target-speaker audio."""

    def __init__(
        self,
        vc_checkpoint: str | Path,
        denoiser: str | Path | None = None,
        device: str = "cpu",
        index: str | Path | None = None,
        index_rate: float = 0.75,
        target_speaker: str | None = None,
        gmm: str | Path | None = None,
        gmm_weight: float = 0.5,
    ) -> None:
        self.device = torch.device(device)
        self.model, ckpt = load_model(vc_checkpoint, kind="vc", device=self.device)
        # many-to-many checkpoints (stargan_vc) convert to `target_speaker`; None for one-to-one ones
        self.speakers = speaker_conversion(vc_checkpoint, self.model, ckpt, target_speaker, self.device)
        stats = self.speakers.stats if self.speakers else ckpt["meta"].get("stats")
        if not stats:
            raise CheckpointError(f"{vc_checkpoint}: VC checkpoint has no normalisation statistics (meta.stats)")
        if not self.speakers and not {"source", "target"} <= set(stats):
            raise CheckpointError(f"{vc_checkpoint}: statistics pooled over both speakers (older vc-train); retrain")
        self.stats = stats
        self.cfg = apply_overrides(ckpt["config"], [])
        self.fs = FeatureSettings.from_config(self.cfg.data)
        self.r = int(self.cfg.data.reduction_factor)
        self.denoiser = Denoiser.load(denoiser, self.device) if denoiser else None
        self.vocoder = build_vocoder(self.fs)
        self.index, self.index_rate = None, check_index_rate(index_rate)
        if index:
            self.index = TargetIndex.load(index)
            self.index.check_fits(self.fs, stats["target"], vc_checkpoint)
        self.gmm, self.gmm_weight = None, check_fusion_weight(gmm_weight)
        if gmm:
            if self.speakers is not None:
                raise ConfigError(f"--gmm {gmm}: a GMM fuses into one-to-one (wGMM) models, not {vc_checkpoint}")
            self.gmm = JointDensityGMM.load(gmm)
            self.gmm.check_fits(self.fs, str(gmm))

    @property
    def sample_rate(self) -> int:
        return self.fs.sample_rate

    def features(self, side: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The model's inputs for one utterance (batch of one) from its `side_features`, exactly as training
        computed them."""
        norm = normalise_side(side, self.stats["source"], self.r)
        segments = source_segments(side["energy"], int(side["frames"]), self.fs, self.cfg.data, self.r)
        return {
            "src_mel": torch.from_numpy(norm["mel"])[None],
            "src_pitch": torch.from_numpy(norm["pitch"])[None],
            "src_energy": torch.from_numpy(norm["energy"])[None],
            "src_len": torch.tensor([len(norm["pitch"])]),
            "src_segment": torch.from_numpy(segments)[None],
            "n_segments": torch.tensor([int(segments.max()) + 1]),
        }

    def convert_frames(self, wave: np.ndarray, rate: int) -> np.ndarray:
        """(frames, frame dims) de-normalised converted acoustic frames (what the vocoder takes) of a
        (denoised, if a denoiser is set) waveform; with an index, the spectral columns are blended with the
        target speaker's nearest real frames; with a GMM, they are fused with the GMM's conversion (`fusion`)."""
        if self.denoiser is not None:
            wave, rate = self.denoiser(wave, rate)
        side = None
        if self.speakers is not None:
            mel = self.speakers.convert_normalised(wave, rate)
        else:
            side = side_features(wave, rate, self.fs, self.r)
            inputs = {k: v.to(self.device) for k, v in self.features(side).items()}
            mel, length = self.model.infer(**inputs)
            mel = mel[0, : int(length[0])].float().cpu().numpy()
        columns = spectral_columns(self.fs)
        if self.index is not None:  # model output and index share the target-normalised space
            mel[:, columns] = self.index.blend(mel[:, columns], self.index_rate)
        frames = denormalise_frames(mel, self.stats["target"])
        if self.gmm is None:
            return frames
        source = side["mel"][: int(side["frames"])].astype(np.float64)  # the wGMM's analysis serves the GMM too
        source[:, columns] = self.gmm.convert_spectra(source)  # only the spectra are fused
        return fuse_frames(frames, source, columns, self.gmm_weight).astype(frames.dtype)

    def convert(self, wave: np.ndarray, rate: int) -> np.ndarray:
        """Converted waveform at `self.sample_rate`."""
        return np.clip(self.vocoder(self.convert_frames(wave, rate)), -1.0, 1.0)

    def convert_file(self, src: str | Path, dst: str | Path) -> Path:
        src, dst = Path(src), Path(dst)
        if dst.exists() and dst.resolve() == src.resolve():
            raise AudioFileError(f"{src}: output would overwrite the input; choose another output folder")
        wave, rate = load_audio(src)
        try:
            converted = self.convert(wave[0], rate)
        except (RuntimeError, ValueError) as exc:  # the model's own failure, e.g. out of GPU memory
            raise model_failure(src, exc, "converting", "convert shorter files or use --device cpu") from None
        return write_audio_atomic(dst, converted, self.sample_rate)


def evaluate_pairs(
    converter: Converter, pairs: list, transform=None, progress: bool = False, vocoded: bool = False
) -> dict[str, dict[str, float]]:
    """Median metrics against the target of each pair: the untouched source and the conversion.

    `transform(wave, rate, index) -> wave` changes the source before conversion (e.g. adds noise); the
    `source` row always scores the clean source, so it is the no-conversion baseline. `vocoded` adds the
    target's own frames through the vocoder: the floor the vocoder leaves for any conversion.
    """
    from tqdm import tqdm

    from denoise_vc.vc.features import clean_wave
    from denoise_vc.vc.metrics import score_conversion, summarise

    rows: dict[str, list[dict[str, float]]] = {"source": [], "converted": []} | ({"vocoded": []} if vocoded else {})
    rate = converter.sample_rate
    for index, pair in enumerate(tqdm(pairs, desc="vc-evaluate", disable=None if progress else True, leave=False)):
        source, source_rate = pair.source()
        target = clean_wave(*pair.target(), converter.fs)
        rows["source"].append(score_conversion(clean_wave(source, source_rate, converter.fs), target, rate))
        if transform is not None:
            source = transform(source, source_rate, index)
        rows["converted"].append(score_conversion(converter.convert(source, source_rate), target, rate))
        if vocoded:
            vocoded_target = converter.vocoder(acoustic_frames(target, converter.fs))
            rows["vocoded"].append(score_conversion(vocoded_target, target, rate))
    return {name: summarise(values) for name, values in rows.items()}


def format_results(results: dict[str, dict[str, float]], count: int) -> str:
    lines = [
        f"{count} test pairs, medians; MCD after DTW: SPTK mel-cepstrum c1-c24 and WORLD-coded c1-c24",
        f"{'':<18}{'MCD SPTK':>9}{'MCD WORLD':>10}{'F0 RMSE ct':>12}{'F0 corr':>9}{'V/UV err':>10}",
    ]
    for name, row in results.items():
        lines.append(
            f"{name + '->target':<18}{row['mcd_sptk']:>9.2f}{row['mcd']:>10.2f}{row['f0_rmse_cents']:>12.1f}"
            f"{row['f0_corr']:>9.3f}{row['vuv_error']:>10.3f}"
        )
    return "\n".join(lines)

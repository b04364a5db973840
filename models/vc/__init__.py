"""wGMM voice-conversion acoustic model (registered as "wgmm_vc"), its loss, frame helpers and vocoders.

Batch (dict, batch-first, zero-padded; r = reduction, Ts_r = Ts / r, Tt_r = Tt / r):
    src_mel (B, Ts, n_mels) float, src_pitch / src_energy (B, Ts_r) float, src_len (B,) reduced lengths,
    tgt_mel (B, Tt, n_mels), tgt_pitch / tgt_energy (B, Tt_r), tgt_len (B,) reduced lengths,
    durations (B, Ts_r) int >= 0 (sum over valid frames == tgt_len), src_segment (B, Ts_r) / tgt_segment
    (B, Tt_r) int segment index (-1 on padding), n_segments (B,).
"""

from denoise_vc.models.vc.frames import expand_frames, length_regulate, reduce_frames
from denoise_vc.models.vc.loss import VCLoss
from denoise_vc.models.vc.model import WgmmVC
from denoise_vc.models.vc.stargan import StarGANVC  # noqa: F401  registers "stargan_vc" (issue 16, part 1)
from denoise_vc.models.vc.vocoder import GriffinLim, Vocoder

__all__ = ["GriffinLim", "VCLoss", "Vocoder", "WgmmVC", "expand_frames", "length_regulate", "reduce_frames"]

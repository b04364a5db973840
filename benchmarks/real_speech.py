"""Denoisers on real speech and real noise they never heard, side by side with the peers a user would pick.

    python benchmarks/real_speech.py [--checkpoint NAME=PATH ...] [--items 24] [--levels 0 5 10 15]

Test speech: speakers no model here trained on (LibriSpeech dev-clean, VCTK p228; see real_data.py). Test
noise: the last 10 % of every openly licensed noise recording (training reads only the first 80 %), plus an
out-of-domain set of noises no model here ever trained on (noise/ and UrbanSound8K). Every system gets the same
mixtures; models run through `denoise`'s own windowed path (enhance_array with the checkpoint's plan).
Metrics: PESQ wide-band (P.862.2), STOI (not ESTOI), SI-SDR (dB), DNSMOS P.835 OVRL, all at 16 kHz, the
same code for every system; RTF = processing seconds / audio seconds on `--threads` CPU threads, model
loading excluded. Also the real 0 dB babble pair (pairs/).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import babble_pair, header, rnnoise, spectral_gating  # noqa: E402
from real_data import open_noises, out_of_domain_noises, test_speech, test_stretch  # noqa: E402

from denoise_vc.audio import load_audio  # noqa: E402
from denoise_vc.checkpoint import load_model  # noqa: E402
from denoise_vc.config import apply_overrides  # noqa: E402
from denoise_vc.data.mixing import gain_for_snr  # noqa: E402
from denoise_vc.inference import WindowPlan, enhance_array  # noqa: E402
from denoise_vc.metrics import pesq_score, si_sdr, stoi_score  # noqa: E402
from denoise_vc.models.introspect import count_parameters  # noqa: E402
from denoise_vc.pretrained import resolve_checkpoint  # noqa: E402

RATE = 16000
SEED = 0


def mixtures(noise_files: list[Path], items: int, snr_db: float, seed: int, stretch: bool):
    """(clean, noisy) pairs: test utterances (cut to at most 8 s) + a noise segment at `snr_db`."""
    speech = test_speech()
    noises = [load_audio(f, RATE)[0][0] for f in noise_files]
    noises = [test_stretch(n) if stretch else n for n in noises]
    rng = np.random.default_rng([seed, int(snr_db * 10) + 1000])
    out = []
    for i in range(items):
        clean = load_audio(speech[(i * 7) % len(speech)], RATE)[0][0][: 8 * RATE]
        noise = noises[int(rng.integers(len(noises)))]
        if len(noise) < len(clean):
            noise = np.tile(noise, len(clean) // max(len(noise), 1) + 1)
        start = int(rng.integers(0, len(noise) - len(clean) + 1))
        segment = noise[start : start + len(clean)]
        out.append((clean, (clean + gain_for_snr(clean, segment, snr_db) * segment).astype(np.float32)))
    return out


class ModelSystem:
    """A checkpoint run through the same windowed path `denoise-vc denoise` uses."""

    def __init__(self, checkpoint: str) -> None:
        self.model, ckpt = load_model(str(resolve_checkpoint(checkpoint)), device="cpu")
        self.rate = int(ckpt["meta"]["sample_rate"])
        inference = apply_overrides(ckpt["config"], []).inference
        self.plan = WindowPlan.for_model(self.model, inference, self.rate)
        self.batch = int(inference.batch_windows)
        self.parameters = count_parameters(self.model)

    def __call__(self, noisy: np.ndarray, rate: int) -> np.ndarray:
        from denoise_vc.audio import resample

        x = resample(noisy, rate, self.rate)
        return resample(enhance_array(self.model, x, self.plan, batch_windows=self.batch), self.rate, rate)[
            : len(noisy)
        ]


def score(est: np.ndarray, clean: np.ndarray, with_dnsmos: bool) -> dict[str, float]:
    row = {"pesq": pesq_score(est, clean, RATE), "stoi": stoi_score(est, clean, RATE), "si_sdr": si_sdr(est, clean)}
    if with_dnsmos:
        from denoise_vc.dnsmos import dnsmos

        row["ovrl"] = dnsmos(est, RATE)["ovrl"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH (or NAME=default)")
    parser.add_argument("--items", type=int, default=24, help="mixtures per level")
    parser.add_argument("--levels", type=float, nargs="+", default=[0, 5, 10, 15])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-dnsmos", action="store_true")
    parser.add_argument("--no-out-of-domain", action="store_true")
    parser.add_argument(
        "--no-peers", action="store_true", help="skip RNNoise and spectral gating (same mixtures: add rows to a table)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(header("real speech: unseen speakers, unseen noise stretches", SEED))
    systems: dict[str, object] = {"noisy": lambda x, r: x, "rnnoise": rnnoise, "spectral_gating": spectral_gating}
    if args.no_peers:
        systems = {"noisy": systems["noisy"]}
    params: dict[str, int | str] = {"noisy": "-", "rnnoise": "~88K (GRU)", "spectral_gating": "-"}
    for item in args.checkpoint or ["default=default"]:
        name, _, path = item.partition("=")
        systems[name] = ModelSystem(path or name)
        params[name] = systems[name].parameters
    sets = [(f"open noise {lvl:g} dB", mixtures(open_noises(), args.items, lvl, SEED, True)) for lvl in args.levels]
    if not args.no_out_of_domain:
        sets += [
            (f"unseen noise {lvl:g} dB", mixtures(out_of_domain_noises(), args.items, lvl, SEED, False))
            for lvl in args.levels
        ]
    clean, noisy = babble_pair(RATE)
    sets.append(("babble pair 0 dB", [(clean, noisy)]))
    seconds: dict[str, float] = {}
    audio_s: dict[str, float] = {}
    print(f"{'set':<22} {'system':<16} {'PESQ':>6} {'STOI':>6} {'SI-SDR':>7} {'OVRL':>6}")
    for title, pairs in sets:
        for name, system in systems.items():
            rows = []
            for ref, mix in pairs:
                started = time.perf_counter()
                est = system(mix, RATE)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
                audio_s[name] = audio_s.get(name, 0.0) + len(mix) / RATE
                if est is None:
                    break
                rows.append(score(np.asarray(est, np.float32), ref, not args.no_dnsmos))
            if not rows:
                continue
            means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            ovrl = f"{means['ovrl']:>6.2f}" if "ovrl" in means else f"{'-':>6}"
            print(f"{title:<22} {name:<16} {means['pesq']:>6.3f} {means['stoi']:>6.3f} {means['si_sdr']:>7.2f} {ovrl}")
        print()
    print(f"{'system':<16} {'parameters':>12} {'RTF':>7}  (CPU, {args.threads} threads, 16 kHz, model load excluded)")
    for name in systems:
        if name in seconds:
            print(f"{name:<16} {params[name]!s:>12} {seconds[name] / audio_s[name]:>7.4f}")


if __name__ == "__main__":
    main()

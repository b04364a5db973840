"""Parallel corpora: generated speakers saying the same generated utterances, or matched folders.

A generated utterance is a *script* (words of syllables with vowels, fricative onsets and per-word pause
chances, plus an intonation shape over the utterance); a speaker *renders* it with its own F0 range,
formant scale (vocal-tract length), speaking rate and pause habits, so every script gives a parallel pair.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from denoise_vc.audio import AUDIO_SUFFIXES, audio_info, load_audio
from denoise_vc.data.synth import (
    FRAME_S,
    VOWEL_FORMANTS,
    SpeakerTraits,
    _formant_filter,
    _glottal_source,
    _smooth_noise,
)
from denoise_vc.errors import ConfigError

BUILTIN_SPEAKERS: dict[str, SpeakerTraits] = {
    "m1": SpeakerTraits(110.0, 3.0, 0.92, 4.0, 0.55, (0.28, 0.45), 0.02),
    "f1": SpeakerTraits(215.0, 5.0, 1.18, 5.2, 0.3, (0.22, 0.32), 0.04),
    "m2": SpeakerTraits(135.0, 4.0, 1.0, 4.8, 0.4, (0.24, 0.4), 0.03),
    "f2": SpeakerTraits(250.0, 6.0, 1.25, 4.4, 0.45, (0.25, 0.42), 0.05),
}


@dataclass(frozen=True)
class Syllable:
    vowel: int
    fricative_hz: float  # 0: no fricative onset
    fricative_s: float  # at 4.5 syllables/s; scaled by the speaker's rate
    length: float  # relative syllable length (about 1)
    amplitude: float


@dataclass(frozen=True)
class Script:
    """What is said, independent of who says it."""

    words: tuple[tuple[Syllable, ...], ...]
    pause_chance: tuple[float, ...]  # per word: the speaker pauses after it when this < its pause_prob
    pause_length: tuple[float, ...]  # per word, in [0, 1] across the speaker's pause range
    seed: int


def make_script(seed: int, n_words: int) -> Script:
    rng = np.random.default_rng(seed)
    words = []
    for _ in range(n_words):
        syllables = []
        for _ in range(int(rng.integers(1, 4))):
            fricative = rng.random() < 0.4
            syllables.append(
                Syllable(
                    vowel=int(rng.integers(len(VOWEL_FORMANTS))),
                    fricative_hz=float(rng.uniform(2500, 6500)) if fricative else 0.0,
                    fricative_s=float(rng.uniform(0.04, 0.1)),
                    length=float(rng.uniform(0.7, 1.3)),
                    amplitude=float(rng.uniform(0.6, 1.0)),
                )
            )
        words.append(tuple(syllables))
    chance = rng.random(n_words)
    chance[-1] = 1.0  # the utterance ends anyway
    return Script(tuple(words), tuple(chance.tolist()), tuple(rng.random(n_words).tolist()), seed)


def _plan(script: Script, traits: SpeakerTraits) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-frame voiced/unvoiced amplitude, fricative frequency, formants; and utterance progress 0..1."""
    rate_scale = 4.5 / traits.syllables_per_s
    total_syl = sum(len(w) for w in script.words)
    events: list[tuple[str, int, float, float, Syllable | None]] = []  # (kind, frames, p0, p1, syllable)
    lead = int(0.1 / FRAME_S)
    done = 0
    for w, word in enumerate(script.words):
        for syl in word:
            p0, p1 = done / total_syl, (done + 1) / total_syl
            if syl.fricative_hz:
                events.append(("fric", max(2, int(syl.fricative_s * rate_scale / FRAME_S)), p0, p0, syl))
            events.append(("vowel", max(4, int(syl.length / traits.syllables_per_s / FRAME_S)), p0, p1, syl))
            done += 1
        if script.pause_chance[w] < traits.pause_prob:
            lo, hi = traits.pause_s
            gap = lo + script.pause_length[w] * (hi - lo)
        else:
            gap = 0.03 * rate_scale
        events.append(("gap", int(gap / FRAME_S), done / total_syl, done / total_syl, None))
    n = lead + sum(e[1] for e in events) + int(0.1 / FRAME_S)
    voiced, unvoiced = np.zeros(n), np.zeros(n)
    fric_hz, progress = np.full(n, 4000.0), np.zeros(n)
    formants = np.tile(VOWEL_FORMANTS[script.words[0][0].vowel], (n, 1))
    frame = lead
    vowel = VOWEL_FORMANTS[script.words[0][0].vowel]
    for kind, length, p0, p1, syl in events:
        end = frame + length
        progress[frame:end] = np.linspace(p0, p1, length)
        if kind == "fric":
            unvoiced[frame:end] = 0.25 * np.hanning(length + 2)[1:-1]
            fric_hz[frame:end] = syl.fricative_hz
        elif kind == "vowel":
            target = VOWEL_FORMANTS[syl.vowel]
            ramp = np.linspace(0.0, 1.0, length)[:, None]
            formants[frame:end] = (1 - ramp) * vowel + ramp * target
            voiced[frame:end] = syl.amplitude * np.sin(np.pi * np.linspace(0.05, 0.95, length)) ** 0.6
            vowel = target
        formants[end:] = vowel
        frame = end
    progress[frame:] = 1.0
    return {"voiced": voiced, "unvoiced": unvoiced, "fric_hz": fric_hz, "formants": formants}, progress


def render(script: Script, traits: SpeakerTraits, sample_rate: int, seed: int) -> np.ndarray:
    """The script spoken by a speaker: float32 waveform with RMS about 0.05 (deterministic)."""
    rng = np.random.default_rng(seed)
    plan, progress = _plan(script, traits)
    n_frames = len(progress)
    n = int(n_frames * FRAME_S * sample_rate)
    frame_t = np.arange(n_frames) * FRAME_S
    t = np.arange(n) / sample_rate
    # intonation belongs to the script (same shape for every speaker), stretched over the speaker's timing
    shape = _smooth_noise(np.random.default_rng(script.seed), 256, 12)
    contour = np.interp(progress, np.linspace(0, 1, 256), shape)
    semitones = np.linspace(1.0, -1.0, n_frames) + traits.f0_range_semitones * 0.5 * contour
    f0 = np.interp(t, frame_t, traits.f0_hz * 2.0 ** (semitones / 12))
    f0 *= 1 + 0.005 * rng.standard_normal(n)
    voiced = np.interp(t, frame_t, plan["voiced"])
    unvoiced = np.interp(t, frame_t, plan["unvoiced"])
    excitation = _glottal_source(f0, sample_rate) * voiced + traits.breathiness * voiced * rng.standard_normal(n)
    block = max(1, int(FRAME_S * sample_rate))
    speech = _formant_filter(excitation, plan["formants"], sample_rate, block, traits.formant_scale)
    speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-9)
    noise = rng.standard_normal(n) * unvoiced
    centre = min(4000.0 * traits.formant_scale, 0.4 * sample_rate)
    low, high = 0.5 * centre, min(1.6 * centre, 0.49 * sample_rate)
    noise = signal.sosfilt(signal.butter(2, [low, high], btype="band", fs=sample_rate, output="sos"), noise)
    speech = speech + 0.6 * noise / (np.std(noise) + 1e-9) * np.sqrt(np.mean(unvoiced**2))
    speech = speech * (0.05 / (np.sqrt(np.mean(speech**2)) + 1e-9))
    return np.clip(speech, -0.99, 0.99).astype(np.float32)


@dataclass(frozen=True)
class Pair:
    """One parallel utterance: a name, its split, and loaders of (waveform, rate) for each side."""

    name: str
    split: str
    source: Callable[[], tuple[np.ndarray, int]]
    target: Callable[[], tuple[np.ndarray, int]]
    source_path: Path | None = None
    target_path: Path | None = None


def _split_of(index: int, count: int, fractions) -> str:
    n_test = max(1, int(round(count * float(fractions.test)))) if count >= 3 else 0
    n_valid = max(1, int(round(count * float(fractions.valid)))) if count >= 3 else 0
    if index < count - n_test - n_valid:
        return "train"
    return "valid" if index < count - n_test else "test"


def builtin_pairs(data_cfg, seed: int) -> list[Pair]:
    """Generated pairs: the same scripts spoken by data.source_speaker and data.target_speaker."""
    b = data_cfg.builtin
    speakers = {}
    for role in ("source_speaker", "target_speaker"):
        name = str(data_cfg[role])
        if name not in BUILTIN_SPEAKERS:
            raise ConfigError(f"data.{role}={name!r} is not a built-in speaker ({', '.join(BUILTIN_SPEAKERS)})")
        speakers[role] = (name, BUILTIN_SPEAKERS[name])
    pairs = []
    for split in ("train", "valid", "test"):
        for i in range(int(b.utterances[split])):
            script_seed = zlib.crc32(f"{seed}/{split}/{i}".encode()) & 0x7FFFFFFF
            script = make_script(script_seed, int(b.words))

            def speak(role: str, script=script, script_seed=script_seed):
                name, traits = speakers[role]
                wave = render(script, traits, int(data_cfg.sample_rate), script_seed ^ zlib.crc32(name.encode()))
                return wave, int(data_cfg.sample_rate)

            pairs.append(
                Pair(
                    f"{split}_{i:04d}",
                    split,
                    lambda speak=speak: speak("source_speaker"),
                    lambda speak=speak: speak("target_speaker"),
                )
            )
    return pairs


def folder_pairs(data_cfg) -> list[Pair]:
    """source/*.wav and target/*.wav matched by file name; every file must have a partner."""
    folders = []
    for role in ("source", "target"):
        folder = Path(str(data_cfg[role])).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"data.{role}={folder}: folder not found")
        files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES}
        if not files:
            raise ConfigError(f"{folder}: no .wav/.flac/.ogg files")
        folders.append(files)
    source, target = folders
    unmatched = sorted(set(source) ^ set(target))
    if unmatched:
        side = "source" if unmatched[0] in source else "target"
        raise ConfigError(
            f"{len(unmatched)} file(s) have no partner (e.g. {side} file {(source | target)[unmatched[0]]}); "
            "source and target files are matched by name"
        )
    for path in list(source.values()) + list(target.values()):
        audio_info(path)  # fail on unreadable files before anything is written
    names = sorted(source)
    return [
        Pair(
            Path(name).stem,
            _split_of(i, len(names), data_cfg.split),
            lambda p=source[name]: _load(p),
            lambda p=target[name]: _load(p),
            source[name],
            target[name],
        )
        for i, name in enumerate(names)
    ]


def _load(path: Path) -> tuple[np.ndarray, int]:
    wave, rate = load_audio(path)
    return wave[0], rate


def build_pairs(data_cfg, seed: int) -> list[Pair]:
    if str(data_cfg.source) == "builtin":
        return builtin_pairs(data_cfg, seed)
    if str(data_cfg.target) == "builtin":
        raise ConfigError("data.source is a folder, so data.target must be one too")
    return folder_pairs(data_cfg)

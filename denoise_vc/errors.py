"""Errors raised at the package's boundaries (files, configs, checkpoints, CLI arguments).

Each carries a one-line message naming the thing and the problem; the CLI prints it without a
traceback and exits non-zero.
"""


class DenoiseVCError(Exception):
    """Base class of every error a user can cause and fix."""


class AudioFileError(DenoiseVCError):
    """An audio or .mat file is missing, unreadable or holds unusable samples."""


class ConfigError(DenoiseVCError):
    """A config override or value is invalid."""


class CheckpointError(DenoiseVCError):
    """A checkpoint is missing, of the wrong kind, tampered with or incompatible."""


class TrainingError(DenoiseVCError):
    """Training cannot go on (for example a non-finite loss)."""


class InferenceError(DenoiseVCError):
    """The model failed on an input (out of memory, a bug): the file and the real cause, not a decoding error."""

"""Every command against every bad input it takes (denoise_vc/testing/bad_inputs.py holds the table).

Each pair must end in its expected outcome: a correct output, or a one-line error naming the problem
(no traceback) with exit code 1, or, for a folder, the good files processed and exit code 3. Never a
temp file left behind, never an input changed.
"""

import json

import numpy as np
import pytest
import soundfile as sf

from denoise_vc.testing.bad_inputs import EXIT_CODES, matrix, run_case, tiny_checkpoint

PAIRS = matrix()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "good.pth")


def test_the_matrix_covers_every_command_and_every_input_kind():
    from denoise_vc.cli import build_parser
    from denoise_vc.testing.bad_inputs import CASES, COMMANDS

    commands = build_parser()._subparsers._group_actions[0].choices
    assert {c.name for c in COMMANDS} == set(commands)  # a new command needs its row in COMMANDS
    assert {k.name for _, k in PAIRS} == {k.name for k in CASES}  # every input kind is tried somewhere
    assert len(PAIRS) > 80


def _check_output(command: str, case_name: str, src, outcome) -> None:
    """What a correct output is for each command."""
    if command == "denoise":
        (out,) = outcome.outputs
        info, ref = sf.info(out), sf.info(src)
        assert (info.frames, info.channels, info.samplerate) == (ref.frames, ref.channels, ref.samplerate)
        y, _ = sf.read(out, dtype="float32", always_2d=True)
        assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
        assert out.name == src.name  # same name, in the output folder; the input stays where it was
    elif command == "evaluate":
        levels = json.loads(next(p for p in outcome.outputs if p.name == "metrics.json").read_text())["levels"]
        assert levels and all(np.isfinite(row["si_sdr"]) for row in levels.values())
    elif command == "train":
        assert {"best.pth", "last.pth", "history.json"} <= {p.name for p in outcome.outputs}
    else:
        raise AssertionError(f"no output check for {command} ({case_name})")


@pytest.mark.parametrize("command,case", PAIRS, ids=[f"{c.name}-{k.name}" for c, k in PAIRS])
def test_bad_input(command, case, tmp_path, checkpoint):
    outcome = run_case(command, case, tmp_path, checkpoint)
    expected = command.expected(case)
    assert outcome.kind == expected, outcome.stderr[-2000:]
    assert outcome.code in EXIT_CODES and "Traceback" not in outcome.stderr
    assert outcome.inputs_changed == [] and outcome.leftovers == []
    lines = outcome.stderr.strip().splitlines()
    if expected == "ok":
        _check_output(command.name, case.name, outcome.target, outcome)
    elif expected == "refuse":  # one line, naming the file or the setting and the problem
        assert len(lines) == 1 and case.says in lines[0], lines
        if case.group in ("audio", "checkpoint", "data", "folder") and case.name != "missing checkpoint":
            assert str(outcome.target) in lines[0]
        assert not [p for p in outcome.outputs if p.suffix in (".wav", ".flac", ".ogg", ".zip", ".pth", ".json")]
    else:  # partial: the good files are written, each bad one has its own line naming it
        assert sorted(p.name for p in outcome.outputs) == ["good_a.wav", "good_b.flac"]
        assert any(line.startswith("error: ") and "bad.wav: not a readable audio file" in line for line in lines)
        assert any(line.startswith("error: ") and "nan.wav: contains NaN or Inf" in line for line in lines)
        assert lines[-1] == "2 of 4 files denoised, 2 failed"

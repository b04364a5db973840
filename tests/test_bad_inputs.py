"""Every command against every bad input it takes (tests/bad_inputs.py holds the table).

Each pair must end in its expected outcome: a correct output (denoise: the input's rate, channels and
length, finite, in [-1, 1]; evaluate: finite metrics; train: checkpoints and history), or a one-line
error naming the file or setting and the problem (no traceback) with exit code 1, or, for a folder,
the good files processed, each bad one named and exit code 3. Never a temp file left behind, never an
input changed.
"""

import pytest
from bad_inputs import (
    CASES,
    COMMANDS,
    EXIT_CODES,
    matrix,
    problems,
    run_case,
    tiny_checkpoint,
    tiny_vc_checkpoint,
)

PAIRS = matrix()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "good.pth")


@pytest.fixture(scope="module")
def vc_checkpoint(tmp_path_factory):
    return tiny_vc_checkpoint(tmp_path_factory.mktemp("vc_ckpt") / "vc.pth")


def test_the_matrix_covers_every_command_and_every_input_kind():
    from denoise_vc.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert {c.name for c in COMMANDS} == set(commands)  # a new command needs its row in COMMANDS
    assert {k.name for _, k in PAIRS} == {k.name for k in CASES}  # every input kind is tried somewhere
    assert len(PAIRS) > 80


@pytest.mark.parametrize("command,case", PAIRS, ids=[f"{c.name}-{k.name}" for c, k in PAIRS])
def test_bad_input(command, case, tmp_path, checkpoint, vc_checkpoint):
    outcome = run_case(command, case, tmp_path, checkpoint, vc_checkpoint)
    assert outcome.code in EXIT_CODES and "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    assert outcome.kind == command.expected(case)
    assert problems(command, case, outcome) == []


def test_the_verdict_catches_crashes_leftovers_changed_inputs_and_vague_refusals(tmp_path):
    from bad_inputs import Outcome

    denoise = next(c for c in COMMANDS if c.name == "denoise")
    nan = next(k for k in CASES if k.name == "NaN samples")
    path = tmp_path / "nan.wav"
    good = Outcome(path, 1, "", f"error: {path}: contains NaN or Inf samples\n", [], [], [])
    assert good.kind == "refuse" and problems(denoise, nan, good) == []
    bad = [
        Outcome(path, None, "", "Traceback (most recent call last):\nValueError\n", [], [], []),
        Outcome(path, 2, "", "usage: ...\n", [], [], []),
        Outcome(path, 1, "", good.stderr, ["nan.wav"], [], []),
        Outcome(path, 1, "", good.stderr, [], [tmp_path / ".nan.abc.wav"], []),
        Outcome(path, 1, "", "error: something failed\n", [], [], []),
        Outcome(path, 1, "", good.stderr + "more\n", [], [], []),
        Outcome(path, 1, "", good.stderr, [], [], [tmp_path / "out" / "nan.wav"]),
        Outcome(path, 0, "", "", [], [], []),
    ]
    assert [bool(problems(denoise, nan, o)) for o in bad] == [True] * len(bad)
    assert [o.kind for o in bad[:2]] == ["crash", "crash"]


def test_convert_writes_no_output_twice(tmp_path, vc_checkpoint, capsys):
    """a.flac and a.wav both convert to a.wav: the first one wins, the second is reported (exit 3)."""
    import numpy as np
    import soundfile as sf

    from denoise_vc.cli import main

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.flac", np.full(4000, 0.1, np.float32), 16000)
    sf.write(tmp_path / "in" / "a.wav", np.full(4000, 0.1, np.float32), 16000)
    args = ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--vc", str(vc_checkpoint)]
    assert main(args) == 3
    err = capsys.readouterr().err.splitlines()
    assert f"{tmp_path / 'in' / 'a.wav'}: output {tmp_path / 'out' / 'a.wav'} is already the conversion of" in err[0]
    assert err[1] == "1 of 2 files converted, 1 failed"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.wav"]

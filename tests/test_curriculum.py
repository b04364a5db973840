import pytest

from denoise_vc.curriculum import Schedule, schedule_from_config
from denoise_vc.errors import ConfigError


def test_constant_is_always_the_target():
    assert [Schedule().value(e, 0.6) for e in (0, 5, 50)] == [0.6, 0.6, 0.6]


def test_stepped_follows_the_milestones():
    s = Schedule(kind="stepped", milestones=[0, 5, 10, 15, 20], values=[0, 0.25, 0.5, 0.75, 1.0])
    assert [s.value(e, 1.0) for e in (0, 4, 5, 9, 10, 19, 20, 99)] == [0, 0, 0.25, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_linear_ramp_between_two_epochs():
    s = Schedule(kind="ramp", start=0.0, start_epoch=20, end_epoch=40)
    assert [s.value(e, 1.0) for e in (0, 20, 25, 30, 39, 40, 60)] == pytest.approx([0, 0, 0.25, 0.5, 0.95, 1.0, 1.0])


def test_cosine_ramp_is_slow_at_both_ends():
    s = Schedule(kind="ramp", start=0.0, start_epoch=0, end_epoch=10, shape="cosine")
    assert s.value(5, 1.0) == pytest.approx(0.5)
    assert s.value(1, 1.0) < 0.1 and s.value(9, 1.0) > 0.9


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "zigzag"},
        {"kind": "stepped", "milestones": [0, 5], "values": [0.5]},
        {"kind": "stepped", "milestones": [5, 0], "values": [0.5, 1.0]},
        {"kind": "ramp", "start_epoch": 5, "end_epoch": 5},
        {"kind": "ramp", "start_epoch": 0, "end_epoch": 5, "shape": "square"},
        {"kind": "ramp", "colour": "red"},
    ],
)
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ConfigError):
        schedule_from_config(bad)

"""benchmarks/flygym1_replay.py: flygym 1.2.1's own replay starts where replay_flygym.py's do, and refuses bad values
in one line. Its runs need flygym 1.2.1 in its own environment (MuJoCo 3.2.7): see the script's docstring."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.flygym1_replay import parse_args, start_frames
from benchmarks.replay_flygym import load_recording
from benchmarks.replay_flygym import start_frames as replay_start_frames

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seconds, starts", [(0.5, 1001), (0.5, 20), (1.0, 10), (0.3, 64), (0.25, 7)])
def test_start_i_is_the_frame_that_replay_flygym_starts_world_i_at(seconds, starts):
    rec = load_recording()
    ours = replay_start_frames(rec, seconds, starts).tolist()
    assert start_frames(rec.frames, rec.timestep, seconds, starts) == ours
    if starts == 1001:
        assert ours == list(range(1001))  # every frame that leaves half a second to play


def test_bad_values_are_refused_in_one_line():
    rec = load_recording()
    with pytest.raises(ValueError, match=r"--seconds=2 is not allowed \(allowed: 0.0001 <= seconds <= 1,"):
        start_frames(rec.frames, rec.timestep, 2.0, 1)
    with pytest.raises(ValueError, match=r"--timestep=0.001 is not allowed \(allowed: 0 < timestep <= 0.0005,"):
        start_frames(rec.frames, rec.timestep, 0.5, 1, timestep=1e-3)
    with pytest.raises(ValueError, match=r"--start-frames 1001 is not allowed \(allowed: frames 0-1000,"):
        start_frames(rec.frames, rec.timestep, 0.5, 1, chosen=[3, 1001])
    for argv, message in ((["--starts", "0"], "argument --starts: '0' is not allowed (allowed: an integer >= 1)"),
                          (["--seconds", "nan"],
                           "argument --seconds: 'nan' is not allowed (allowed: a finite number > 0)"),
                          (["--start", "tripod"], "argument --start: invalid choice: 'tripod'")):
        with pytest.raises(SystemExit) as exc:
            parse_args(argv)
        assert str(exc.value).startswith(f"error: {message}") and "\n" not in str(exc.value)


def test_without_flygym_1_it_says_which_interpreter_it_needs():
    result = subprocess.run([sys.executable, "benchmarks/flygym1_replay.py"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: this interpreter has no flygym (allowed: flygym 1.x, e.g. a venv made by `pip install flygym==1.2.1`)"]

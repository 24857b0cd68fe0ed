"""benchmarks/compare_flygym.py: the joint mapping between flygym 2's DoFs and this model's (what makes the
two replays the same motion), and its one-line errors. Its runs need flygym 2.1.1 (Python >= 3.12) and a
GPU: see the script's docstring."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.compare_flygym import BenchError, check_window, v1_joint
from fly import ACTUATED_JOINTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("dof, joint, sign", [
    ("c_thorax-lf_coxa-pitch", "joint_LFCoxa", 1.0),
    ("c_thorax-rf_coxa-roll", "joint_RFCoxa_roll", -1.0),  # flygym 2 mirrors the right legs' roll and yaw
    ("c_thorax-rh_coxa-yaw", "joint_RHCoxa_yaw", -1.0),
    ("rm_coxa-rm_trochanterfemur-pitch", "joint_RMFemur", 1.0),
    ("lh_coxa-lh_trochanterfemur-roll", "joint_LHFemur_roll", 1.0),
    ("rm_tibia-rm_tarsus1-pitch", "joint_RMTarsus1", 1.0),
])
def test_flygym2_dofs_map_onto_the_recorded_joints(dof, joint, sign):
    assert v1_joint(dof) == (joint, sign)
    assert joint in ACTUATED_JOINTS  # the recording's columns


def test_unknown_dofs_and_too_long_replays_are_refused():
    with pytest.raises(BenchError, match="no counterpart"):
        v1_joint("c_thorax-lf_wing-pitch")
    with pytest.raises(BenchError, match="longer than the 1 s recording"):
        check_window(1.5, 100, 0, 1e-4, 2000, 5e-4)


def test_bad_arguments_are_one_error_line():
    result = subprocess.run([sys.executable, "benchmarks/compare_flygym.py", "--worlds", "0"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["error: --worlds=0 is not allowed (allowed: integers >= 1)"]
    result = subprocess.run([sys.executable, "benchmarks/compare_flygym.py", "--adhesion-gain", "-2"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.stderr.strip().splitlines() == [
        "error: --adhesion-gain=-2 is not allowed (allowed: a finite number >= 0)"]


def test_the_upright_measure_counts_worlds_that_stayed_up_and_those_on_their_backs():
    import numpy as np

    from benchmarks.compare_flygym import upright_cosine, upright_summary

    half = np.sqrt(0.5)
    quats = np.array([[1, 0, 0, 0], [half, half, 0, 0], [0, 0, 1, 0], [2, 0, 0, 2]], dtype=np.float64)
    assert np.allclose(upright_cosine(quats), [1.0, 0.0, -1.0, 1.0])  # level, on its side, on its back, yawed
    lowest = np.array([0.9, 0.4, -0.8, np.nan])  # the last world faulted: left out
    out = upright_summary(lowest, quats, np.array([True, True, True, False]))
    assert out["upright_worlds"] == 1 and out["on_back_worlds"] == 1
    assert out["lowest_upright_quartiles"] == [-0.2, 0.4, 0.65]
    assert "starts_not_upright" not in out
    out = upright_summary(lowest, quats, np.array([True, True, True, False]), start_frames=[10, 11, 12, 13])
    assert out["starts_not_upright"] == {11: 0.4, 12: -0.8} and out["starts_on_back"] == [12]

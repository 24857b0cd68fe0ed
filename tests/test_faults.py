"""MuJoCo Warp's most common GPU fault, NaN where legs press against a gap's wall (issue #16), reproduced
on Warp's CPU device by benchmarks/gap_fault.py: the asset's armature keeps the solve finite, and the
reproducer still reproduces the NaN with the armature the asset had before. The most common one in training,
slippery ground hardening the pyramidal contacts, likewise: NaN at friction 0.6, finite with the regulariser
kept as the task's randomisation keeps it. Both faults need v2's contact impedance, the asset's when they were found:
at the asset's 0.995 (docs/physics.md, "Contact impedance") neither happens."""
import pytest

from benchmarks.gap_fault import first_fault

pytest.importorskip("mujoco_warp")

STEPS = 450  # the NaN comes at step 435 (419 before Newton's tolerance went from 1e-8 to 1e-2)


def test_gapped_reproducer_stays_finite_with_the_assets_armature():
    assert first_fault("mjwarp", "cpu", 1.857, STEPS, None) == f"finite for all {STEPS} steps"


def test_gapped_reproducer_turns_nan_with_the_old_armature_and_names_the_leg_at_the_wall():
    # the right hind leg is the one pressed into the gap's wall in the steps before the NaN; v2's contact
    # impedance, the asset's when this fault was found, is part of it: at the asset's 0.995 it stays finite
    assert first_fault("mjwarp", "cpu", 1.857, STEPS, None, armature=1e-7, v2_impedance=True).startswith(
        "fault at step 435 (nan), started at joint_RH")
    assert first_fault("mjwarp", "cpu", 1.857, STEPS, None, armature=1e-7) == f"finite for all {STEPS} steps"


def test_slippery_ground_turns_nan_with_mujocos_pyramid_and_stays_finite_with_the_regulariser_kept():
    finite = f"finite for all {STEPS} steps"
    # with v2's contact impedance, the asset's when these faults were found (step 129 before Newton's tolerance
    # went from 1e-8 to 1e-2)
    v2 = dict(friction=0.6, v2_impedance=True)
    assert first_fault("mjwarp", "cpu", 1.857, 200, None, **v2).startswith("fault at step 136 (nan)")
    assert first_fault("mjwarp", "cpu", 1.857, STEPS, None, keep_r=True, **v2) == finite
    # not float32's alone: MuJoCo C at the same cap (20) resets the world for a huge acceleration
    assert first_fault("mujoco", "cpu", 1.857, 200, None, **v2).startswith("fault at step 140 (bad_qacc)")
    assert first_fault("mujoco", "cpu", 1.857, STEPS, None, keep_r=True, **v2) == finite
    # the asset's impedance (0.995) alone keeps both finite
    assert first_fault("mjwarp", "cpu", 1.857, 200, None, friction=0.6) == "finite for all 200 steps"

"""The gait clock of the walking task: one phase per world that advances at a stepping frequency
set by the commanded speed, and NeuroMechFly's recorded step (the CPG baseline's pattern)
evaluated at that phase for the six legs, the two tripods half a cycle apart.

It gives the policy a rhythm to observe (sin and cos of the phase), a reference pose to act
around (a policy modulating a trajectory generator, Iscen et al., CoRL 2018), and the stance and
swing schedule that the contact reward compares with the tarsal contacts.
"""
from __future__ import annotations

import math

import torch

from controllers.cpg import TRIPOD_A, TWO_PI, StepPattern
from physics import LEGS


class GaitClock:
    def __init__(self, num_envs: int, device: torch.device, frequency_per_speed: float,
                 frequency_range: tuple[float, float], ramp_rate: float, rest_pose: torch.Tensor):
        self.pattern = StepPattern(device=device)
        # The step grows from the pose a reset world stands in. (Growing it from the step's own
        # neutral pose, up to 1 rad away, flipped 3 of 80 reset worlds in the first control step.)
        self.rest_pose = rest_pose.to(device, torch.float32)  # (42,)
        self.leg_offset = torch.tensor([0.0 if leg in TRIPOD_A else math.pi for leg in LEGS], device=device)
        self.frequency_per_speed = frequency_per_speed
        self.frequency_range = frequency_range
        self.ramp_rate = ramp_rate  # 1/s: the step grows from the rest pose like the CPG's amplitude
        self.phase = torch.zeros(num_envs, device=device)
        self.frequency = torch.zeros(num_envs, device=device)
        self.magnitude = torch.zeros(num_envs, device=device)

    def reset(self, env_ids: torch.Tensor, commanded_speed: torch.Tensor) -> None:
        """Random phase, frequency from the command, step magnitude from zero (the standing fly)."""
        self.phase[env_ids] = torch.rand(len(env_ids), device=self.phase.device) * TWO_PI
        self.frequency[env_ids] = (commanded_speed * self.frequency_per_speed).clamp(*self.frequency_range)
        self.magnitude[env_ids] = 0.0

    def advance(self, dt: float) -> None:
        self.phase = torch.remainder(self.phase + TWO_PI * self.frequency * dt, TWO_PI)
        self.magnitude = self.magnitude + (1.0 - self.magnitude) * (1.0 - math.exp(-self.ramp_rate * dt))

    def leg_phases(self) -> torch.Tensor:
        return self.phase[:, None] + self.leg_offset

    def reference(self) -> torch.Tensor:
        """(N, 42) joint angles: the recorded step at the current phase, blended in from the rest
        pose as the magnitude ramps from 0 to 1 after a reset."""
        step = self.pattern.joint_angles(self.leg_phases())
        return self.rest_pose + self.magnitude[:, None] * (step - self.rest_pose)

    def expected_stance(self) -> torch.Tensor:
        """(N, 6) True where the schedule has the leg on the ground."""
        return ~self.pattern.in_swing(self.leg_phases())

    def observation(self) -> torch.Tensor:
        return torch.stack([torch.sin(self.phase), torch.cos(self.phase)], dim=-1)

"""The gait reference: joint angles for N flies that walk at a commanded forward speed and yaw rate,
the way real flies set their speed (step frequency and step length together).

Each side of the body has a clock (phase) and a signed stride amplitude. Stepping frequency follows
the real-fly relation f = f0 + f1 v (DeAngelis et al. 2019: 7 Hz at 8 mm/s, 16.5 Hz at 28 mm/s) for
the faster side's speed; a side's stride amplitude is its speed over f times the stride the gait
table's step covers at amplitude 1 (`stride_mm`), so step length grows with speed as in flies.
Turning is v2's descending drive: the left side walks at v - w b, the right at v + w b (b: half the
track width), and a side whose speed is negative replays the step backwards. Swing lasts `swing_s`
at every frequency (the clock's phase is warped so that the recorded swing fills it) and stance takes
the rest of the cycle, so the duty factor falls with speed (0.8 at 8 mm/s to 0.5 at 28 in flies). The two tripods of
each side are half a cycle apart, and a weak coupling keeps the two sides in step.

The step comes from the gait table (assets/gait_table.py): the recorded step redrawn by inverse
kinematics for flat ground, with lifted swing, at stride amplitudes 0-2. The pose is the standing
pose blended into that step (`posture`, 0 standing, 1 walking). Both ramp at `ramp_rate`, so a fly
that stops brings its legs back to the standing pose and a reset fly starts from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .model import LEGS
from .step import TWO_PI, GaitTable, tripod_offsets

LEFT = torch.tensor([leg.startswith("L") for leg in LEGS])


@dataclass(frozen=True)
class GaitParams:
    """The task YAML's `env.gait` (values and their reasons: cfg/task/NeuroMechFly.yaml)."""

    frequency: tuple[float, float]  # f0 Hz, f1 Hz per mm/s
    frequency_range: tuple[float, float]  # Hz
    swing_s: float  # s of swing at every frequency
    max_swing_fraction: float  # of the cycle: stance never much shorter than swing
    stride_mm: float  # mm the fly moves per cycle at stride amplitude 1
    max_amplitude: float  # of the recorded step (the gait table reaches 2)
    half_track_mm: float  # b: turning at w rad/s makes the sides walk v -+ w b
    ramp_rate: float  # 1/s: stride amplitude and posture follow the command
    still_speed: float = 0.5  # mm/s: a side slower than this does not step
    standing_residual: float = 1.0  # share of the policy's residual that acts once a fly told to stand is at rest
    coupling: float = 10.0  # 1/s: pulls the two sides' phases together


class GaitReference:
    def __init__(self, num_envs: int, device: str | torch.device, params: GaitParams, stand_pose: torch.Tensor):
        self.p = params
        self.device = torch.device(device)
        self.table = GaitTable(device=device)
        self.stand_pose = stand_pose.to(device, torch.float32)  # (42,)
        self.leg_offset = tripod_offsets(device)  # (6,)
        self.leg_side = (~LEFT).long().to(device)  # (6,) 0 left, 1 right
        self.rec_swing = self.table.swing_fraction  # (6,)
        n = num_envs
        self.phase = torch.zeros((n, 2), device=device)  # left, right
        self.amplitude = torch.zeros((n, 2), device=device)  # signed: negative steps backwards
        self.posture = torch.zeros(n, device=device)
        self.frequency = torch.full((n,), params.frequency_range[0], device=device)
        self.target_amplitude = torch.zeros((n, 2), device=device)
        self.target_posture = torch.zeros(n, device=device)

    # ------------------------------------------------------------ command -> targets

    def side_speeds(self, speed: torch.Tensor, yaw_rate: torch.Tensor) -> torch.Tensor:
        """(N, 2) mm/s each side's feet move the body: left v - w b, right v + w b."""
        turn = yaw_rate * self.p.half_track_mm
        return torch.stack([speed - turn, speed + turn], dim=-1)

    def set_command(self, speed: torch.Tensor, yaw_rate: torch.Tensor) -> None:
        """Forward speed (N,) mm/s and yaw rate (N,) rad/s (positive: counter-clockwise, to the left)."""
        side = self.side_speeds(speed, yaw_rate)
        fastest = side.abs().max(dim=-1).values
        f0, f1 = self.p.frequency
        self.frequency = (f0 + f1 * fastest).clamp(*self.p.frequency_range)
        walking = fastest > self.p.still_speed
        amplitude = (side / (self.frequency[:, None] * self.p.stride_mm)).clamp(-self.p.max_amplitude,
                                                                                self.p.max_amplitude)
        self.target_amplitude = torch.where(walking[:, None], amplitude, torch.zeros_like(amplitude))
        self.target_posture = walking.float()

    def reset(self, env_ids: torch.Tensor) -> None:
        """Reset worlds stand: random phase (the same on both sides), no stride, standing posture."""
        phase = torch.rand(len(env_ids), device=self.device) * TWO_PI
        self.phase[env_ids] = phase[:, None].expand(-1, 2)
        self.amplitude[env_ids] = 0.0
        self.posture[env_ids] = 0.0

    # ------------------------------------------------------------ time

    def advance(self, dt: float) -> None:
        blend = 1.0 - math.exp(-self.p.ramp_rate * dt)
        self.amplitude = self.amplitude + (self.target_amplitude - self.amplitude) * blend
        self.posture = self.posture + (self.target_posture - self.posture) * blend
        direction = torch.sign(self.amplitude)  # a side stepping backwards replays the step backwards
        pull = self.p.coupling * torch.sin(self.phase.flip(-1) - self.phase)
        self.phase = torch.remainder(self.phase + dt * (TWO_PI * self.frequency[:, None] * direction + pull), TWO_PI)

    # ------------------------------------------------------------ outputs

    def swing_fraction(self) -> torch.Tensor:
        """(N,) share of the cycle in swing: `swing_s` at the current frequency."""
        return (self.p.swing_s * self.frequency).clamp(max=self.p.max_swing_fraction)

    def leg_cycle(self) -> torch.Tensor:
        """(N, 6) position in each leg's cycle, in [0, 1): swing first, then stance."""
        phase = self.phase[:, self.leg_side] + self.leg_offset
        return torch.remainder(phase, TWO_PI) / TWO_PI

    def recorded_phase(self) -> torch.Tensor:
        """(N, 6) phase of the recorded step at which each leg is: the clock warped so that the
        recorded swing fills `swing_fraction` of the cycle and its stance the rest."""
        u = self.leg_cycle()
        s = self.swing_fraction()[:, None]
        r = self.rec_swing
        warped = torch.where(u < s, u / s * r, r + (u - s) / (1.0 - s) * (1.0 - r))
        return TWO_PI * warped

    def reference(self) -> torch.Tensor:
        """(N, 42) joint angles: the standing pose blended into the gait table's step at the current
        phases and stride amplitudes."""
        step = self.table.joint_angles(self.recorded_phase(), self.amplitude.abs()[:, self.leg_side])
        return self.stand_pose + self.posture[:, None] * (step - self.stand_pose)

    def residual_fraction(self) -> torch.Tensor:
        """(N,) share of the policy's residual that acts: all of it while the command is to walk, and
        `standing_residual` once the fly has come to rest. It follows the posture down after a stop (no jump in
        the joint targets) and is whole again at the next walking command."""
        s = self.p.standing_residual
        return s + (1.0 - s) * torch.maximum(self.posture, self.target_posture)

    def expected_stance(self) -> torch.Tensor:
        """(N, 6) True where the schedule has the leg on the ground: in its stance part, or not stepping."""
        stepping = (self.amplitude.abs() > 0.1)[:, self.leg_side]
        return ~stepping | (self.leg_cycle() >= self.swing_fraction()[:, None])

    def observation(self) -> torch.Tensor:
        """(N, 8): sin and cos of each side's phase, the signed amplitudes, the posture, f / 20 Hz."""
        return torch.cat([torch.sin(self.phase), torch.cos(self.phase), self.amplitude, self.posture[:, None],
                          self.frequency[:, None] / 20.0], dim=-1)

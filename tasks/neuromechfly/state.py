"""The fly's state as the task's terms read it, measured from the engine after each control step.

Speeds are measured in the frame of the fly's current heading: forward and lateral from the thorax's
displacement over the control step, yaw rate from the heading's change over it (a stepping fly
lurches within each step, so the velocity sampled at the step's end is a poor estimate), then
averaged over a sliding window (`velocityWindow`, about two strides) for the tracking terms.
A world whose physics failed is flagged in `faults` and its state replaced by the standing pose, so
that no NaN reaches observations or rewards; the task resets it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from common.maths import heading_angle, quat_rotate, quat_rotate_inverse, wrap_angle
from fly import FlyIO


class FlyState:
    """Per-world tensors (N, ...) on the task's device; see `FlyStateReader.read` for what each is."""


class FlyStateReader:
    def __init__(self, fly: FlyIO, device: torch.device, window_steps: int, contact_threshold: float,
                 ground_height: Callable[[torch.Tensor], torch.Tensor] | None = None):
        engine, info = fly.engine, fly.info
        n = engine.num_worlds
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        self.fly, self.engine, self.device = fly, engine, device
        if ground_height is not None:
            self.ground_height = ground_height
        self.stand_dof_pos = as_t(info.stand_targets)
        self.kp, self.force_limit = as_t(info.kp), as_t(info.force_limit)
        self.root_com_offset = as_t(info.root_com_offset).expand(n, 3)
        self.contact_threshold = contact_threshold * info.weight  # g mm / s^2
        self.gravity_dir = torch.tensor([[0.0, 0.0, -1.0]], device=device).expand(n, 3)
        self.window = torch.zeros((n, window_steps, 3), device=device)  # forward, lateral, yaw rate per step
        self.window_count = torch.zeros(n, device=device, dtype=torch.long)
        self.step_count = 0
        self.prev_xy = torch.zeros((n, 2), device=device)
        self.prev_heading = torch.zeros(n, device=device)
        self.s = FlyState()
        for name in ("forward_speed", "lateral_speed", "yaw_rate", "forward_speed_avg", "lateral_speed_avg",
                     "yaw_rate_avg"):
            setattr(self.s, name, torch.zeros(n, device=device))
        self.s.swing_time = torch.zeros((n, 6), device=device)

    def ground_height(self, xy: torch.Tensor) -> torch.Tensor:
        """(N,) height of the ground under each point (N, 2): flat ground at z = 0 unless the task gives
        its terrain's (tasks/neuromechfly/terrain.py)."""
        return torch.zeros(len(xy), device=xy.device)

    def read(self) -> FlyState:
        """Read the engine's state into `self.s` (positions and velocities, contacts, faults)."""
        s, e, dev = self.s, self.engine, self.device
        root = e.root_state().to(dev, torch.float32)
        dof_pos = self.fly.dof_pos().to(dev, torch.float32)
        dof_vel = self.fly.dof_vel().to(dev, torch.float32)
        s.faults = e.faults().to(dev)
        s.fault_dofs = e.fault_dofs().to(dev)
        bad = s.faults != 0
        root = torch.where(bad[:, None], torch.zeros_like(root), root)
        root[:, 3] = torch.where(bad, torch.ones_like(root[:, 3]), root[:, 3])
        s.dof_pos = torch.where(bad[:, None], self.stand_dof_pos.expand_as(dof_pos), dof_pos)
        s.dof_vel = torch.where(bad[:, None], torch.zeros_like(dof_vel), dof_vel)
        forces = self.fly.tarsal_contact_forces().to(dev, torch.float32)
        s.contact_forces = torch.nan_to_num(forces, 0.0, 0.0, 0.0)
        s.contacts = s.contact_forces > self.contact_threshold  # (N, 6) stance by the tarsal load
        s.targets = self.fly.joint_targets().to(dev, torch.float32)
        s.torque = (self.kp * (s.targets - s.dof_pos)).clamp(-self.force_limit, self.force_limit)
        s.root_pos, s.root_quat = root[:, 0:3], root[:, 3:7]
        com = s.root_pos + quat_rotate(s.root_quat, self.root_com_offset)
        s.height = com[:, 2] - self.ground_height(com[:, :2])  # thorax centre of mass above the ground
        s.base_lin_vel = quat_rotate_inverse(s.root_quat, root[:, 7:10])
        s.base_ang_vel = quat_rotate_inverse(s.root_quat, root[:, 10:13])
        s.projected_gravity = quat_rotate_inverse(s.root_quat, self.gravity_dir)
        s.heading = heading_angle(s.root_quat)
        return s

    def measure_motion(self, dt: float) -> None:
        """Speeds over the control step that just ended, and their window averages."""
        s = self.s
        v = (s.root_pos[:, :2] - self.prev_xy) / dt
        mid = self.prev_heading + 0.5 * wrap_angle(s.heading - self.prev_heading)  # heading halfway through
        c, si = torch.cos(mid), torch.sin(mid)
        s.forward_speed = v[:, 0] * c + v[:, 1] * si
        s.lateral_speed = v[:, 1] * c - v[:, 0] * si  # to the fly's left
        s.yaw_rate = wrap_angle(s.heading - self.prev_heading) / dt
        sample = torch.stack([s.forward_speed, s.lateral_speed, s.yaw_rate], dim=-1)
        sample = torch.where((s.faults != 0)[:, None], torch.zeros_like(sample), sample)
        self.window[:, self.step_count % self.window.shape[1]] = sample
        self.step_count += 1
        self.window_count += 1
        filled = self.window_count.clamp(max=self.window.shape[1]).clamp_min(1)
        avg = self.window.sum(dim=1) / filled[:, None]
        s.forward_speed_avg, s.lateral_speed_avg, s.yaw_rate_avg = avg.unbind(-1)
        # s the leg's tarsal load has been off (0 while loaded): its swing so far, as legged_gym's feet_air_time
        lifted = ~s.contacts & (s.faults == 0)[:, None]
        s.swing_time = torch.where(lifted, s.swing_time + dt, torch.zeros_like(s.swing_time))

    def start_step(self) -> None:
        """Remember where each fly is before the physics steps (after resets)."""
        self.prev_xy = self.s.root_pos[:, :2].clone()
        self.prev_heading = self.s.heading.clone()

    def reset(self, env_ids: torch.Tensor) -> None:
        self.window[env_ids] = 0.0
        self.window_count[env_ids] = 0
        for per_world in (self.s.forward_speed_avg, self.s.lateral_speed_avg, self.s.yaw_rate_avg, self.s.swing_time):
            per_world[env_ids] = 0.0


def window_steps(window_s: float, control_dt: float) -> int:
    return max(1, int(math.ceil(window_s / control_dt - 1e-9)))

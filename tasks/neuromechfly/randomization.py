"""Domain randomisation: each world's ground friction, body masses and joint gains are drawn again at
every reset, and the fly is pushed at random times (a horizontal velocity change of the thorax).

The values live in the engine's per-world model fields (physics.PhysicsEngine.world_fields), so
both engines step every world with its own; nothing here loops over worlds.

Friction and the contact's softness: MuJoCo regularises a pyramidal cone's rows with R proportional to
2 mu^2 (1 + mu^2) / impratio, so friction below the model's hardens its contacts, normal direction included
(mu 0.6: a quarter of R at v2's 1.0), which turned the solve NaN on rough ground (docs/terrain.md, "Faults in
training"). A world drawn below the model's friction gets the impratio that keeps R where the model has it.
"""
from __future__ import annotations

import mujoco
import torch

from .config import RandomizationConfig

FIELDS = ("body_mass", "body_inertia", "pair_friction", "actuator_gainprm", "actuator_biasprm", "impratio_invsqrt")


def pyramid_r_scale(mu: torch.Tensor) -> torch.Tensor:
    """How a pyramidal cone's regulariser R scales with the sliding friction (MuJoCo's, at impratio 1)."""
    return 2.0 * mu * mu * (1.0 + mu * mu)


def impratio_factor(mu: torch.Tensor, model_mu: torch.Tensor) -> torch.Tensor:
    """The factor on the model's impratio that keeps a pyramidal cone's R at friction `model_mu` when `mu` is
    below it (at most 1: friction above the model's keeps MuJoCo's own)."""
    return (pyramid_r_scale(mu) / pyramid_r_scale(model_mu)).clamp(max=1.0)


def uniform(bounds: tuple[float, float], shape, device) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, device=device)


class DomainRandomization:
    def __init__(self, cfg: RandomizationConfig, engine, joint_actuators: torch.Tensor, num_envs: int,
                 device: torch.device):
        self.cfg, self.engine, self.device = cfg, engine, device
        self.fields = engine.world_fields
        sim = engine.device
        self.base = {name: self.fields[name][0].clone() for name in FIELDS}
        self.act = joint_actuators.to(sim)
        # the pyramid's R at the model's friction (the smallest over its contact pairs), kept as a floor
        pairs = self.base["pair_friction"][:, 0]
        self.pyramidal = engine.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and len(pairs) > 0
        self.model_mu = pairs.min() if self.pyramidal else None
        self.push_timer = uniform(cfg.push_interval, num_envs, device)
        self.factors = torch.ones((num_envs, 3), device=device)  # each world's friction, mass and gain scale

    def reset(self, env_ids: torch.Tensor) -> None:
        c, k = self.cfg, len(env_ids)
        friction = uniform(c.friction, k, self.device)
        mass = uniform(c.mass_scale, k, self.device)
        gain = uniform(c.gain_scale, k, self.device)
        self.factors[env_ids] = torch.stack([friction, mass, gain], dim=-1)
        self.push_timer[env_ids] = uniform(c.push_interval, k, self.device)
        sim = self.engine.device
        ids = env_ids.to(sim)
        f, m, g = (x.to(sim, self.fields["body_mass"].dtype) for x in (friction, mass, gain))
        pair = self.base["pair_friction"].expand(k, -1, -1).clone()
        pair[:, :, 0:2] = f[:, None, None]  # both tangential directions; torsion and rolling as they are
        self.fields["pair_friction"][ids] = pair
        if self.pyramidal:  # impratio_invsqrt is 1 / sqrt(impratio)
            factor = impratio_factor(f, self.model_mu)
            self.fields["impratio_invsqrt"][ids] = self.base["impratio_invsqrt"] / factor.sqrt()
        self.fields["body_mass"][ids] = self.base["body_mass"] * m[:, None]
        self.fields["body_inertia"][ids] = self.base["body_inertia"] * m[:, None, None]
        gainprm = self.base["actuator_gainprm"].expand(k, -1, -1).clone()
        biasprm = self.base["actuator_biasprm"].expand(k, -1, -1).clone()
        gainprm[:, self.act, 0] *= g[:, None]  # a position actuator: force = kp (target - q) ...
        biasprm[:, self.act, 1] *= g[:, None]  # ... with gain kp and bias -kp q
        self.fields["actuator_gainprm"][ids] = gainprm
        self.fields["actuator_biasprm"][ids] = biasprm

    def push(self, dt: float) -> None:
        """Advance the push clocks by `dt`; worlds whose clock ran out get a push (masked, no host sync)."""
        c = self.cfg
        self.push_timer -= dt
        due = self.push_timer <= 0
        n = len(due)
        self.push_timer = torch.where(due, uniform(c.push_interval, n, self.device), self.push_timer)
        kick = uniform((-c.push_speed, c.push_speed), (n, 2), self.device) * due[:, None]
        qvel = self.engine.qvel.clone()
        qvel[:, 0:2] += kick.to(qvel.device, qvel.dtype)  # the free joint's linear velocity, world frame
        self.engine.set_qvel(qvel)
